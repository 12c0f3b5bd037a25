"""tmt as a user installs it: build the wheel, install it (not editable) into a fresh virtual
environment that reuses this environment's dependencies, and run the CLI from a directory
outside the checkout. The built-in bundle, codecs, judges and demo inputs must come with it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(args, cwd, env=None, check=True):
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    # built from a clean copy: an in-tree build would leave build/ behind, and a stale build/
    # would put deleted modules into later wheels
    source = root / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "work", "logs", "build", "dist", "*.egg-info", "demo_out", "__pycache__",
        ".*_cache"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(root / "dist"), str(source)], cwd=root)
    (wheel,) = (root / "dist").glob("tmt-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    py = venv / "bin" / "python"
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                cwd=root).stdout.strip()
    # the dependencies of this environment, but not its editable tmt (a path listed in a .pth
    # file is added to sys.path without running the .pth files inside it)
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
          str(wheel)], cwd=root)
    work = root / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(TMT_HOME=str(root / "home"), OMP_NUM_THREADS="1", TQDM_DISABLE="1",
               # fairseq2n's oneTBB is a data file of the tbb wheel in <prefix>/lib, not in
               # site-packages: the reused environment's copy
               LD_LIBRARY_PATH=str(Path(sys.prefix) / "lib"))
    return {"wheel": wheel, "tmt": venv / "bin" / "tmt", "py": py, "cwd": work, "env": env,
            "site": Path(site)}


def test_the_wheel_holds_the_model_and_its_files(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for needed in ("tmt/assets/models/shapes/bundle.json",
                   "tmt/assets/models/shapes/translator/model.safetensors",
                   "tmt/assets/codecs/speech/config.json", "tmt/assets/codecs/image/model.safetensors",
                   "tmt/assets/codecs/text/vocab.txt", "tmt/assets/judges/image/model.safetensors",
                   "tmt/assets/examples/speech.wav", "tmt/py.typed", "tmt/serve/static/index.html",
                   "tmt/kernels/skinny_linear.cpp"):
        assert needed in names, needed
    assert not any(n.startswith(("tests/", "recipes/", "benchmarks/")) for n in names)


def test_installed_tmt_runs_from_outside_the_checkout(installed):
    run = lambda *args: _run([str(installed["tmt"]), *args], cwd=installed["cwd"],  # noqa: E731
                             env=installed["env"])
    where = _run([str(installed["py"]), "-c", "import tmt; print(tmt.__file__)"],
                 cwd=installed["cwd"], env=installed["env"]).stdout.strip()
    assert Path(where).is_relative_to(installed["site"]), where
    assert run("--version").stdout.strip() == "tmt 0.2.0"
    listed = json.loads(run("models", "--json").stdout)
    assert [(m["name"], m["source"]) for m in listed["bundles"]] == [("shapes", "built-in")]
    run("translate", "--from", "text", "--to", "image", "a small red circle on the left",
        "-o", "circle.png")
    assert (installed["cwd"] / "circle.png").stat().st_size > 100
    examples = Path(where).parent / "assets" / "examples"
    caption = run("translate", "--from", "speech", "--to", "text", str(examples / "speech.wav"))
    assert caption.stdout.strip() == "a large blue hexagon in the middle"  # examples/README.md
    demo = run("demo", "--out", "demo")
    assert len(list((installed["cwd"] / "demo").iterdir())) == 6, demo.stdout
    ids = json.loads(run("encode", "text", "a red circle", "--json").stdout)["ids"]
    assert run("decode", "text", *map(str, ids)).stdout.strip() == "a red circle"


def test_installed_tmt_evaluates_with_its_judges(installed):
    run = lambda *args: _run([str(installed["tmt"]), "--quiet", *args],  # noqa: E731
                             cwd=installed["cwd"], env=installed["env"])
    run("data", "shapes", "--out", "corpus", "--size", "24", "--seed", "0")
    run("eval", "--corpus", "corpus", "--split", "test", "--limit", "1", "--out", "report.json")
    report = json.loads((installed["cwd"] / "report.json").read_text())["test"]
    assert report["items"] == 1 and "text-image" in report["directions"], report
    run("tokenize", "shapes", "--root", "corpus", "--out", "store")  # the built-in codecs
    bits = json.loads(run("data", "report", "store", "--json").stdout)
    assert bits, bits
