"""tmt serve's HTTP API with an in-process client over the built-in bundle: every direction,
every kind of bad request (a 4xx with one line of JSON), and the server answering afterwards."""

from __future__ import annotations

import io
import json
import re
import threading

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from starlette.testclient import TestClient  # noqa: E402

from tmt.bundle import Bundle  # noqa: E402
from tmt.paths import EXAMPLES  # noqa: E402
from tmt.serve.app import create_app  # noqa: E402

SPEECH = (EXAMPLES / "speech.wav").read_bytes()
IMAGE = (EXAMPLES / "image.png").read_bytes()
TEXT = (EXAMPLES / "text.txt").read_text().strip()


@pytest.fixture(scope="module")
def bundle():
    return Bundle.load("shapes")


@pytest.fixture(scope="module")
def client(bundle):
    app = create_app(bundle, max_upload=2_000_000, window=0.0)
    with TestClient(app) as client:
        yield client


def post(client, source, target, *, text=None, file=None, name="input", kind=None, **options):
    data = {"source": source, "target": target, **{k: str(v) for k, v in options.items()}}
    if text is not None:
        data["text"] = text
    files = {"file": (name, file, kind or "application/octet-stream")} if file is not None else None
    return client.post("/translate", data=data, files=files)


def test_page_info_and_health(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="record"' in page.text and "MediaRecorder" in page.text
    # works offline: no script, style or font from elsewhere
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)
    assert client.get("/health").json() == {"status": "ok", "model": "shapes"}
    info = client.get("/info").json()
    assert info["name"] == "shapes" and "encoder-decoder translator" in info["description"]


def test_served_with_int8_weights():
    app = create_app(Bundle.load("shapes", precision="int8"), window=0.0)
    with TestClient(app) as int8_client:
        assert int8_client.get("/info").json()["precision"] == "int8"
        response = post(int8_client, "text", "image", text=TEXT)
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("source,target", [
    ("text", "image"), ("text", "speech"), ("image", "text"), ("image", "speech"),
    ("speech", "text"), ("speech", "image")])
def test_every_direction_returns_its_content_type(client, source, target):
    inputs = {"text": dict(text=TEXT), "image": dict(file=IMAGE, kind="image/png"),
              "speech": dict(file=SPEECH, kind="audio/wav")}
    response = post(client, source, target, **inputs[source])
    assert response.status_code == 200, response.text
    assert float(response.headers["X-Tmt-Seconds"]) > 0
    if target == "image":
        assert response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.content)).size == (64, 64)
    elif target == "speech":
        assert response.headers["content-type"] == "audio/wav"
        wave, rate = sf.read(io.BytesIO(response.content))
        assert rate == 16000 and len(wave) > 8000
    else:
        body = response.json()
        assert set(body) == {"text", "score", "seconds"} and len(body["text"].split()) >= 4


def test_the_server_gives_what_the_library_gives(client, bundle):
    # examples/README.md: speech.wav says "a large blue hexagon in the middle"
    assert post(client, "speech", "text", file=SPEECH).json()["text"] == \
        "a large blue hexagon in the middle"
    expected = bundle.translate(EXAMPLES / "image.png", "image", "text").output
    assert post(client, "image", "text", file=IMAGE).json()["text"] == expected


def _silence_wav(seconds: float) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(16000 * seconds), np.float32), 16000, format="WAV")
    return buffer.getvalue()


@pytest.mark.parametrize("request_kw,status,message", [
    (dict(source="speech", target="image", file=b"RIFF....not a wave", kind="audio/wav"), 400, "not"),
    (dict(source="image", target="text", file=b"\x89PNG\r\n\x1a\n broken", kind="image/png"), 400, "image"),
    (dict(source="text", target="image", text="xylophone quantum zebra"), 400, "knows none of the words"),
    (dict(source="text", target="image"), 400, "missing field 'text'"),
    (dict(source="speech", target="image"), 400, "missing field 'file'"),
    (dict(source="", target="image", text=TEXT), 400, "missing field 'source'"),
    (dict(source="smell", target="image", text=TEXT), 400, "unknown modality"),
    (dict(source="text", target="text", text=TEXT), 400, "both text"),
    (dict(source="speech", target="text", file=b"hello", kind="text/plain"), 415, "audio/"),
    (dict(source="image", target="text", file=SPEECH, kind="audio/wav"), 415, "image/"),
    (dict(source="speech", target="text", file=b"", kind="audio/wav"), 400, "empty"),
    (dict(source="text", target="image", text=TEXT, beam_size="abc"), 400, "beam_size must be int"),
    (dict(source="text", target="image", text=TEXT, beam_size=0), 400, "beam"),
    (dict(source="text", target="image", text=TEXT, temperature="nan"), 400, "temperature"),
    (dict(source="speech", target="image", file=b"\0" * 2_100_000, kind="audio/wav"), 413, "larger"),
])
def test_bad_requests_get_one_line_and_a_4xx(client, request_kw, status, message):
    kw = dict(request_kw)
    response = post(client, kw.pop("source"), kw.pop("target"), **kw)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error and "\n" not in error and "Traceback" not in error
    # ...and the server still answers
    assert client.get("/health").status_code == 200
    assert post(client, "text", "image", text=TEXT).status_code == 200


def test_malformed_body_wrong_method_and_unknown_path(client):
    bad = client.post("/translate", content=b"--x\r\nnot multipart",
                      headers={"content-type": "multipart/form-data; boundary=x"})
    assert 400 <= bad.status_code < 500 and "error" in bad.json()
    assert client.get("/translate").status_code == 405 and "error" in client.get("/translate").json()
    assert client.get("/nope").status_code == 404 and "error" in client.get("/nope").json()


@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_every_strategy_answers(client, strategy):
    response = post(client, "image", "text", file=IMAGE, strategy=strategy, seed=0)
    assert response.status_code == 200, response.text
    assert response.json()["text"]


def test_a_silent_recording_is_refused_not_drawn(client):
    response = post(client, "speech", "image", file=_silence_wav(1.0), kind="audio/wav")
    assert response.status_code == 400 and "silent" in response.json()["error"]


def test_simultaneous_requests_of_one_direction_share_a_batch(bundle):
    app = create_app(bundle, window=0.5, max_batch=8)
    texts = ["a small red circle on the left", "a large blue star on the right",
             "a small green square at the top", TEXT]
    with TestClient(app) as client:
        alone = [post(client, "text", "image", text=t).content for t in texts]
        batches_before = len(app.state.batcher.batches)
        results: dict[int, bytes] = {}

        def ask(k: int) -> None:
            results[k] = post(client, "text", "image", text=texts[k]).content

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(len(texts))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sizes = app.state.batcher.batches[batches_before:]
    assert max(sizes) >= 2 and sum(sizes) == len(texts), sizes
    # batched or alone, each request gets the picture of its own text
    judge_equal = [np.array(Image.open(io.BytesIO(results[k]))) for k in range(len(texts))]
    expected = [np.array(Image.open(io.BytesIO(a))) for a in alone]
    for got, want in zip(judge_equal, expected, strict=True):
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 2.0


def test_info_is_json_serialisable(client):
    assert json.loads(json.dumps(client.get("/info").json()))["modalities"] == ["speech", "image", "text"]
