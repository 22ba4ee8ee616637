"""`caec serve` end to end in a real headless Chromium (issue 18): the page uploads a Kodak photo,
two codecs code it, the numbers it shows are the API's, and the .cae file it downloads decodes
with the CLI to the pixels it showed.

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``;
.ci/run installs them) and selenium (the dev extras); without them the test skips and says so (fails under
$CAEC_REQUIRE_BROWSER, which .ci/run sets).
"""

from __future__ import annotations

import base64
import io
import json
import os
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

from tests.conftest import KODAK, SHARED_DATA
from tools import web_screenshot

pytestmark = pytest.mark.slow  # a browser and a server start: several seconds

HOW = f"{web_screenshot.HOW}; README, 'The web page'"
PHOTO = KODAK / "kodim05.png"
MNIST = SHARED_DATA / "mnist"
CODECS = ("cae-pca-j2k", "webp")
QUERY = "codecs=cae-pca-j2k,webp&mode=quality&settings=cae-pca-j2k:4,webp:75"


def _skip_without_browser() -> None:
    # CI installs the browser (.ci/run) and sets this: there a missing one is a failure, not a skip
    missing = pytest.fail if os.environ.get("CAEC_REQUIRE_BROWSER") else pytest.skip
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing(f"selenium is not installed (pip install -e '.[dev]'); and {HOW}")
    if web_screenshot.browser_paths() is None:
        missing(f"no Chromium here: {HOW}")
    if not PHOTO.is_file():
        pytest.skip(f"Kodak not found in {KODAK} (set CAEC_SHARED_DATA to the shared/data folder)")


@pytest.fixture(scope="module")
def server(tiny_models: Path) -> Iterator[str]:
    """`caec serve` on a free port of 127.0.0.1, as a user starts it; its URL."""
    _skip_without_browser()
    digits = ["--mnist", str(MNIST)] if (MNIST / "t10k-images-idx3-ubyte.gz").is_file() else []
    with web_screenshot.serve("--dataset", str(KODAK), *digits) as (url, proc):
        yield url
    # Ctrl-C ends it as it ends every caec command: "caec: interrupted", exit status 130
    assert proc.returncode == 130, proc.stderr.read() if proc.stderr else ""


@pytest.fixture(scope="module")
def browser(server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    downloads = tmp_path_factory.mktemp("downloads")
    with web_screenshot.chromium(downloads) as driver:
        driver.downloads = downloads
        yield driver


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


wait_for = web_screenshot.wait_for


def test_the_page_codes_a_kodak_photo_with_two_codecs(server: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    web_screenshot.choose_codecs(browser, CODECS)
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

    # the downloaded file dropped on the decode area: its header and the same pixels
    browser.find_element(By.ID, "cae-file").send_keys(str(cae))
    wait_for(browser, "document.body.dataset.decoded")
    assert browser.execute_script("return document.body.dataset.decoded") == "done"
    assert "cae-pca-j2k" in browser.find_element(By.ID, "info").text
    shown_png = browser.execute_script("return document.querySelector('#decoded-img').src")
    assert shown_png.startswith("blob:")

    # the before/after viewer shows the selected reconstruction; the slider moves the split
    assert browser.find_element(By.ID, "viewer-section").is_displayed()
    browser.execute_script(
        "const s = document.querySelector('#split'); s.value = 300; s.dispatchEvent(new Event('input'));"
    )
    assert browser.execute_script("return document.querySelector('#after').style.clipPath").startswith("inset(")
    before = browser.find_element(By.ID, "zoom-level").text
    browser.find_element(By.ID, "zoom-in").click()
    assert browser.find_element(By.ID, "zoom-level").text == f"{round(int(before.rstrip('%')) * 1.5)}%"


def test_the_screenshot_tool_codes_a_photo_of_the_servers_set_at_caecs_size(tiny_models: Path, tmp_path: Path) -> None:
    _skip_without_browser()
    out = tmp_path / "web.png"
    assert web_screenshot.main(["--kodak", str(KODAK), "--photo", "kodim05.png", "--out", str(out)]) == 0
    with Image.open(out) as shot:
        assert shot.width == 1280 and shot.height > 600


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


def test_the_mnist_page_codes_a_drawn_and_a_picked_digit(server: str, browser: Any) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    browser.get(f"{server}mnist")
    wait_for(browser, "document.querySelector('#codecs-line').textContent.includes('MNIST')")
    pad = browser.find_element(By.ID, "pad")
    ActionChains(browser).move_to_element_with_offset(pad, 0, -90).click_and_hold().move_by_offset(
        5, 60
    ).move_by_offset(5, 60).move_by_offset(0, 40).release().perform()  # a "1", from the top down
    browser.find_element(By.ID, "code-drawing").click()
    wait_for(browser, "document.body.dataset.state")
    assert browser.execute_script("return document.body.dataset.state") == "done", browser.find_element(
        By.ID, "error"
    ).text
    result = browser.find_element(By.CSS_SELECTOR, ".digit-result[data-codec='mnist-dae']")
    assert result.find_element(By.CSS_SELECTOR, ".file-bytes").text.startswith("The file: ")
    assert len(result.find_elements(By.CSS_SELECTOR, "figure")) == (3 if MNIST.is_dir() else 2)
    if (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        browser.find_element(By.CSS_SELECTOR, "#digits button").click()
        wait_for(browser, "document.body.dataset.state === 'done' && document.querySelector('.digit-result')")
        assert "PCA, 30 components" in browser.find_element(By.ID, "results").text


@pytest.fixture
def progressive_server(tiny_models: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app in this process on uvicorn (a thread), with the fake progressive codec registered:
    the page's passes need a codec that declares them, which `caec serve` in a child would not have."""
    _skip_without_browser()
    import socket
    import threading

    import uvicorn

    from cae_codec import registry
    from cae_codec.container import v2
    from cae_codec.web.app import Settings, create_app
    from tests import fake_progressive

    monkeypatch.setitem(registry.CODECS, fake_progressive.ID, fake_progressive.INFO)
    monkeypatch.setitem(v2.CODEC_NUMBERS, fake_progressive.ID, fake_progressive.NUMBER)
    monkeypatch.setitem(v2.CODEC_IDS, fake_progressive.NUMBER, fake_progressive.ID)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = uvicorn.Server(uvicorn.Config(create_app(Settings()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def test_the_page_steps_through_a_progressive_codecs_passes(progressive_server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(progressive_server)
    web_screenshot.choose_codecs(browser, ("fake-planes",))
    browser.find_element(By.ID, "file").send_keys(str(PHOTO))
    wait_for(browser, "!document.querySelector('#go').disabled")
    browser.find_element(By.ID, "go").click()
    wait_for(browser, "document.body.dataset.state")
    assert browser.execute_script("return document.body.dataset.state") == "done"
    assert browser.find_element(By.ID, "passes").is_displayed()
    slider = browser.find_element(By.ID, "pass")
    assert slider.get_attribute("max") == "4"  # the codec's default quality: 4 planes, one chunk each
    last = browser.execute_script("return document.querySelector('#after').src")
    assert browser.find_element(By.ID, "pass-info").text.startswith("4 of 4 chunks")
    browser.execute_script(
        "const s = document.querySelector('#pass'); s.value = 1; s.dispatchEvent(new Event('input'));"
    )
    assert browser.find_element(By.ID, "pass-info").text.startswith("1 of 4 chunks")
    assert browser.execute_script("return document.querySelector('#after').src") != last
