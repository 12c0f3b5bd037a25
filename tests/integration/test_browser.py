"""tmt serve in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by
selenium) opens the page, records from a fake microphone that plays the example WAV, asks for an
image, and the image judge reads the picture the page shows. A screenshot is kept.

Skipped, with the reason, where no Chromium or chromedriver is installed (``make test`` installs
them when run as root)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

pytestmark = pytest.mark.browser

CAPTION = "a large blue hexagon in the middle"  # tmt/assets/examples/README.md


def _browser() -> tuple[str, str]:
    chrome = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip("no Chromium and chromedriver here (Debian: apt-get install chromium "
                    "chromium-driver; make test installs them when run as root)")
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[dev]')")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install -e '.[serve]')")
    return chrome, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen([sys.executable, "-m", "tmt", "serve", "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(url + "health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    raise AssertionError((tmp_path / "serve.log").read_text()) from None
                time.sleep(0.1)
        else:
            raise AssertionError("tmt serve did not answer within 60 s")
        yield url
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def test_microphone_to_image_in_chromium(server, tmp_path):
    chrome, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tmt.data.shapes_world import compare_records, parse_caption
    from tmt.eval.image_judge import ImageJudge
    from tmt.paths import EXAMPLES, JUDGES

    # the example utterance with silence around it: the fake microphone loops its file
    wave, rate = sf.read(EXAMPLES / "speech.wav", dtype="float32")
    lead, tail = np.zeros(int(0.3 * rate), np.float32), np.zeros(int(3.0 * rate), np.float32)
    microphone = tmp_path / "microphone.wav"
    sf.write(microphone, np.concatenate([lead, wave, tail]), rate, subtype="PCM_16")
    speech_seconds = len(wave) / rate

    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={microphone}", "--window-size=900,1200"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        wait = WebDriverWait(browser, 90)
        browser.get(server)
        wait.until(lambda b: "shapes" in b.find_element(By.ID, "model").text)
        browser.find_element(By.ID, "record").click()
        wait.until(lambda b: b.find_element(By.ID, "status").text == "recording…")
        time.sleep(0.3 + speech_seconds + 1.2)
        browser.find_element(By.ID, "record").click()
        wait.until(lambda b: b.find_element(By.ID, "status").text.startswith("recorded"))
        browser.find_element(By.ID, "target-image").click()
        browser.find_element(By.ID, "translate").click()
        wait.until(lambda b: b.find_element(By.ID, "status").text in ("done", "failed"))
        browser.save_screenshot(str(tmp_path / "serve-page.png"))
        print(f"screenshot: {tmp_path / 'serve-page.png'}")
        assert browser.find_element(By.ID, "error").text == ""
        assert browser.find_element(By.ID, "status").text == "done"
        assert browser.find_element(By.ID, "timing").text.startswith("took ")
        source = browser.find_element(By.ID, "out-image").get_attribute("src")
    finally:
        browser.quit()
    assert source is not None and source.startswith("data:image/png;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGB")
    picture.save(tmp_path / "shown.png")
    (judged,) = ImageJudge.load(JUDGES / "image").predict([picture])
    reference = parse_caption(CAPTION)
    assert reference is not None
    scores = compare_records(judged, reference)
    assert all(right == total for right, total in scores.values()), (judged, scores)
    assert Path(tmp_path / "serve-page.png").stat().st_size > 10_000
