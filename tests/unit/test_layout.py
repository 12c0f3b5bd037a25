"""The repo's tokenizers/ folder (codec artefacts) must never shadow HuggingFace tokenizers."""

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
    for folder in ("tokenizers", "checkpoints"):
        assert not list((ROOT / folder).rglob("*.py")), f"{folder}/ must hold no Python files"
