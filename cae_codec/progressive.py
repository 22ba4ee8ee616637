"""Prefixes of progressive files, without torch: how many passes a file holds (and how many
it announced, for a file cut short), and the file cut to fewer passes or to a rate without
re-encoding (`caec decode --passes/--bpp`, `caec truncate`).

A progressive codec's payload module says which chunks are passes: ``passes(box) -> (whole,
declared)`` and ``chunks_for_passes(box, k) -> int``, the number of leading chunks that hold
its first ``k`` passes (with the chunks every prefix needs, its parameters and the like).
"""

from __future__ import annotations

import math
from types import ModuleType

from cae_codec import container, registry
from cae_codec.container import Box, v2
from cae_codec.errors import CaecError


def _progressive(box: Box) -> ModuleType:
    info = registry.for_file(box.codec)
    if not (info.capabilities.progressive and box.progressive):
        raise CaecError(f"a {box.codec} file is not progressive: it decodes whole or not at all")
    return registry.payload(info.id)


def passes(data: bytes) -> tuple[int, int]:
    """(passes that arrived whole, passes the header announced) of a progressive file."""
    box = container.parse(data)
    whole, declared = _progressive(box).passes(box)
    return int(whole), int(declared)


def cut(data: bytes, keep: int | None = None, bpp: float | None = None) -> tuple[bytes, int]:
    """The file with its first ``keep`` passes, or with as many as fit in ``bpp`` bits per pixel
    (header included), as a complete file; and the passes it holds. A file cut short gives at
    most the passes it has."""
    if (keep is None) == (bpp is None):
        raise CaecError("give the passes to keep or a rate, not both")
    box = container.parse(data)
    module = _progressive(box)
    whole, _ = module.passes(box)
    if keep is not None:
        if keep < 1:
            raise CaecError(f"cannot keep {keep} passes: at least one")
        k = min(keep, whole)
        return v2.truncate(data, module.chunks_for_passes(box, k)), k
    assert bpp is not None
    if not math.isfinite(bpp) or bpp <= 0:
        raise CaecError(f"--bpp must be a positive number, got {bpp:g}")
    budget = math.floor(bpp * box.width * box.height / 8)
    best: tuple[bytes, int] | None = None
    for k in range(1, whole + 1):
        out = v2.truncate(data, module.chunks_for_passes(box, k))
        if len(out) > budget:
            break
        best = out, k
    if best is None:
        first = len(v2.truncate(data, module.chunks_for_passes(box, 1)))
        raise CaecError(
            f"cannot reach {bpp:g} bpp: the first pass alone takes {first} bytes "
            f"({8 * first / (box.width * box.height):.4f} bpp)"
        )
    return best
