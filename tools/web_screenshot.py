"""The web page's screenshot in docs/web.md, taken in a headless Chromium from a real `caec serve`.

    python tools/web_screenshot.py --kodak ../shared/data/kodak --out docs/web.png

Starts `caec serve --dataset KODAK` on a free port of 127.0.0.1, picks ``--photo`` from the
server's set in the page, codes it with caec, JPEG and WebP at the size of caec's file at
quality ``--quality``, shows WebP in the before/after viewer split at 45% and zoomed to 225%, and
saves the window. Needs Debian's chromium and chromium-driver and selenium (tests/test_web_browser.py
uses the same pieces).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"
HOW = "install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"


def browser_paths() -> tuple[str, str] | None:
    """Chromium and its driver, or None when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@contextmanager
def serve(*args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`caec serve ARGS` on a free port of 127.0.0.1: its URL and process, stopped by Ctrl-C after."""
    cmd = [sys.executable, "-m", "cae_codec", "serve", "--port", "0", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving on http://127.0.0.1:" not in line:
        proc.kill()
        raise RuntimeError(f"caec serve did not start: {line.strip()} {proc.stderr.read() if proc.stderr else ''}")
    try:
        yield line.split("serving on ")[1].split()[0], proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium(downloads: Path | None = None, size: tuple[int, int] = (1280, 1500)) -> Iterator[Any]:
    """A headless Chromium driven by selenium; downloads land in ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = browser_paths()
    if paths is None:
        raise RuntimeError(f"no Chromium here: {HOW}")
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    if downloads is not None:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: str, timeout: float = 300) -> None:
    """Until the JavaScript expression ``condition`` is true in the page."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(f"return {condition}"))


def choose_codecs(driver: Any, codecs: tuple[str, ...]) -> None:
    from selenium.webdriver.common.by import By

    wait_for(driver, f"document.querySelector('#codec-{codecs[-1]}') !== null")
    for box in driver.find_elements(By.CSS_SELECTOR, "#codecs input[type=checkbox]"):
        if box.is_selected() != (box.get_attribute("value") in codecs):
            box.click()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kodak", type=Path, default=KODAK)
    parser.add_argument("--photo", default="kodim23.png")
    parser.add_argument("--quality", type=int, default=4, help="caec's quality; the others get its file size")
    parser.add_argument("--out", type=Path, default=Path("docs/web.png"))
    args = parser.parse_args(argv)
    if browser_paths() is None:
        print(f"web_screenshot: no Chromium here: {HOW}", file=sys.stderr)
        return 1
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    with serve("--dataset", str(args.kodak)) as (url, _), chromium() as driver:
        driver.get(url)
        choose_codecs(driver, ("cae-pca-j2k", "jpeg", "webp"))
        wait_for(driver, "document.querySelectorAll('#dataset option').length > 1")
        Select(driver.find_element(By.ID, "dataset")).select_by_value(args.photo)
        wait_for(driver, "!document.querySelector('#go').disabled")
        driver.find_element(By.CSS_SELECTOR, "input[name=mode][value=size]").click()
        quality = driver.find_element(By.ID, "size-quality")
        quality.clear()
        quality.send_keys(str(args.quality))
        driver.find_element(By.ID, "go").click()
        wait_for(driver, "document.body.dataset.state")
        error = driver.find_element(By.ID, "error").text
        if error:
            print(f"web_screenshot: the page says: {error}", file=sys.stderr)
            return 1
        driver.find_element(By.CSS_SELECTOR, "#table tbody tr[data-codec='webp']").click()
        driver.execute_script(
            "const s = document.querySelector('#split'); s.value = 450; s.dispatchEvent(new Event('input'));"
        )
        for _ in range(2):  # 225%: the codecs' artefacts, not only their colours
            driver.find_element(By.ID, "zoom-in").click()
        # the table and the viewer in the window
        driver.execute_script("window.scrollTo(0, document.querySelector('#results').offsetTop - 10)")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(args.out))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
