"""The real-data recipes (recipes/pretrain, coco, flickr8k): their configs say what the paper
did, and each `run.sh --smoke` runs the recipe end to end on the real-format fixtures."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tmt.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"


def test_recipe_configs_follow_the_paper() -> None:
    pretrain = TrainConfig.load(RECIPES / "pretrain" / "pretrain.yaml")
    assert (pretrain.preset, pretrain.max_steps, pretrain.batch_size) == ("paper", 350_000, 80)
    assert pretrain.init_from_bert and pretrain.init_from is None
    assert len(pretrain.directions) == 6 and pretrain.label_smoothing == 0.1
    assert {Path(s).name for s in pretrain.stores} == {"coco", "flickr8k", "cc3m", "cc12m"}
    for corpus in ("coco", "flickr8k"):
        tune = TrainConfig.load(RECIPES / corpus / "finetune.yaml")
        assert (tune.max_steps, tune.lr, tune.batch_size) == (50_000, 1e-5, 80)
        assert tune.init_from == str(Path(pretrain.out_dir) / "model")
        assert [Path(s).name for s in tune.stores] == [corpus]
        assert tune.device == pretrain.device == "cuda"


def smoke_overrides() -> list[str]:
    """The KEY=VALUE overrides of ``SMOKE_SET`` in recipes/smoke.sh (one source of truth)."""
    block = re.search(r"SMOKE_SET=\((.*?)\)", (RECIPES / "smoke.sh").read_text(), re.S)
    assert block is not None
    return re.findall(r"--set (\S+)", block.group(1))


def test_pretrain_then_finetune_in_process(tmp_path: Path) -> None:
    """The recipes' training steps on tokenized fixtures, in one process (the shell smoke
    runs are marked slow): pre-train on the union, fine-tune from it, translate."""
    from tmt.bundle import Bundle, write_bundle
    from tmt.data import fixtures
    from tmt.data.tokenize import tokenize_dataset
    from tmt.modality import Modality
    from tmt.train.run import run_training
    from tmt.translator.model import Translator

    paths = fixtures.write_all(tmp_path / "fixtures")
    stores = tmp_path / "stores"
    for corpus in ("coco", "flickr8k", "cc3m"):
        summary = tokenize_dataset(corpus, getattr(paths, corpus), stores / corpus,
                                   codecs_dir=paths.codecs, progress=False)
        assert summary.failed == 0 and summary.media["speech"] == summary.written
    pre = run_training(RECIPES / "pretrain" / "pretrain.yaml", [
        *smoke_overrides(), f"out_dir={tmp_path / 'pre'}",
        f"stores=[{stores / 'coco'}, {stores / 'flickr8k'}, {stores / 'cc3m'}]"])
    assert pre.step == 3 and set(pre.valid_loss) >= {"image-text", "text-speech"}
    tuned = run_training(RECIPES / "coco" / "finetune.yaml", [
        *smoke_overrides(), f"out_dir={tmp_path / 'coco'}", f"stores=[{stores / 'coco'}]",
        f"init_from={tmp_path / 'pre' / 'model'}"])
    assert tuned.step == 3
    translator = Translator.load(tmp_path / "coco" / "model")
    bundle_dir = write_bundle(tmp_path / "bundle", translator,
                              {m: paths.codecs / m.value for m in Modality}, name="coco-smoke",
                              decoding={"max_text_len": 6, "max_speech_len": 12})
    bundle = Bundle.load(bundle_dir)
    image = next((paths.coco / "val2014").glob("*.jpg"))
    (result,) = bundle.translate([image], "image", "text")
    assert isinstance(result.output, str) and len(result.ids) <= 6  # the length cap holds


def _smoke(recipe: str, smoke_dir: Path) -> str:
    env = {**os.environ, "SMOKE_DIR": str(smoke_dir), "OMP_NUM_THREADS": "1",
           "PY": sys.executable, "TMT": str(Path(sys.executable).parent / "tmt")}
    done = subprocess.run(["bash", str(RECIPES / recipe / "run.sh"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_smoke_runs_pretrain_then_both_finetunings(tmp_path: Path) -> None:
    # ~40 s for pre-training (fixtures, three corpora tokenized, 3 steps, six translations),
    # ~20 s for each fine-tuning (it reuses the pre-trained smoke model).
    out = _smoke("pretrain", tmp_path)
    assert "12 examples: 12 written" in out and "5 examples: 5 written" in out  # coco, cc3m
    assert "trained to step 3" in out
    assert sum(line.startswith("smoke ") for line in out.splitlines()) == 6
    assert len(list((tmp_path / "stores" / "cc3m-tts").rglob("*.wav"))) == 5  # espeak speech
    for corpus in ("coco", "flickr8k"):
        out = _smoke(corpus, tmp_path)
        assert "trained to step 3" in out and out.count("smoke ") == 6
        assert (tmp_path / "runs" / corpus / "model").is_dir()
        assert (tmp_path / "bundles" / corpus).is_dir()
