"""Benchmark metrics: captioning (pycocoevalcap), CLIP score and the ASR judges, with tiny random
CLIP / wav2vec2 models the tests build and save in the HuggingFace format."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tmt.errors import TmtError
from tmt.eval import captioning
from tmt.eval.asr_judge import (
    PocketSphinxJudge,
    load_asr_judge,
    normalize_transcript,
    wer_scores,
)
from tmt.eval.captioning import CAPTION_METRICS, caption_metrics, simple_tokenize
from tmt.eval.clip_score import ClipScorer

sys.path.insert(0, str(Path(__file__).parent))
from eval_models import save_tiny_clip, save_tiny_wav2vec2  # noqa: E402

REFS = [["A man riding a horse.", "a person on a brown horse"], ["Two dogs play in the snow!"],
        ["a cat on a mat", "the cat sits on a mat"]]
HYPS = ["a man riding a horse", "two cats in snow", "a dog on the mat"]
FAST = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge_l", "cider", "spice")  # no METEOR JVM (~10 s)


@pytest.fixture
def no_corenlp(monkeypatch, tmp_path):
    """pycocoevalcap without the Stanford CoreNLP jars (as on any machine that never fetched them)."""
    (tmp_path / "spice" / "lib").mkdir(parents=True)
    monkeypatch.setattr(captioning, "_package_dir", lambda: tmp_path)


def test_identical_captions_score_perfectly(no_corenlp):
    refs = [["a man riding a horse"], ["two dogs play in the snow"]]
    out = caption_metrics([r[0] for r in refs], refs, metrics=FAST, tokenizer="simple")
    for n in range(1, 5):
        assert out.scores[f"bleu{n}"] == pytest.approx(1.0, abs=1e-6)
    assert out.scores["rouge_l"] == pytest.approx(1.0)
    assert out.scores["cider"] > 0
    # SPICE cannot run: reported as unavailable with the reason, never as 0.
    assert out.scores["spice"] is None and "CoreNLP" in out.unavailable["spice"]
    assert out.to_dict()["spice"] is None and out.to_dict()["tokenizer"] == "simple"


def test_caption_metrics_are_pycocoevalcaps(no_corenlp):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    out = caption_metrics(HYPS, REFS, metrics=FAST, tokenizer="simple").scores
    gts = {i: [simple_tokenize(r) for r in refs] for i, refs in enumerate(REFS)}
    res = {i: [simple_tokenize(h)] for i, h in enumerate(HYPS)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    assert [out[f"bleu{n}"] for n in range(1, 5)] == pytest.approx(bleu)
    assert out["rouge_l"] == pytest.approx(Rouge().compute_score(gts, res)[0])
    assert out["cider"] == pytest.approx(Cider().compute_score(gts, res)[0])
    assert 0 < out["bleu4"] < out["bleu1"] < 1
    # Hand-checked: all of "the cat" matches, brevity penalty exp(1 - 6/2).
    short = caption_metrics(["the cat"], [["the cat sat on the mat"]], metrics=("bleu1",),
                            tokenizer="simple").scores
    assert short["bleu1"] == pytest.approx(np.exp(-2.0), rel=1e-6)


def test_without_java_meteor_is_unavailable(monkeypatch, no_corenlp):
    monkeypatch.setattr(captioning.shutil, "which", lambda name: None)
    out = caption_metrics(HYPS, REFS, metrics=CAPTION_METRICS, tokenizer="auto")
    assert out.tokenizer == "simple" and "java" in out.unavailable["ptb_tokenizer"]
    assert out.scores["meteor"] is None and "java" in out.unavailable["meteor"]
    assert out.scores["spice"] is None and out.scores["bleu4"] is not None
    with pytest.raises(TmtError, match="PTB tokenizer unavailable"):
        caption_metrics(HYPS, REFS, tokenizer="ptb")


def test_caption_metric_errors():
    with pytest.raises(TmtError, match="2 hypotheses for 1"):
        caption_metrics(["a", "b"], [["a"]])
    with pytest.raises(TmtError, match="at least one reference"):
        caption_metrics(["a"], [[]])
    with pytest.raises(TmtError, match="unknown caption metrics"):
        caption_metrics(["a"], [["a"]], metrics=("bleu5",))


def test_cli_metric_names_match():
    from tmt.cli.eval import CAPTION_METRIC_NAMES

    assert tuple(CAPTION_METRIC_NAMES) == CAPTION_METRICS


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_ptb_tokenizer_agrees_with_simple_on_plain_captions():
    caps = {0: ["A man, riding a horse.", "Two dogs play in the snow!"]}
    assert captioning._ptb_tokenize(caps)[0] == [simple_tokenize(c) for c in caps[0]]


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_a_failing_meteor_is_unavailable_not_zero(monkeypatch, no_corenlp):
    import pycocoevalcap.meteor.meteor as meteor

    monkeypatch.setattr(meteor, "METEOR_JAR", "no-such-meteor.jar")
    out = caption_metrics(HYPS, REFS, metrics=("bleu4", "meteor"), tokenizer="simple")
    assert out.scores["meteor"] is None and "meteor failed" in out.unavailable["meteor"]
    assert out.scores["bleu4"] is not None


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_meteor_runs_offline():
    out = caption_metrics(["a man riding a horse", "a dog"], [["a man riding a horse"], ["a cat"]],
                          metrics=("meteor",))
    assert "meteor" not in out.unavailable and 0 < out.scores["meteor"] < 1
    same = caption_metrics(["a man riding a horse"], [["a man riding a horse"]], metrics=("meteor",))
    assert same.scores["meteor"] == pytest.approx(1.0)


# -- CLIP ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


def _images(n, seed=0, size=(40, 56)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)) for _ in range(n)]


def test_clip_scores(clip_dir, tmp_path):
    scorer = ClipScorer.load(clip_dir, batch_size=2)
    images = _images(3)
    texts = ["a dog", "a red car on a long road", "x"]
    assert scorer.embed_images(images).shape == (3, 16)
    assert scorer.embed_texts(texts + ["a very long caption " * 30]).shape == (4, 16)  # cut at 40
    # The image-image variant of an image with itself is cos 1, also from a file.
    images[0].save(tmp_path / "a.png")
    same = scorer.image_image(images, [tmp_path / "a.png", images[1], images[2]])
    assert same == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    other = scorer.image_image(images[:1], images[1:2])[0]
    assert -1.0 <= other < 0.9999
    # A pair scores the same alone and inside a padded batch.
    together = scorer.text_image(images, texts)
    alone = [scorer.text_image([im], [t])[0] for im, t in zip(images, texts)]
    assert together == pytest.approx(alone, abs=1e-5)
    assert all(-1.0 <= v <= 1.0 for v in together)
    both = scorer.compare(images, texts=texts, references=images[::-1])
    assert both["text_image"] == pytest.approx(together, abs=1e-5)
    assert both["image_image"] == pytest.approx(scorer.image_image(images, images[::-1]), abs=1e-5)
    assert both["image_image"][1] == pytest.approx(1.0, abs=1e-5)  # the middle image is itself
    assert set(scorer.compare(images, texts=texts)) == {"text_image"}
    with pytest.raises(TmtError, match="3 images for 2 texts"):
        scorer.text_image(images, texts[:2])
    with pytest.raises(TmtError, match="not found"):
        scorer.image_image([tmp_path / "missing.png"], images[:1])


def test_clip_load_errors(tmp_path):
    with pytest.raises(TmtError, match="no CLIP model"):
        ClipScorer.load(tmp_path)


# -- ASR judges and WER ------------------------------------------------------------------------


def test_wav2vec2_judge_transcribes(tmp_path):
    judge = load_asr_judge(save_tiny_wav2vec2(tmp_path / "w2v", constant="A"))
    rng = np.random.default_rng(0)
    # Every frame reads "A", so the CTC transcript is "A" at any length and sample rate.
    assert judge.transcribe((0.1 * rng.standard_normal(4000)).astype(np.float32), 16000) == "A"
    assert judge.transcribe((0.1 * rng.standard_normal(30000)).astype(np.float32), 22050) == "A"
    assert wer_scores([judge.transcribe(np.zeros(100, np.float32), 16000)], ["a."])["wer"] == 0.0
    random_judge = load_asr_judge(save_tiny_wav2vec2(tmp_path / "w2v2", seed=1))
    text = random_judge.transcribe((0.1 * rng.standard_normal(20000)).astype(np.float32), 16000)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ' ")
    with pytest.raises(TmtError, match="no wav2vec2 model"):
        load_asr_judge(tmp_path / "nothing")
    with pytest.raises(TmtError, match="mono"):
        judge.transcribe(np.zeros((2, 100), np.float32), 16000)


@pytest.mark.skipif(shutil.which("flite") is None, reason="needs flite")
def test_pocketsphinx_judge_reads_tts_speech():
    from tmt.data.shapes_tts import synthesize

    judge = load_asr_judge("pocketsphinx")
    assert isinstance(judge, PocketSphinxJudge)
    text = "a man is riding a horse on the beach"
    wave = synthesize(text, "flite:kal").wave  # 16 kHz
    assert wer_scores([judge.transcribe(wave, 16000)], [text])["wer"] <= 0.34


def test_wer_normalizes_and_counts_empty_hypotheses():
    assert normalize_transcript("A Dog's  toy, [noise] (laughs) here!") == "a dog's toy here"
    out = wer_scores(["A CAT SAT", ""], ["a cat sat.", "two dogs"])
    assert out["wer"] == pytest.approx(2 / 5)  # the empty hypothesis: 2 deletions of 5 words
    assert out["wer_utterance_mean"] == pytest.approx(0.5)
    assert wer_scores(["a b c d"], ["a b x d"])["wer"] == pytest.approx(0.25)
    with pytest.raises(TmtError, match="1 hypotheses for 2"):
        wer_scores(["a"], ["a", "b"])


@pytest.mark.skipif(shutil.which("java") is None, reason="needs java")
def test_a_dead_meteor_leaves_nothing_behind(monkeypatch, no_corenlp):
    """The JVM of a failed METEOR is reaped and garbage collection cannot hang on it."""
    import gc

    import pycocoevalcap.meteor.meteor as meteor

    created = []
    real = meteor.Meteor

    class Spy(real):
        def __init__(self):
            super().__init__()
            created.append(self)

    monkeypatch.setattr(meteor, "METEOR_JAR", "no-such-meteor.jar")
    monkeypatch.setattr(meteor, "Meteor", Spy)
    for _ in range(2):
        caption_metrics(HYPS, REFS, metrics=("meteor",), tokenizer="simple")
    assert [m.meteor_p.returncode is not None for m in created] == [True, True]
    assert not any(m.lock.locked() for m in created)
    created.clear()
    gc.collect()  # runs pycocoevalcap's __del__: must return
