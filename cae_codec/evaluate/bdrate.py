"""Bjøntegaard delta rate (BD-rate) with piecewise-cubic (PCHIP) interpolation.

BD-rate is the average difference in bitrate between two rate-distortion curves at equal
quality, over the quality range both curves cover: log10(rate) is interpolated as a function
of quality for each curve (monotone piecewise-cubic Hermite, as in the JVET/VCEG
spreadsheets since VCEG-AL22, rather than the 2001 cubic polynomial fit, which overshoots
on real curves), both are integrated exactly over the overlap, and the mean difference of
log-rates is turned back into a ratio. Negative means the test codec needs fewer bits than
the anchor for the same quality: -50% is half the bits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator


class BDRateError(ValueError):
    """The curves cannot be compared (too few points, no common quality range...)."""


def _log_rate_curve(rate: Sequence[float], quality: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(quality ascending, log10 rate) with non-finite points dropped and equal qualities merged."""
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise BDRateError("rate and quality must be 1-D sequences of the same length")
    keep = np.isfinite(r) & np.isfinite(q)
    r, q = r[keep], q[keep]
    if q.size < 2:
        raise BDRateError("a curve needs at least two points of different quality")
    if np.any(r <= 0):
        raise BDRateError("rates must be positive")
    order = np.lexsort((r, q))  # by quality, then rate: the first of equal qualities is the cheapest
    r, q = r[order], q[order]
    # two points of equal quality: only the cheaper one is on the curve
    first = np.concatenate([[True], np.diff(q) > 0])
    r, q = r[first], q[first]
    if q.size < 2:
        raise BDRateError("a curve needs at least two points of different quality")
    return q, np.log10(r)


def bd_rate(
    anchor_rate: Sequence[float],
    anchor_quality: Sequence[float],
    test_rate: Sequence[float],
    test_quality: Sequence[float],
) -> float:
    """BD-rate of the test curve against the anchor, in percent.

    Points may come in any order; NaN/inf points are ignored. Raises :class:`BDRateError`
    when a curve has fewer than two usable points or the quality ranges do not overlap.
    """
    qa, la = _log_rate_curve(anchor_rate, anchor_quality)
    qt, lt = _log_rate_curve(test_rate, test_quality)
    lo, hi = max(qa[0], qt[0]), min(qa[-1], qt[-1])
    if not hi > lo:
        raise BDRateError(
            f"the quality ranges do not overlap (anchor {qa[0]:.4g}..{qa[-1]:.4g}, test {qt[0]:.4g}..{qt[-1]:.4g})"
        )
    area_a = float(PchipInterpolator(qa, la).integrate(lo, hi))
    area_t = float(PchipInterpolator(qt, lt).integrate(lo, hi))
    return (math.pow(10.0, (area_t - area_a) / (hi - lo)) - 1.0) * 100.0
