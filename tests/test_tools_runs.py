"""tools/determinism.py, tools/huge.py and tools/model_card.py, each run on a tiny folder of photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import smooth_image
from tools import determinism, huge, model_card


@pytest.fixture
def photos(tmp_path: Path, rng) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(smooth_image(rng, 64, 96, 3)).save(folder / "a.png")
    Image.fromarray(smooth_image(rng, 96, 64, 3)).save(folder / "b.png")  # a portrait one
    return folder


@pytest.mark.slow
def test_determinism_compares_thread_counts_in_separate_processes(photos: Path, capsys) -> None:
    assert determinism.main(["--kodak", str(photos), "--threads", "1", "2", "--limit", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [
        "decoded 1 files with 1 thread(s), subpixel image layer",
        "decoded 1 files with 2 thread(s), subpixel image layer",
    ]  # each child reports the thread count torch really ran with
    assert out[2] == f"1 vs 2 threads: 0 of 1 images differ, 0 of {64 * 96 * 3} samples, largest difference 0"


@pytest.mark.slow
def test_huge_measures_encode_and_decode_in_their_own_processes(photos: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "huge.json"
    assert huge.main(["--sizes", "0.05", "--kodak", str(photos), "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["step"] for r in runs] == ["encode", "decode"]
    assert all((r["width"], r["height"]) == (274, 183) for r in runs)  # 3:2, 0.05 megapixels
    # each figure is one child's peak: at least the interpreter and torch, far below the machine
    assert all(100 < r["peak_rss_mib"] < 4096 and r["output_bytes"] > 0 for r in runs)
    assert "| 0.1 | 274x183 | encode |" in capsys.readouterr().out


def test_huge_refuses_a_folder_without_photos(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no Kodak PNGs in"):
        huge.main(["--sizes", "0.05", "--kodak", str(tmp_path)])


def test_model_card_rewrites_the_marked_table(photos: Path, tmp_path: Path, capsys) -> None:
    card = tmp_path / "card.md"
    card.write_text(f"# card\n\n{model_card.START}\nold\n{model_card.END}\n\nafter\n")
    args = ["--dataset", str(photos), "--workers", "1", "--qualities", "2", "9", "--card", str(card)]
    assert model_card.main([*args, "--json", str(tmp_path / "card.json")]) == 0
    text = card.read_text()
    assert "old" not in text and text.startswith("# card\n") and text.endswith("\nafter\n")
    rows = [line for line in text.splitlines() if line.startswith(("| 2 |", "| 9 |"))]
    assert len(rows) == 2 and "Kodak, 2 images" in text
    table = json.loads((tmp_path / "card.json").read_text())["table"]
    assert [r["quality"] for r in table] == [2, 9] and table[1]["bpp"] > table[0]["bpp"]
    # OpenJPEG bisected to the largest file not above caec's, image by image
    assert all(r["j2k_bpp"] <= r["bpp"] for r in table)


def test_model_card_refuses_in_one_line(photos: Path, tmp_path: Path, capsys) -> None:
    assert model_card.main(["--dataset", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err == f"model_card: error: no .png images in {tmp_path / 'none'}\n"
    assert model_card.main(["--dataset", str(photos), "--qualities", "0"]) == 1
    assert capsys.readouterr().err == "model_card: error: qualities are 1..10\n"
