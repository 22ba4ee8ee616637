"""`caec serve` end to end in a real headless Chromium (issue 18): the page uploads a Kodak photo,
two codecs code it, the numbers it shows are the API's, and the .cae file it downloads decodes
with the CLI to the pixels it showed.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``;
.ci/run installs them) and selenium (the dev extras); without them the test skips and says so (fails under
$CAEC_REQUIRE_BROWSER, which .ci/run sets).
``CAEC_WEB_SCREENSHOT=docs/web.png`` keeps the page's screenshot there (docs/web.md shows it).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import KODAK

pytestmark = pytest.mark.slow  # a browser and a server start: several seconds

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
HOW = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; README, 'The web page')"
PHOTO = KODAK / "kodim05.png"
CODECS = ("cae-pca-j2k", "webp")
QUERY = "codecs=cae-pca-j2k,webp&mode=quality&settings=cae-pca-j2k:4,webp:75"


def _skip_without_browser() -> None:
    # CI installs the browser (.ci/run) and sets this: there a missing one is a failure, not a skip
    missing = pytest.fail if os.environ.get("CAEC_REQUIRE_BROWSER") else pytest.skip
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing(f"selenium is not installed (pip install -e '.[dev]'); and {HOW}")
    if CHROMIUM is None or CHROMEDRIVER is None:
        missing(f"no Chromium here: {HOW}")
    if not PHOTO.is_file():
        pytest.skip(f"Kodak not found in {KODAK} (set CAEC_SHARED_DATA to the shared/data folder)")


@pytest.fixture(scope="module")
def server(tiny_models: Path) -> Iterator[str]:
    """`caec serve` on a free port of 127.0.0.1, as a user starts it; its URL."""
    _skip_without_browser()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cae_codec", "serve", "--port", "0", "--dataset", str(KODAK)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on http://127.0.0.1:" not in line:
        proc.kill()
        pytest.fail(f"caec serve did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}")
    url = line.split("serving on ")[1].split()[0]
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # Ctrl-C ends it as it ends every caec command: "caec: interrupted", exit status 130
    assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""


@pytest.fixture(scope="module")
def browser(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1500"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    try:
        yield driver
    finally:
        driver.quit()


def api_results(url: str, image: bytes) -> dict[str, dict[str, Any]]:
    request = urllib.request.Request(f"{url}api/compress?{QUERY}", data=image, method="POST")
    with urllib.request.urlopen(request, timeout=120) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line]
    return {e["codec"]: e for e in events if e["event"] == "result"}


def downloaded(folder: Path, name: str, timeout: float = 30) -> Path:
    path = folder / name
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.is_file() and not (folder / f"{name}.crdownload").exists():
            return path
        time.sleep(0.1)
    raise AssertionError(f"{name} was not downloaded (the folder has {sorted(p.name for p in folder.iterdir())})")


def wait_for(driver: Any, what: str, timeout: float = 120) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(f"return {what}"))


def test_the_page_codes_a_kodak_photo_with_two_codecs(server: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    wait_for(browser, "document.querySelector('#codec-webp') !== null")
    for box in browser.find_elements(By.CSS_SELECTOR, "#codecs input[type=checkbox]"):
        if box.is_selected() != (box.get_attribute("value") in CODECS):
            box.click()
    browser.find_element(By.ID, "file").send_keys(str(PHOTO))
    wait_for(browser, "!document.querySelector('#go').disabled")
    browser.find_element(By.ID, "go").click()
    wait_for(browser, "document.body.dataset.state")
    state = browser.execute_script("return document.body.dataset.state")
    assert state == "done", browser.find_element(By.ID, "error").text

    shown = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "#table tbody tr"):
        cells = {c: row.find_element(By.CSS_SELECTOR, f"td.{c}").text for c in ("bytes", "bpp", "psnr", "msssim")}
        shown[row.get_attribute("data-codec")] = cells
    assert set(shown) == set(CODECS)
    # the numbers shown are the API's for the same upload (times aside: they are measured anew)
    api = api_results(server, PHOTO.read_bytes())
    for codec in CODECS:
        r = api[codec]
        assert shown[codec] == {
            "bytes": str(r["bytes"]),
            "bpp": f"{r['bpp']:.4f}",
            "psnr": f"{r['psnr']:.2f}",
            "msssim": f"{r['ms_ssim']:.4f}",
        }, codec

    # the .cae file the page offers, decoded by the CLI, gives the pixels the page showed
    row = browser.find_element(By.CSS_SELECTOR, "#table tbody tr[data-codec='cae-pca-j2k']")
    row.find_element(By.CSS_SELECTOR, "a.dl-file").click()
    row.find_element(By.CSS_SELECTOR, "a.dl-png").click()
    cae = downloaded(browser.downloads, "kodim05.cae-pca-j2k.cae")
    png = downloaded(browser.downloads, "kodim05.cae-pca-j2k.png")
    assert cae.read_bytes() == base64.b64decode(api["cae-pca-j2k"]["file"])
    out = tmp_path / "back.png"
    done = subprocess.run(
        [sys.executable, "-m", "cae_codec", "decode", str(cae), "-o", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(png)))
    assert np.array_equal(
        np.asarray(Image.open(out)), np.asarray(Image.open(io.BytesIO(base64.b64decode(api["cae-pca-j2k"]["png"]))))
    )

    # the before/after viewer shows the selected reconstruction; the slider moves the split
    assert browser.find_element(By.ID, "viewer-section").is_displayed()
    browser.execute_script(
        "const s = document.querySelector('#split'); s.value = 300; s.dispatchEvent(new Event('input'));"
    )
    assert browser.execute_script("return document.querySelector('#after').style.clipPath").startswith("inset(")
    browser.find_element(By.ID, "zoom-in").click()
    assert browser.find_element(By.ID, "zoom-level").text != ""

    shot = tmp_path / "web.png"
    browser.save_screenshot(str(shot))
    keep = os.environ.get("CAEC_WEB_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


def test_a_broken_upload_shows_one_sentence(server: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    broken = tmp_path / "broken.png"
    broken.write_bytes(PHOTO.read_bytes()[:5000])  # a PNG cut inside its pixel data
    browser.get(server)
    wait_for(browser, "document.querySelector('#codec-webp') !== null")
    browser.find_element(By.ID, "file").send_keys(str(broken))
    wait_for(browser, "!document.querySelector('#go').disabled")
    browser.find_element(By.ID, "go").click()
    wait_for(browser, "document.body.dataset.state")
    error = browser.find_element(By.ID, "error").text
    assert error.startswith("The upload: cannot decode image") and error.endswith(".") and "\n" not in error
    assert "Traceback" not in browser.page_source
