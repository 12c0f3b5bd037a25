"""The unit normalizer's trainer on a tiny corpus: trains, resumes, writes a loadable model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tmt.data.shapes import generate_corpus
from tmt.errors import TmtError
from tmt.eval.speech_judge import unit_error_rate
from tmt.speech.features import MfccFeatures
from tmt.speech.normalizer import UnitNormalizer
from tmt.train.codecs.normalizer import NormalizerOptions, train_normalizer
from tmt.train.codecs.speech_units import fit_tokenizer

ARCH = json.dumps({"dim": 32, "layers": 1, "heads": 2, "ffn_dim": 64})


@pytest.fixture(scope="module")
def corpus_and_teacher(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("normalizer")
    corpus = generate_corpus(root / "corpus", 24, seed=5, workers=1, progress=False)
    teacher, _ = fit_tokenizer(corpus, MfccFeatures(), k=8, utterances=50, frames_per_utt=30,
                               output_voice_only=True)
    teacher.save(root / "teacher")
    return corpus, root / "teacher"


def options(corpus: Path, teacher: Path, tmp: Path, steps: int) -> NormalizerOptions:
    return NormalizerOptions(corpus=str(corpus), teacher=str(teacher), out=str(tmp / "out"),
                             work=str(tmp / "work"), steps=steps, batch_size=4, warmup_steps=2,
                             valid_every=3, valid_utterances=4, checkpoint_every=1, architecture=ARCH)


def test_trains_resumes_and_writes_a_loadable_model(corpus_and_teacher: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, teacher = corpus_and_teacher
    first = options(corpus, teacher, tmp_path, 2)
    train_normalizer(first)
    assert torch.load(tmp_path / "work" / "last.pt", weights_only=False)["step"] == 2
    report = train_normalizer(options(corpus, teacher, tmp_path, 3))  # resumes at step 2
    assert report["step"] == 3 and 0 <= report["valid_uer"]
    log = [json.loads(x) for x in (tmp_path / "work" / "log.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log if "valid_uer" in x] == [2, 3]  # each run ends validated
    model = UnitNormalizer.load(tmp_path / "out")
    assert model.config.num_units == 8
    # a rerun of a finished run trains nothing and keeps its last validation
    assert train_normalizer(options(corpus, teacher, tmp_path, 3)) == log[-1] == report
    assert (tmp_path / "work" / "log.jsonl").read_text().count("\n") == len(log)


def test_unit_error_rate() -> None:
    ref = [torch.tensor([1, 2, 3, 4])]
    assert unit_error_rate([torch.tensor([1, 2, 3, 4])], ref) == 0
    assert unit_error_rate([torch.tensor([1, 3, 4])], ref) == pytest.approx(0.25)
    assert unit_error_rate([torch.tensor([], dtype=torch.long)], ref) == pytest.approx(1.0)


def test_a_corpus_without_other_voices_is_refused(corpus_and_teacher: tuple[Path, Path], tmp_path: Path) -> None:
    corpus, teacher = corpus_and_teacher
    lines = (corpus / "manifest.jsonl").read_text().splitlines()
    only_output = tmp_path / "c"
    only_output.mkdir()
    (only_output / "meta.json").write_text((corpus / "meta.json").read_text())
    rows = []
    for line in lines:
        row = json.loads(line)
        row["speech"] = [dict(row["speech"][0], path=str(corpus / row["speech"][0]["path"]))]
        rows.append(json.dumps(row))
    (only_output / "manifest.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(TmtError, match="no train utterances in other voices"):
        train_normalizer(options(only_output, teacher, tmp_path, 1))


def test_fine_tunes_a_hubert_loaded_from_disk(corpus_and_teacher: tuple[Path, Path], tmp_path: Path) -> None:
    """The paper setting: --hubert-dir starts the backbone from a HuggingFace HubertModel."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    cfg = HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4)
    pretrained = HubertModel(cfg)
    pretrained.save_pretrained(tmp_path / "hubert")
    corpus, teacher = corpus_and_teacher
    o = options(corpus, teacher, tmp_path, 1)
    o.architecture, o.hubert_dir, o.lr = json.dumps({"upsample": 2}), str(tmp_path / "hubert"), 0.0
    train_normalizer(o)
    model = UnitNormalizer.load(tmp_path / "out")
    assert model.config.backbone == "hubert" and model.config.hubert["hidden_size"] == 32
    # lr 0: the backbone is the loaded HuBERT, weight for weight (saved in fp16)
    loaded = model.backbone.model.encoder.layers[0].attention.q_proj.weight
    assert torch.allclose(loaded, pretrained.encoder.layers[0].attention.q_proj.weight, atol=1e-3)
