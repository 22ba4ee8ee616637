"""Find a codec setting whose file is as large as possible without exceeding a byte budget.

Each codec exposes one knob along which its file size grows (JPEG quality, a JPEG2000 PSNR
target, a JPEG XL distance, caec's quantization step...). We bisect along it: first the two
ends (the smallest file must fit, else the target cannot be reached; the largest is taken
when it fits), then halve the interval. A codec whose size is not perfectly monotonic in its
knob can only make the search land a little below the best setting, never above the budget:
only files that fit are ever returned, and of those the largest seen.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Knob:
    """A codec's rate control: values in [lo, hi]; ``rate_increases`` says which end gives more bits."""

    name: str
    lo: float
    hi: float
    integer: bool = False
    rate_increases: bool = True
    log: bool = False  # bisect on log(value): for scale-like knobs (steps, distances)
    steps: int = 12  # halvings of a continuous knob's range; integer knobs go down to one unit

    def __post_init__(self) -> None:
        if not self.lo < self.hi:
            raise ValueError(f"knob {self.name}: need lo < hi")
        if self.log and self.lo <= 0:
            raise ValueError(f"knob {self.name}: a log knob needs lo > 0")

    def value(self, pos: float) -> float:
        """Knob value at position ``pos`` in [0, 1] (integer knobs: pos is an index), rate growing with pos."""
        if self.integer:
            n = int(self.hi - self.lo)
            idx = int(pos) if self.rate_increases else n - int(pos)
            return float(int(self.lo) + idx)
        p = pos if self.rate_increases else 1.0 - pos
        if self.log:
            return math.exp(math.log(self.lo) + p * (math.log(self.hi) - math.log(self.lo)))
        return self.lo + p * (self.hi - self.lo)


@dataclass
class Encoded:
    knob: float
    data: bytes
    seconds: float  # time of this one encode


@dataclass
class SearchResult:
    best: Encoded | None  # None: even the smallest file is over budget
    smallest_bytes: int  # size at the low-rate end of the knob
    tries: int


class MemoEncoder:
    """Encodes (and times) each knob value once, so several targets on one image share the work."""

    def __init__(self, encode: Callable[[float], bytes]) -> None:
        self._encode = encode
        self._seen: dict[float, Encoded] = {}

    def __call__(self, knob: float) -> Encoded:
        hit = self._seen.get(knob)
        if hit is None:
            t0 = time.perf_counter()
            data = self._encode(knob)
            hit = Encoded(knob, bytes(data), time.perf_counter() - t0)
            self._seen[knob] = hit
        return hit


def search_rate(encode: Callable[[float], Encoded], knob: Knob, budget_bytes: int) -> SearchResult:
    """Largest file found with ``len(data) <= budget_bytes`` (bisection on ``knob``)."""
    tries = 0

    def at(pos: float) -> Encoded:
        nonlocal tries
        tries += 1
        return encode(knob.value(pos))

    lo: float = 0
    hi: float = int(knob.hi - knob.lo) if knob.integer else 1.0
    smallest = at(lo)
    if len(smallest.data) > budget_bytes:
        return SearchResult(None, len(smallest.data), tries)
    largest = at(hi)
    if len(largest.data) <= budget_bytes:
        return SearchResult(largest, len(smallest.data), tries)
    best = smallest
    for _ in range(64 if knob.integer else knob.steps):
        if knob.integer and hi - lo <= 1:
            break
        mid = (lo + hi) // 2 if knob.integer else 0.5 * (lo + hi)
        cur = at(mid)
        if len(cur.data) <= budget_bytes:
            lo = mid
            if len(cur.data) > len(best.data):
                best = cur
        else:
            hi = mid
    return SearchResult(best, len(smallest.data), tries)
