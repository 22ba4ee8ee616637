"""tools/speed.py (`make bench`): what it times is what the codecs do, and its report says so."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cae_codec import api
from cae_codec.evaluate.classic import Jpeg2000
from tests.conftest import smooth_image
from tools import speed

HAS_COMPRESSAI = importlib.util.find_spec("compressai") is not None


def test_threaded_openjpeg_writes_the_evaluations_bytes(rng) -> None:
    img = smooth_image(rng, 48, 80, 3)
    for knob in (25.0, 40.0):
        assert speed.ThreadedJpeg2000(2).encode(img, knob) == Jpeg2000().encode(img, knob)


def test_a_row_times_caec_and_openjpeg_at_caecs_size(codec, rng) -> None:
    img = smooth_image(rng, 64, 96, 3)
    row = speed.time_image(img, codec, 4, speed.ThreadedJpeg2000(1), None, repeats=1)
    data = codec.encode(img, quality=4)
    assert row["caec_bpp"] == 8 * len(data) / (64 * 96)
    assert row["components"] == api.info(data)["components"]
    assert 0 < row["jpeg2000_bpp"] <= row["caec_bpp"]  # the largest OpenJPEG file not above caec's
    caec_s = row["caec_encode_s"] + row["caec_decode_s"]
    assert row["ratio"] == pytest.approx(caec_s / (row["jpeg2000_encode_s"] + row["jpeg2000_decode_s"]))
    assert "compressai_encode_s" not in row


def test_steps_take_turns_and_the_fastest_of_each_counts(monkeypatch) -> None:
    # a takes 5, 2, 3 and b 4, 6, 1 time units in rounds 1, 2, 3
    clock = iter([0, 5, 5, 9, 9, 11, 11, 17, 17, 20, 20, 21])
    monkeypatch.setattr(speed.time, "perf_counter", lambda: next(clock))
    order: list[str] = []
    steps = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    assert speed.fastest_in_turns(steps, repeats=3) == {"a": 2, "b": 1}
    assert order == ["a", "b", "a", "b", "a", "b"]


def _row(caec: float, j2k: float, peer: float | None) -> dict[str, float]:
    row = {"caec_bpp": 0.4, "jpeg2000_bpp": 0.39, "caec_encode_s": caec / 2, "caec_decode_s": caec / 2}
    row |= {"jpeg2000_encode_s": j2k, "jpeg2000_decode_s": 0.0, "ratio": caec / j2k}
    if peer is not None:
        row |= {"compressai_encode_s": peer, "compressai_decode_s": 0.0, "ratio_compressai": caec / peer}
    return row


SUMMARY = {"date": "2026-01-01", "images": 2, "dataset": "kodak", "model": "m", "quality": 4, "torch": "t"}
SUMMARY |= {"openjpeg": "o", "imagecodecs": "i", "compressai": "c", "compressai_n": 128, "compressai_m": 192}
SUMMARY |= {"threads": 2, "repeats": 3, "cpu": "x86_64", "cores": 2, "load_before": 0.5, "load_after": 1.5}
SUMMARY |= {"json": "b.json"}


@pytest.mark.parametrize(("peer_s", "verdict"), [(1.0, "within it"), (0.5, "**over it**")])
def test_the_ratios_are_of_the_mean_times_and_judged_against_the_budget(peer_s: float, verdict: str) -> None:
    rows = [_row(0.2, 0.05, peer_s), _row(0.4, 0.05, peer_s)]
    summary = SUMMARY | speed.summarize(rows)
    assert summary["ratio_of_means"] == pytest.approx(0.3 / 0.05)
    assert summary["ratio_compressai_of_means"] == pytest.approx(0.3 / peer_s)
    text = "\n".join(speed.markdown(summary, rows, "python tools/speed.py"))
    assert f"**caec / CompressAI factorized time ratio: {0.3 / peer_s:.2f}x**" in text
    assert f"at most {speed.BUDGET}x" in text and verdict in text
    assert "| CompressAI bmshj2018-factorized, quality 4 (N=128, M=192), random weights | - |" in text


def test_without_compressai_the_report_has_no_peer() -> None:
    rows = [_row(0.2, 0.05, None)]
    summary = SUMMARY | speed.summarize(rows)
    assert "ratio_compressai_of_means" not in summary
    text = "\n".join(speed.markdown(summary, rows, "python tools/speed.py --no-compressai"))
    assert "CompressAI" not in text and "caec / OpenJPEG time ratio: 4.00x" in text


def test_main_writes_the_json_and_markdown(tmp_path: Path, rng) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth_image(rng, 64, 96, 3)).save(photos / "a.png")
    out, md = tmp_path / "bench.json", tmp_path / "benchmark.md"
    args = ["--dataset", str(photos), "--repeats", "1", "--threads", "1", "--out", str(out), "--markdown", str(md)]
    assert speed.main([*args, "--no-compressai", "--note", "Run beside nothing."]) == 0
    report = json.loads(out.read_text())
    assert [r["image"] for r in report["rows"]] == ["a.png"] and report["summary"]["threads"] == 1
    assert report["summary"]["cpu"] == speed.cpu_name() != ""
    text = md.read_text()
    assert "`python -m tools.speed --quality 4 --threads 1 --no-compressai`" in text
    assert f"Raw numbers: `{out}`. Run beside nothing." in text


def test_main_refuses_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    assert speed.main(["--dataset", str(tmp_path), "--no-compressai"]) == 1
    assert capsys.readouterr().err == f"speed: error: no PNG images in {tmp_path}\n"
    assert speed.main(["--dataset", str(tmp_path), "--threads", "0"]) == 1
    assert capsys.readouterr().err == "speed: error: --threads and --repeats must be at least 1\n"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(speed.importlib.util, "find_spec", lambda name: None)
    assert speed.main(["--dataset", str(tmp_path)]) == 1
    assert "compressai is not installed" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_COMPRESSAI, reason="compressai is not installed (`make bench` installs it)")
def test_compressai_factorized_round_trips_any_size(rng) -> None:
    peer = speed.CompressAIFactorized()
    assert (peer.n, peer.m) == (128, 192)  # CompressAI's quality 4
    img = smooth_image(rng, 40, 70, 3)  # not a multiple of 16: padded, then cropped back
    out = peer.decode(peer.encode(img))
    assert out.shape == img.shape and out.dtype == np.uint8
    again = speed.CompressAIFactorized()  # seeded: the same random weights, the same bytes
    assert again.encode(img)["strings"] == peer.encode(img)["strings"]
    # the stand-ins for compressai's unused imports are gone once it is imported
    assert not any(isinstance(f, speed._StandInFinder) for f in sys.meta_path)
    assert not any(isinstance(m, speed._StandInModule) for m in sys.modules.values())
