"""tmt-shapes judges: PocketSphinx speech judge, shipped image judge, judge training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tmt.data.shapes import OUTPUT_VOICE, generate_corpus
from tmt.data.shapes_render import render_scene
from tmt.data.shapes_tts import synthesize
from tmt.data.shapes_world import (
    attribute_accuracy,
    captions,
    compare_records,
    jsgf_grammar,
    parse_caption,
    sample_record,
)
from tmt.errors import TmtError
from tmt.eval.image_judge import ImageJudge, ImageJudgeConfig, ImageJudgeNet
from tmt.eval.speech_judge import SpeechJudge, word_error_rate
from tmt.paths import JUDGES
from tmt.train.codecs.judge import train_image_judge

SHIPPED_IMAGE_JUDGE = JUDGES / "image"


@pytest.fixture(scope="module")
def speech_judge(tmp_path_factory: pytest.TempPathFactory) -> SpeechJudge:
    grammar = tmp_path_factory.mktemp("grammar") / "grammar.jsgf"
    grammar.write_text(jsgf_grammar())
    return SpeechJudge(grammar)


def test_speech_judge_reads_the_output_voice(speech_judge: SpeechJudge) -> None:
    rng = np.random.default_rng(5)
    records = [sample_record(rng, compositional=False) for _ in range(3)]
    # canonical captions and a paraphrase (the grammar covers every template)
    texts = [captions(r)[0] for r in records] + [captions(records[0])[-1]]
    hyps = [speech_judge.transcribe(synthesize(t, OUTPUT_VOICE).wave, 16000) for t in texts]
    assert hyps == texts
    assert word_error_rate(hyps, texts) == 0.0


def test_speech_judge_resamples_and_handles_silence(speech_judge: SpeechJudge) -> None:
    text = "a small green heart on the left"
    utt = synthesize(text, "flite:slt")
    import soxr

    at_22k = soxr.resample(utt.wave, 16000, 22050)
    assert speech_judge.transcribe(at_22k, 22050) == text
    assert parse_caption(speech_judge.transcribe(np.zeros(16000, np.float32), 16000) or "x") is None


def test_speech_judge_missing_grammar_is_tmt_error(tmp_path: Path) -> None:
    with pytest.raises(TmtError):
        SpeechJudge(tmp_path / "missing.jsgf")


def test_shipped_image_judge_reads_rendered_scenes() -> None:
    judge = ImageJudge.load(SHIPPED_IMAGE_JUDGE)
    rng = np.random.default_rng(123)
    records = [sample_record(rng, compositional=False) for _ in range(40)]
    images = [render_scene(r, rng) for r in records]
    acc = attribute_accuracy(judge.predict(images), records)
    assert min(acc.values()) >= 0.9, acc
    # a larger picture is resized to the judge's input size
    big = render_scene(records[0], np.random.default_rng(0), image_size=128)
    scores = compare_records(judge.predict([big])[0], records[0])
    assert sum(c for c, _ in scores.values()) >= sum(t for _, t in scores.values()) - 1


def test_image_judge_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ImageJudgeConfig(image_size=32, channels=(4, 8), hidden=16)
    judge = ImageJudge(ImageJudgeNet(config))
    judge.save(tmp_path / "j")
    loaded = ImageJudge.load(tmp_path / "j")
    assert loaded.config.channels == (4, 8) and loaded.config.image_size == 32
    x = torch.rand(3, 3, 32, 32)
    with torch.inference_mode():
        a, b = judge.model(x), loaded.model(x)
    for key in a:  # fp16 on disk: close, not equal
        torch.testing.assert_close(a[key], b[key], atol=2e-2, rtol=2e-2)
    with pytest.raises(TmtError):
        ImageJudge.load(tmp_path / "nothing")


def test_train_image_judge_on_a_tiny_corpus(tmp_path: Path) -> None:
    corpus = generate_corpus(tmp_path / "c", 8, seed=1, image_size=32, workers=1, progress=False)
    config = ImageJudgeConfig(image_size=32, channels=(4, 8), hidden=16)
    judge = train_image_judge(corpus, tmp_path / "judge", config=config, epochs=1, log=False)
    assert (tmp_path / "judge" / "config.json").is_file()
    records = judge.predict([render_scene(sample_record(np.random.default_rng(0),
                                                        compositional=False),
                                          np.random.default_rng(0), 32)])
    assert len(records) == 1 and len(records[0]["objects"]) in (1, 2)


def test_fine_tune_image_judge_with_rendered_heldout_pairs(tmp_path: Path) -> None:
    corpus = generate_corpus(tmp_path / "c", 4, seed=2, image_size=32, workers=1, progress=False)
    config = ImageJudgeConfig(image_size=32, channels=(4, 8), hidden=16)
    train_image_judge(corpus, tmp_path / "base", config=config, epochs=1, log=False)
    tuned = train_image_judge(
        corpus, tmp_path / "tuned", init=tmp_path / "base", extra_heldout=6, epochs=1, log=False
    )
    assert tuned.config.channels == (4, 8)  # the architecture comes from the initial judge
    assert tuned.config.extra["extra_heldout_rendered"] == 6
