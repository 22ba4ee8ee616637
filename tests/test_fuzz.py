"""Hostile .cae files through api.decode: every family of tools/fuzz.py, a few hundred cases.

`make fuzz` runs the same families with 10,000+ cases. A case passes when decoding either
works (shape as the header says) or raises a CaecError with a one-line message, within a
generous time bound; anything else (an imagecodecs error, a numpy reshape error, a hang)
fails the test with the input hypothesis shrank it to. Every family runs on version 2 (the
files caec writes) and version 1 (the files caec 0.1 wrote, still read).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cae_codec import api, container
from cae_codec.errors import CaecError
from tools.fuzz import (
    FAMILIES,
    OK,
    OK_NO_LATENT,
    Seeds,
    chunks_of,
    decode_outcome,
    empty_latent_file,
    first_chunk,
    fix_crcs,
    hostile_streams,
    make_seeds,
    stream_outcome,
    truncations,
    version_of,
)

# Typical malformed files fail in well under 10 ms (docs/robustness.md); the bound is
# generous so that a loaded CI machine cannot flake, while a hang or a huge allocation
# still fails.
CASE_SECONDS = 5.0
EXAMPLES_PER_FAMILY = 40
VERSIONS = ["v1", "v2"]


@pytest.fixture(scope="module")
def seeds(codec) -> Seeds:
    return make_seeds(lambda img, quality: codec.encode(img, quality=quality))


def of_version(seeds: Seeds, version: str) -> list[bytes]:
    return seeds.v1 if version == "v1" else seeds.v2


def rgba(files: list[bytes]) -> bytes:
    return next(s for s in files if container.parse(s).channels == 4)


def timed_outcome(data: bytes) -> str:
    t0 = time.perf_counter()
    outcome = decode_outcome(data)
    elapsed = time.perf_counter() - t0
    assert elapsed < CASE_SECONDS, f"{outcome!r} took {elapsed:.1f} s"
    return outcome


def test_seeds_decode(seeds: Seeds) -> None:
    # the mutations start from valid files of every layout, with latent and alpha chunks
    for files, version in ((seeds.v1, 1), (seeds.v2, 2)):
        assert [timed_outcome(s) for s in files] == [OK] * len(files)
        boxes = [container.parse(s) for s in files]
        assert {b.version for b in boxes} == {version}
        assert {b.channels for b in boxes} == {1, 2, 3, 4}
        assert any(b.first(container.ICC) is not None for b in boxes)
    # the version-1 seeds are the same files in the old layout: the same pixels, so the
    # mutations of either version start from the same decodable content
    for old, new in zip(seeds.v1, seeds.v2, strict=True):
        assert np.array_equal(api.decode(old, device="cpu"), api.decode(new, device="cpu"))


# the kind of error each family must reach within its examples: proof that it gets past
# the CRCs and the checks before the one it aims at
REACHES = {
    "v1-forged-header": "malformed header",
    "v1-chunk-layout": "chunk",
    "v1-j2k-foreign": "codestream",
    "v2-bit-flips": "CRC mismatch",
    "v2-forged-header": "malformed",
    "v2-chunk-layout": "chunk",
    "v2-parameters": "malformed parameters",
    "v2-j2k-foreign": "codestream",
    "v2-empty-latent": OK_NO_LATENT,
}


# decoding files without a latent of up to 1200 x 1200 pixels takes 10-20 s a family
SLOW_FAMILIES = {"v1-empty-latent", "v2-empty-latent"}


@pytest.mark.parametrize(
    "family", [pytest.param(f, marks=pytest.mark.slow) if f in SLOW_FAMILIES else f for f in sorted(FAMILIES)]
)
def test_fuzz_family(seeds: Seeds, family: str) -> None:
    outcomes: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_FAMILY,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases on every run: a CI failure reproduces locally
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        outcomes.append(timed_outcome(data.draw(FAMILIES[family](seeds))))

    run()
    assert len(outcomes) >= EXAMPLES_PER_FAMILY
    if family in REACHES:
        assert any(REACHES[family] in o for o in outcomes), sorted(set(outcomes))


@pytest.mark.parametrize("version", VERSIONS)
def test_truncation_at_every_byte(seeds: Seeds, version: str) -> None:
    # neither version is progressive here: a file cut anywhere is one FormatError line
    kinds = {timed_outcome(cut) for cut in truncations(rgba(of_version(seeds, version)))}
    assert all(k.startswith("FormatError: ") for k in kinds), kinds
    assert any("truncated" in k for k in kinds) and any("magic" in k for k in kinds)


@pytest.mark.parametrize("version", VERSIONS)
def test_header_bit_flips_with_fixed_crc_are_handled(seeds: Seeds, version: str) -> None:
    """The lowest and highest bit of every header byte, with the CRC recomputed so that the
    parser and the validation behind it see each change (all 8 bits: `make fuzz`)."""
    data = of_version(seeds, version)[0]
    kinds = set()
    for bit in (b for byte in range(first_chunk(data)) for b in (8 * byte, 8 * byte + 7)):
        bad = bytearray(data)
        bad[bit // 8] ^= 1 << (bit % 8)
        kinds.add(timed_outcome(fix_crcs(bytes(bad))))
    # version 1: flips in the step, quality or hash bytes still decode (or name the wrong
    # weights); version 2: a model number of 0 finds the weights by their hash
    assert OK in kinds and any("ModelError" in k for k in kinds)
    assert len(kinds) > (10 if version == "v1" else 8), kinds


@pytest.mark.parametrize("version", VERSIONS)
def test_fix_crcs_reaches_past_the_crc_checks(seeds: Seeds, version: str) -> None:
    """The CRC-fixing families are only useful if their output gets past the CRC checks."""
    data = of_version(seeds, version)[0]
    latent = dict(chunks_of(data))[container.LATENT]
    bad = bytearray(data)
    bad[data.index(latent) + 60] ^= 0xFF  # inside the latent codestream
    with pytest.raises(CaecError, match="CRC"):
        api.decode(bytes(bad), device="cpu")
    assert "CRC" not in decode_outcome(fix_crcs(bytes(bad)))
    # the header too: a changed field under a recomputed CRC reaches the field's check
    bad = bytearray(data)
    bad[first_chunk(data) - 5] ^= 0x01  # version 1: mosaic columns; version 2: chunk count
    assert "CRC" not in decode_outcome(fix_crcs(bytes(bad)))


def test_hostile_streams_are_refused_unread(seeds: Seeds) -> None:
    """/dev/zero, a PNG, forged lengths and endless data after a header or after its chunks:
    each is refused by container.read_file before it reads more than a genuine file would hold."""
    v1 = {name: stream_outcome(*case) for name, case in hostile_streams(seeds.v1[0]).items()}
    assert "not a .cae file" in v1["dev-zero"] and "not a .cae file" in v1["png"]
    assert "over this header's limit" in v1["latent-over-limit"]
    assert "ancillary chunks" in v1["ancillary-over-budget"]
    assert "too many chunks" in v1["endless-chunks"] and "too many chunks" in v1["huge-header-then-zeros"]
    assert "trailing data" in v1["trailing-data"] and "trailing data" in v1["huge-header-trailing-data"]
    v2 = {name: stream_outcome(*case) for name, case in hostile_streams(seeds.v2[0]).items()}
    assert "not a .cae file" in v2["dev-zero"] and "not a .cae file" in v2["png"]
    assert "over this header's limit" in v2["latent-over-limit"] and "over this header's limit" in v2["u32-length"]
    assert "more than N bytes" in v2["length-over-5-bytes"] and "more than N bytes" in v2["header-varint-endless"]
    assert "is above N" in v2["length-over-u32"] and "longer form than" in v2["length-overlong"]
    assert "N chunks, more than N" in v2["too-many-chunks"]
    assert "ancillary chunks hold more than N bytes" in v2["ancillary-over-budget"]
    assert "chunk iccp declares N bytes, over this header's limit of N" in v2["icc-over-limit"]
    # a version-2 header says how many chunks follow: after them, one byte more is refused
    for name in ("endless-chunks", "most-chunks-then-endless", "huge-most-chunks-then-endless"):
        assert "trailing data after the last chunk" in v2[name], name
    assert "trailing data" in v2["trailing-data"] and "trailing data" in v2["huge-header-trailing-data"]
    assert "invalid chunk type" in v2["header-then-zeros"] and "invalid chunk type" in v2["huge-header-then-zeros"]


@pytest.mark.parametrize("version", VERSIONS)
def test_files_without_a_latent_decode_quickly(seeds: Seeds, version: str) -> None:
    """K = 0 is valid at any size (issue 19, item 5): a 1-megapixel one is 8192 tiles."""
    files = of_version(seeds, version)
    wide = empty_latent_file(files[0], 1 << 20, 1, 3)
    assert version_of(wide) == int(version[1]) and timed_outcome(wide) == OK_NO_LATENT
    assert timed_outcome(empty_latent_file(files[1], 1000, 1000, 4)) == OK_NO_LATENT
