"""Rate control: find a codec setting whose file is as large as possible without exceeding a
byte budget. `caec encode --bpp/--size` and the evaluation (`compare`, `bdrate`) run this one search.

Each codec exposes one knob along which its file size grows (JPEG quality, a JPEG2000 PSNR
target, a JPEG XL distance, caec's quantization step...). We bisect along it: first the two
ends (the smallest file must fit, else the target cannot be reached; the largest is taken
when it fits), then halve the interval. A codec whose size is not perfectly monotonic in its
knob can only make the search land a little below the best setting, never above the budget:
only files that fit are ever returned, and of those the largest seen.

An encoder may share per-image work between its settings (caec's CAE analysis, one per
family member, run when a setting first needs it): it is timed apart (``SharedWork``), so a
target can be charged with all the shared work its own encodes needed, whichever target ran
it first (docs/evaluation.md, "Times").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

T = TypeVar("T")


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
    # the codec's own rate control is this search (caec encode --bpp bisects its packs the same
    # way): a point's encode time then counts every encode of its search, as a user of that rate
    # control waits for them all; otherwise only the encode at the setting found, as a user of
    # the library gives that setting (cjpeg -q)
    charge_whole_search: bool = False

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
    seconds: float  # time of this one encode, less the shared work it ran (timed apart)
    needs: frozenset[str] = frozenset()  # the SharedWork it used, whether it ran it or found it done


class SharedWork:
    """Per-image work that several encodes of one image share, each piece run once, on first
    use, and timed on its own (caec's CAE analysis by each family member)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._results: dict[str, object] = {}
        self._used: set[str] = set()

    def get(self, name: str, run: Callable[[], T]) -> T:
        """The result of ``run`` (run now if it is the first request for ``name``)."""
        self._used.add(name)
        if name not in self._results:
            t0 = time.perf_counter()
            self._results[name] = run()
            self.seconds[name] = time.perf_counter() - t0
        return cast(T, self._results[name])

    def take_used(self) -> frozenset[str]:
        """The names requested since the last call."""
        used, self._used = frozenset(self._used), set()
        return used


class SharedEncode:
    """``knob -> bytes`` for one image whose calls share ``shared`` (what ``prepare`` returns
    for a codec with per-image work)."""

    def __init__(self, encode: Callable[[float], bytes], shared: SharedWork) -> None:
        self._encode = encode
        self.shared = shared

    def __call__(self, knob: float) -> bytes:
        return self._encode(knob)


def encode_seconds(encodes: Iterable[Encoded], shared_seconds: Mapping[str, float]) -> float:
    """What making ``encodes`` from scratch costs: each one's own time, plus each piece of shared
    work they need, counted once."""
    own, needs = 0.0, set[str]()
    for e in encodes:
        own += e.seconds
        needs |= e.needs
    return own + sum(shared_seconds[name] for name in needs)


@dataclass
class SearchResult:
    best: Encoded | None  # None: even the smallest file is over budget
    smallest_bytes: int  # size at the low-rate end of the knob
    tries: int
    tried: tuple[Encoded, ...] = ()  # each setting the search encoded, once, in order


class MemoEncoder:
    """Encodes (and times) each knob value once, so several targets on one image share the work."""

    def __init__(self, encode: Callable[[float], bytes]) -> None:
        self._encode = encode
        self.shared = encode.shared if isinstance(encode, SharedEncode) else SharedWork()
        self._seen: dict[float, Encoded] = {}

    def __call__(self, knob: float) -> Encoded:
        hit = self._seen.get(knob)
        if hit is None:
            ran_before = set(self.shared.seconds)
            self.shared.take_used()
            t0 = time.perf_counter()
            data = self._encode(knob)
            seconds = time.perf_counter() - t0
            ran_now = sum(s for name, s in self.shared.seconds.items() if name not in ran_before)
            hit = Encoded(knob, bytes(data), seconds - ran_now, self.shared.take_used())
            self._seen[knob] = hit
        return hit


def search_rate(encode: Callable[[float], Encoded], knob: Knob, budget_bytes: int) -> SearchResult:
    """Largest file found with ``len(data) <= budget_bytes`` (bisection on ``knob``)."""
    tries = 0
    tried: dict[float, Encoded] = {}

    def at(pos: float) -> Encoded:
        nonlocal tries
        tries += 1
        found = encode(knob.value(pos))
        tried.setdefault(found.knob, found)
        return found

    lo: float = 0
    hi: float = int(knob.hi - knob.lo) if knob.integer else 1.0
    smallest = at(lo)
    if len(smallest.data) > budget_bytes:
        return SearchResult(None, len(smallest.data), tries, tuple(tried.values()))
    largest = at(hi)
    if len(largest.data) <= budget_bytes:
        return SearchResult(largest, len(smallest.data), tries, tuple(tried.values()))
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
    return SearchResult(best, len(smallest.data), tries, tuple(tried.values()))
