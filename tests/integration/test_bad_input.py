"""Every user mistake and every bad file through the real CLI (a subprocess each): exit code 2,
exactly one line on stderr, no traceback, and no output file left behind."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from tmt.paths import CODECS, EXAMPLES, MODELS

TMT = [sys.executable, "-m", "tmt"]
WAV = str(EXAMPLES / "speech.wav")
PNG = str(EXAMPLES / "image.png")


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data follows)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _bundle(root: Path, name: str, *, decoding=None, config=None, broken_codec=None) -> str:
    """A copy of the built-in bundle (codecs linked) with one thing changed."""
    out = root / name
    shutil.copytree(MODELS / "shapes" / "translator", out / "translator")
    codecs = {m: str(CODECS / m) for m in ("speech", "image", "text")}
    if broken_codec is not None:
        modality, damage = broken_codec
        shutil.copytree(CODECS / modality, root / f"{name}-{modality}")
        damage(root / f"{name}-{modality}")
        codecs[modality] = str(root / f"{name}-{modality}")
    meta = json.loads((MODELS / "shapes" / "bundle.json").read_text())
    meta["codecs"] = codecs
    if decoding is not None:
        meta["decoding"] = {**meta.get("decoding", {}), **decoding}
    (out / "bundle.json").write_text(json.dumps(meta))
    if config is not None:
        path = out / "translator" / "config.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return str(out)


def _truncate(directory: Path) -> None:
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    import soundfile as sf
    from PIL import Image

    root = tmp_path_factory.mktemp("kit")
    (root / "huge.png").write_bytes(_png_header(20000, 20000))
    Image.new("RGB", (60000, 1), "white").save(root / "strip.png")
    (root / "garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    (root / "text.png").write_text("not an image")
    wave = sf.read(WAV, dtype="float32")[0]
    sf.write(root / "one-hz.wav", wave[:2000], 1)
    (root / "garbage.wav").write_bytes(b"RIFF....WAVEfmt " + b"\0" * 40)
    (root / "empty.wav").write_bytes(b"")
    sf.write(root / "silent.wav", np.zeros(16000, np.float32), 16000)
    sf.write(root / "long.wav", np.tile(wave, 60), 16000)  # about 2 minutes
    (root / "adir").mkdir()
    (root / "a-file").write_text("x")
    (root / "km.bin").write_bytes(b"\x80\x04K\x01.")
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    base = "out_dir: {o}\nstores: [{s}]\n"
    for name, extra in {"steps-ten": "max_steps: ten\n", "lr-fast": "lr: fast\n",
                        "heads": "model: {model_dim: 30, num_attn_heads: 4}\nmax_steps: 1\n",
                        "unknown-key": "max_steps: 1\nwarp_drive: true\n"}.items():
        (root / f"{name}.yaml").write_text(base.format(o=root / "run", s=root / "store") + extra)
    bundles = {
        "bad-decoding": _bundle(root, "bad-decoding", decoding={"max_text_len": "abc"}),
        "bad-config": _bundle(root, "bad-config", config={"model_dim": "256"}),
        "bad-weights": _bundle(root, "bad-weights", broken_codec=("image", _truncate)),
        "bad-speech-config": _bundle(root, "bad-speech-config", broken_codec=(
            "speech", lambda d: (d / "config.json").write_text("{not json"))),
        "bad-bundle-json": _bundle(root, "bad-bundle-json"),
    }
    (Path(bundles["bad-bundle-json"]) / "bundle.json").write_text("[1, 2")
    return {"root": root, **bundles}


def _k(kit, name):
    return str(kit["root"] / name)


T2I = ["translate", "--from", "text", "--to", "image", "a small red circle on the left"]
S2T = ["translate", "--from", "speech", "--to", "text"]
I2T = ["translate", "--from", "image", "--to", "text"]
CASES = {
    # translate: options
    "same modality": lambda k: ["translate", "--from", "text", "--to", "text", "hi"],
    "missing input": lambda k: [*S2T, "/no/such.wav"],
    "empty text": lambda k: ["translate", "--from", "text", "--to", "image", "   "],
    "beam 0": lambda k: [*T2I, "--beam", "0"],
    "beam 1000": lambda k: [*T2I, "--beam", "1000"],
    "max-len -1": lambda k: [*S2T, WAV, "--max-len", "-1"],
    "max-len 0": lambda k: [*S2T, WAV, "--max-len", "0"],
    "temperature nan": lambda k: [*T2I, "--temperature", "nan"],
    "temperature 0": lambda k: [*T2I, "--temperature", "0"],
    "temperature -1": lambda k: [*T2I, "--temperature", "-1"],
    "temperature inf": lambda k: [*T2I, "--temperature", "inf"],
    "top-k -3": lambda k: [*T2I, "--top-k", "-3"],
    "rerank nan": lambda k: [*T2I, "--rerank", "nan"],
    "rerank -1": lambda k: [*T2I, "--rerank", "-1"],
    "strategy bogus": lambda k: [*T2I, "--strategy", "bogus"],
    "beam not a number": lambda k: [*T2I, "--beam", "five"],
    "unknown flag": lambda k: [*T2I, "--beams", "5"],
    "unknown modality": lambda k: ["translate", "--from", "smell", "--to", "text", "x"],
    "no command": lambda k: [],
    "unknown command": lambda k: ["translat"],
    # translate: output paths
    "output under a file": lambda k: [*T2I, "-o", _k(k, "a-file") + "/x.png"],
    "output in /proc": lambda k: [*T2I, "-o", "/proc/tmt.png"],
    "output is a directory": lambda k: [*T2I, "-o", _k(k, "adir")],
    "output extension": lambda k: [*T2I, "-o", "out.gif"],
    "speech output as png": lambda k: ["translate", "--from", "text", "--to", "speech", "a red circle", "-o", "x.png"],
    "text output extension": lambda k: [*I2T, PNG, "-o", "caption.png"],
    # devices
    "device cuda without gpu": lambda k: [*T2I, "--device", "cuda"],
    "device bogus": lambda k: [*T2I, "--device", "bogus"],
    "device cuda:7": lambda k: ["encode", "text", "a red circle", "--device", "cuda:7"],
    "demo device bogus": lambda k: ["demo", "--device", "tpu"],
    # bundles
    "unknown model": lambda k: [*T2I, "--model", "no-such-model"],
    "model dir without bundle": lambda k: [*T2I, "--model", _k(k, "adir")],
    "bundle decoding type": lambda k: [*T2I, "--model", k["bad-decoding"]],
    "translator config type": lambda k: [*T2I, "--model", k["bad-config"]],
    "truncated codec weights": lambda k: [*T2I, "--model", k["bad-weights"]],
    "speech codec config not json": lambda k: [*S2T, WAV, "--model", k["bad-speech-config"]],
    "bundle.json not json": lambda k: [*T2I, "--model", k["bad-bundle-json"]],
    # images
    "decompression bomb header": lambda k: [*I2T, _k(k, "huge.png")],
    "absurd aspect ratio": lambda k: [*I2T, _k(k, "strip.png")],
    "corrupt png": lambda k: [*I2T, _k(k, "garbage.png")],
    "text file as image": lambda k: [*I2T, _k(k, "text.png")],
    "directory as image": lambda k: [*I2T, _k(k, "adir")],
    # audio
    "1 Hz wav header": lambda k: [*S2T, _k(k, "one-hz.wav")],
    "corrupt wav": lambda k: [*S2T, _k(k, "garbage.wav")],
    "empty wav": lambda k: [*S2T, _k(k, "empty.wav")],
    "silent wav": lambda k: [*S2T, _k(k, "silent.wav")],
    "directory as audio": lambda k: [*S2T, _k(k, "adir")],
    "recording too long": lambda k: ["translate", "--from", "speech", "--to", "image", _k(k, "long.wav")],
    # text
    "all words unknown": lambda k: ["translate", "--from", "text", "--to", "image", "xylophone quantum zebra"],
    "arabic text": lambda k: ["translate", "--from", "text", "--to", "image", "دائرة حمراء صغيرة"],
    "cjk text": lambda k: ["translate", "--from", "text", "--to", "image", "小さな赤い円"],
    "emoji text": lambda k: ["translate", "--from", "text", "--to", "speech", "🔴 🟦 ⭐"],
    "ten thousand words": lambda k: ["translate", "--from", "text", "--to", "image", "a red circle " * 3400],
    # encode / decode
    "decode non-integer ids": lambda k: ["decode", "text", "1", "x"],
    "decode image without -o": lambda k: ["decode", "image", "1", "2"],
    "decode text id out of range": lambda k: ["decode", "text", "99999"],
    "encode missing file": lambda k: ["encode", "speech", "/no/such.wav"],
    "encode corrupt image": lambda k: ["encode", "image", _k(k, "garbage.png")],
    "speech encode missing file": lambda k: ["speech", "encode", "/no/such.wav"],
    # demo, models, eval
    "demo examples missing": lambda k: ["demo", "--examples", "/no/such/dir", "--out", "d"],
    "eval corpus missing": lambda k: ["eval", "--corpus", "/no/such/corpus", "--split", "test"],
    "eval unknown dataset": lambda k: ["eval", "--dataset", "nope", "--root", _k(k, "adir")],
    "eval batch size 0": lambda k: ["eval", "--corpus", "/no/such", "--batch-size", "0"],
    # tokenize, backtranslate
    "tokenize unknown dataset": lambda k: ["tokenize", "nope", "--root", _k(k, "adir"), "--out", "s"],
    "tokenize root missing": lambda k: ["tokenize", "shapes", "--root", "/no/such", "--out", "s"],
    "tokenize out is a file": lambda k: ["tokenize", "shapes", "--root", _k(k, "adir"), "--out", _k(k, "a-file")],
    "tokenize bad shard": lambda k: ["tokenize", "shapes", "--root", _k(k, "adir"), "--out", "s", "--shard", "3/2"],
    "backtranslate root missing": lambda k: ["backtranslate", "imagenet", "--root", "/no/such", "--out", "s"],
    # train
    "train config missing": lambda k: ["train", "--config", "/no/such.yaml"],
    "train config directory": lambda k: ["train", "--config", _k(k, "adir")],
    "train config binary": lambda k: ["train", "--config", _k(k, "binary.yaml")],
    "train max_steps ten": lambda k: ["train", "--config", _k(k, "steps-ten.yaml")],
    "train lr fast": lambda k: ["train", "--config", _k(k, "lr-fast.yaml")],
    "train model_dim vs heads": lambda k: ["train", "--config", _k(k, "heads.yaml")],
    "train unknown key": lambda k: ["train", "--config", _k(k, "unknown-key.yaml")],
    "train malformed --set": lambda k: ["train", "--config", _k(k, "lr-fast.yaml"), "--set", "max_steps"],
    # pack, data, codecs
    "pack translator missing": lambda k: ["pack", "/no/such", "--out", "b"],
    "pack rerank -1": lambda k: ["pack", str(MODELS / "shapes" / "translator"), "--out", "b", "--rerank", "-1"],
    "data report missing store": lambda k: ["data", "report", "/no/such/store"],
    "data shapes size 0": lambda k: ["data", "shapes", "--out", "c", "--size", "0"],
    "judge corpus missing": lambda k: ["codec", "train", "judge", "--corpus", "/no/such", "--out", "j"],
    "km.bin without trust": lambda k: ["codec", "convert-km", _k(k, "km.bin"), "--out", "km.safetensors"],
    "km output extension": lambda k: ["codec", "convert-km", _k(k, "km.bin"), "--out", "km.bin2", "--trust-pickle"],
    # serve: refused before anything listens
    "serve port 70000": lambda k: ["serve", "--port", "70000"],
    "serve max-batch 0": lambda k: ["serve", "--max-batch", "0"],
    "serve address not here": lambda k: ["serve", "--host", "203.0.113.7", "--port", "0"],
    "serve missing model": lambda k: ["serve", "--model", "/no/such/bundle", "--port", "0"],
}


def _run_case(kit, name: str, cwd: Path) -> subprocess.CompletedProcess:
    cwd.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "TMT_HOME": str(cwd.parent / "home"),
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([*TMT, *CASES[name](kit)], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def results(kit, tmp_path_factory):
    """Every case, run as its own process, as many at once as there are cores."""
    from concurrent.futures import ThreadPoolExecutor

    root = tmp_path_factory.mktemp("cases")
    names = sorted(CASES)
    dirs = {name: root / f"case{i}" for i, name in enumerate(names)}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = dict(zip(names, pool.map(lambda n: _run_case(kit, n, dirs[n]), names)))
    return {name: (done[name], dirs[name]) for name in names}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(results, name):
    done, cwd = results[name]
    err = done.stderr
    assert done.returncode == 2, (done.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    assert err.count("\n") == 1 and err.strip(), err
    assert not list(cwd.iterdir()), list(cwd.iterdir())  # no output left behind


def test_at_least_sixty_kinds_of_bad_input():
    assert len(CASES) >= 60
