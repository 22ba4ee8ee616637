"""tools/startup.py (`make bench`): fresh processes timed as a script calling caec per file sees
them, and a page section written without touching the rest of the page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tools import startup
from tools.pages import replace_section


def test_a_section_is_replaced_and_the_rest_of_the_page_kept(tmp_path: Path) -> None:
    page = tmp_path / "bench.md"
    page.write_text("# Speed\n\nNotes by hand.\n")
    replace_section(page, "a", ["first"])
    replace_section(page, "b", ["other"])
    replace_section(page, "a", ["second", "run"])
    text = page.read_text()
    assert text.startswith("# Speed\n\nNotes by hand.\n\n<!-- a: generated, do not edit -->\nsecond\nrun\n")
    assert "first" not in text and text.count("<!-- a: end -->") == 1 and "other" in text


def test_the_small_image_is_a_crop_or_the_same_synthetic_one(tmp_path: Path) -> None:
    photo = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "p.png")
    assert np.array_equal(startup.photo_crop(64, tmp_path / "p.png"), photo[18:82, 28:92])
    assert np.array_equal(startup.photo_crop(32, None), startup.photo_crop(32, None))
    assert startup.photo_crop(32, None).shape == (32, 32, 3)


def test_medians_and_the_targets() -> None:
    rows = [{"seconds": s, "peak_mib": m} for s, m in ((0.5, 90), (0.2, 100), (0.3, 95))]
    runs = {case: rows for case in startup.CASES}
    stats = startup.summarize(runs)["encode"]
    assert stats == {"median_s": 0.3, "min_s": 0.2, "median_peak_mib": 95, "max_peak_mib": 100}
    assert startup.verdict("encode", stats) == "<= 1.0 s: yes, <= 150 MB: yes"
    assert startup.verdict("info", stats) == "<= 0.3 s: yes"
    assert startup.verdict("info", stats | {"median_s": 0.31}) == "<= 0.3 s: **no**"


def test_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert startup.main(["--repeats", "0"]) == 1
    assert capsys.readouterr().err == "startup: error: --size and --repeats must be at least 1\n"
    assert startup.main(["--image", str(tmp_path / "none.png")]) == 1
    assert "no image" in capsys.readouterr().err


@pytest.mark.slow
def test_main_times_every_case_in_fresh_processes(tmp_path: Path) -> None:
    out, md = tmp_path / "startup.json", tmp_path / "bench.md"
    assert startup.main(["--size", "32", "--repeats", "1", "--out", str(out), "--markdown", str(md)]) == 0
    report = json.loads(out.read_text())
    assert set(report["runs"]) == set(startup.CASES)
    for case in startup.CASES:
        (run,) = report["runs"][case]
        assert run["seconds"] > 0 and run["peak_mib"] > 10
    assert "`python -m tools.startup --size 32 --repeats 1`" in md.read_text()
