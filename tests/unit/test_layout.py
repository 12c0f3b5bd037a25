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


def test_every_shipped_artefact_names_its_kind_and_format_version():
    import json

    from tmt.files import FORMAT_VERSION

    configs = [*(ROOT / "tmt" / "assets").rglob("config.json"),
               *(ROOT / "tmt" / "assets").rglob("bundle.json")]
    assert len(configs) >= 9
    for path in configs:
        config = json.loads(path.read_text())
        assert str(config.get("format", "")).startswith("tmt-"), path
        assert config.get("format_version") == FORMAT_VERSION, path


def test_a_newer_format_version_or_another_kind_is_refused(tmp_path):
    import json
    import shutil

    import pytest

    from tmt.errors import TmtError
    from tmt.text import TextTokenizer

    shutil.copytree(ROOT / "tmt" / "assets" / "codecs" / "text", tmp_path / "text")
    config = json.loads((tmp_path / "text" / "config.json").read_text())
    assert TextTokenizer.load(tmp_path / "text").vocab_size == config["vocab_size"]
    for change, message in (({"format_version": 99}, "newer than this tmt reads"),
                            ({"format": "tmt-image-codec"}, "is not a tmt-text-tokenizer file")):
        (tmp_path / "text" / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(TmtError, match=message):
            TextTokenizer.load(tmp_path / "text")
