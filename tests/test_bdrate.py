"""BD-rate against cases whose answer is known by hand, and its invariants."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cae_codec.evaluate.bdrate import BDRateError, bd_rate
from cae_codec.evaluate.curves import RDCurve

# a realistic anchor: JPEG2000 on Kodak as CompressAI published it (rounded)
RATE = [0.126, 0.241, 0.479, 0.799, 1.198, 2.397]
PSNR = [26.44, 28.42, 31.07, 33.49, 35.68, 39.79]


def test_identical_curves_are_zero() -> None:
    assert bd_rate(RATE, PSNR, RATE, PSNR) == pytest.approx(0.0, abs=1e-9)


def test_half_the_rate_everywhere_is_minus_50() -> None:
    assert bd_rate(RATE, PSNR, [r / 2 for r in RATE], PSNR) == pytest.approx(-50.0, abs=1e-9)


def test_twice_the_rate_everywhere_is_plus_100() -> None:
    assert bd_rate(RATE, PSNR, [2 * r for r in RATE], PSNR) == pytest.approx(100.0, abs=1e-9)


def test_shifted_psnr_on_a_log_linear_curve() -> None:
    # PSNR = 30 + 10 log10(R): +1 dB at every rate is the same curve 10**-0.1 times cheaper
    rates = [0.1, 0.2, 0.4, 0.8, 1.6]
    anchor = [30 + 10 * math.log10(r) for r in rates]
    better = [q + 1.0 for q in anchor]
    expected = (10 ** (-1.0 / 10) - 1) * 100  # -20.57%
    assert bd_rate(rates, anchor, rates, better) == pytest.approx(expected, abs=1e-9)
    assert bd_rate(rates, better, rates, anchor) == pytest.approx((10**0.1 - 1) * 100, abs=1e-9)


def test_two_point_curves_by_hand() -> None:
    # with two points PCHIP is the straight line, whose mean over [32, 40] is its value at 36:
    # anchor log10 R(36) = log10(0.1) + 0.6 = -0.4; test log10 R(36) = log10(0.2) + (4/9) log10(8)
    got = bd_rate([0.1, 1.0], [30.0, 40.0], [0.2, 1.6], [32.0, 41.0])
    diff = (math.log10(0.2) + 4 / 9 * math.log10(8.0)) - (-0.4)
    assert got == pytest.approx((10**diff - 1) * 100, abs=1e-9)
    assert got == pytest.approx(26.59, abs=0.01)


def test_order_and_non_finite_points_do_not_matter() -> None:
    test_r = [r * 0.8 for r in RATE]
    ref = bd_rate(RATE, PSNR, test_r, PSNR)
    order = [3, 0, 5, 1, 4, 2]
    shuffled = bd_rate([RATE[i] for i in order], [PSNR[i] for i in order], test_r[::-1], PSNR[::-1])
    assert shuffled == pytest.approx(ref, abs=1e-9)
    with_nan = bd_rate([*RATE, 3.0], [*PSNR, math.nan], test_r, PSNR)
    assert with_nan == pytest.approx(ref, abs=1e-9)
    assert ref == pytest.approx(-20.0, abs=1e-9)


def test_only_the_overlap_counts() -> None:
    # the test curve covers the anchor's upper part only, where it is half the rate; log-linear
    # points, so that PCHIP through any subset of them is the same line
    rates = [0.1, 0.2, 0.4, 0.8, 1.6]
    psnr = [30 + 10 * math.log10(r) for r in rates]
    got = bd_rate(rates, psnr, [r / 2 for r in rates[2:]], psnr[2:])
    assert got == pytest.approx(-50.0, abs=1e-9)
    # while the anchor's lower part, where the test curve is twice the rate, is left out
    lower = bd_rate(rates, psnr, [2 * r for r in rates[:3]], psnr[:3])
    assert lower == pytest.approx(100.0, abs=1e-9)


def test_equal_qualities_keep_the_cheaper_point() -> None:
    got = bd_rate(RATE, PSNR, [*RATE, 5.0], [*PSNR, PSNR[-1]])
    assert got == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("rate", "quality", "needle"),
    [
        ([0.5], [30.0], "at least two"),
        ([0.5, 1.0], [30.0, math.nan], "at least two"),
        ([0.5, 1.0], [math.inf, math.inf], "at least two"),  # every point dropped: was an IndexError
        ([0.0, 1.0], [30.0, 35.0], "positive"),
        ([0.1, 0.2], [45.0, 50.0], "overlap"),
    ],
)
def test_unusable_curves_raise(rate: list[float], quality: list[float], needle: str) -> None:
    with pytest.raises(BDRateError, match=needle):
        bd_rate(RATE, PSNR, rate, quality)


curve_points = st.lists(
    st.tuples(st.floats(0.05, 4.0), st.floats(0.1, 3.0)), min_size=3, max_size=8, unique_by=lambda t: t[0]
)


@settings(max_examples=60, deadline=None)
@given(a=curve_points, b=curve_points)
def test_swapping_anchor_and_test_inverts_the_ratio(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> None:
    # monotone curves: quality = 25 + cumulative gains along increasing rates
    def curve(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
        rates = sorted(r for r, _ in points)
        gains = np.cumsum([g for _, g in points])
        return rates, list(25 + gains)

    ra, qa = curve(a)
    rb, qb = curve(b)
    try:
        forward = bd_rate(ra, qa, rb, qb)
    except BDRateError:
        return
    backward = bd_rate(rb, qb, ra, qa)
    assert (1 + forward / 100) * (1 + backward / 100) == pytest.approx(1.0, rel=1e-9)


def test_published_curves_rank_as_published(anchors_dir: Path) -> None:
    j2k = RDCurve.load(anchors_dir / "jpeg2000.json")
    factorized = RDCurve.load(anchors_dir / "compressai-bmshj2018-factorized_mse_cpu.json")
    hyperprior = RDCurve.load(anchors_dir / "compressai-bmshj2018-hyperprior_mse_cpu.json")
    bd_f = bd_rate(j2k.bpp, j2k.psnr, factorized.bpp, factorized.psnr)
    bd_h = bd_rate(j2k.bpp, j2k.psnr, hyperprior.bpp, hyperprior.psnr)
    # the hyperprior model is the better of the two, and both beat OpenJPEG-through-ffmpeg JPEG2000
    assert bd_h < bd_f < 0
    assert bd_h > -60


def test_bd_rate_as_a_table_cell() -> None:
    from cae_codec.evaluate.report import bd_rate_text

    assert bd_rate_text(RATE, PSNR, [r / 2 for r in RATE], PSNR) == "-50.00%"
    assert bd_rate_text(RATE, PSNR, [0.5, 1.0], [math.inf, math.inf]).startswith("n/a (a curve needs at least two")
