"""Repository layout: artefact folders, HuggingFace tokenizers not shadowed, the recipe entry point."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_hf_tokenizers_is_not_shadowed_from_the_repo_root():
    code = "import transformers, tokenizers; print(tokenizers.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={"HF_HUB_OFFLINE": "1", "PATH": ""}).stdout.strip()
    assert "site-packages" in out, out


def test_artefact_folders_hold_no_python():
    assets = ROOT / "tmt" / "assets"
    assert (assets / "models" / "shapes" / "bundle.json").is_file()
    assert not list(assets.rglob("*.py")), "tmt/assets/ (package data) must hold no Python files"


def test_shapes_recipe_checks_every_step_name_before_running_any():
    # "corpus" would start a 20-minute job: an unknown name later on the line must stop
    # the script first
    done = subprocess.run(["bash", "recipes/shapes/run.sh", "corpus", "bogus"], cwd=ROOT,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                               "TMT": "false", "PY": "false"})
    assert done.returncode == 2
    assert "unknown step 'bogus'" in done.stderr and "image-codec" in done.stderr
    assert "== corpus" not in done.stdout
