"""Hostile .cae files through api.decode: every family of tools/fuzz.py, a few hundred cases.

`make fuzz` runs the same families with 10,000+ cases. A case passes when decoding either
works (shape as the header says) or raises a CaecError with a one-line message, within a
generous time bound; anything else (an imagecodecs error, a numpy reshape error, a hang)
fails the test with the input hypothesis shrank it to.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cae_codec import api, container
from cae_codec.errors import CaecError
from tools.fuzz import (
    FAMILIES,
    OK_NO_LATENT,
    decode_outcome,
    empty_latent_file,
    fix_crcs,
    hostile_streams,
    make_seeds,
    stream_outcome,
    truncations,
)

# Typical malformed files fail in well under 10 ms (docs/robustness.md); the bound is
# generous so that a loaded CI machine cannot flake, while a hang or a huge allocation
# still fails.
CASE_SECONDS = 5.0
EXAMPLES_PER_FAMILY = 40


@pytest.fixture(scope="module")
def seeds(codec) -> list[bytes]:
    return make_seeds(lambda img, quality: codec.encode(img, quality=quality))


def timed_outcome(data: bytes) -> str:
    t0 = time.perf_counter()
    outcome = decode_outcome(data)
    elapsed = time.perf_counter() - t0
    assert elapsed < CASE_SECONDS, f"{outcome!r} took {elapsed:.1f} s"
    return outcome


def test_seeds_decode(seeds: list[bytes]) -> None:
    # the mutations start from valid files of every layout, with latent and alpha chunks
    assert [timed_outcome(s) for s in seeds] == ["ok"] * len(seeds)
    layouts = {container.unpack(s).header.channels for s in seeds}
    assert layouts == {1, 2, 3, 4}
    assert any(container.ICC in container.unpack(s).chunks for s in seeds)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fuzz_family(seeds: list[bytes], family: str) -> None:
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


def test_truncation_at_every_byte(seeds: list[bytes]) -> None:
    rgba = next(s for s in seeds if container.unpack(s).header.channels == 4)
    kinds = {timed_outcome(cut) for cut in truncations(rgba)}
    assert "ok" not in kinds
    assert any("truncated" in k for k in kinds) and any("magic" in k for k in kinds)


def test_header_bit_flips_with_fixed_crc_are_handled(seeds: list[bytes]) -> None:
    """The lowest and highest bit of every header byte, with the CRC recomputed so that the
    parser and the validation behind it see each change (all 8 bits: `make fuzz`)."""
    data = seeds[0]
    _, first_chunk = container.read_header(data)
    kinds = set()
    for bit in (b for byte in range(first_chunk) for b in (8 * byte, 8 * byte + 7)):
        bad = bytearray(data)
        bad[bit // 8] ^= 1 << (bit % 8)
        kinds.add(timed_outcome(fix_crcs(bytes(bad))))
    # flips in the step, quality or hash bytes still decode (or name the wrong weights)
    assert "ok" in kinds and len(kinds) > 10


def test_fix_crcs_reaches_past_the_crc_checks(seeds: list[bytes]) -> None:
    """The CRC-fixing families are only useful if their output gets past the CRC checks."""
    data = bytearray(seeds[0])
    _, first_chunk = container.read_header(bytes(data))
    data[first_chunk + 8 + 60] ^= 0xFF  # inside the latent codestream
    with pytest.raises(CaecError, match="CRC"):
        api.decode(bytes(data), device="cpu")
    assert "CRC" not in decode_outcome(fix_crcs(bytes(data)))


def test_hostile_streams_are_refused_unread(seeds: list[bytes]) -> None:
    """/dev/zero, a PNG, forged lengths and endless data after a header or after END_: each is
    refused by container.read_file before it reads more than a genuine file would hold."""
    kinds = {name: stream_outcome(*case) for name, case in hostile_streams(seeds[0]).items()}
    assert "not a .cae file" in kinds["dev-zero"] and "not a .cae file" in kinds["png"]
    assert "over this header's limit" in kinds["latent-over-limit"]
    assert "ancillary chunks" in kinds["ancillary-over-budget"]
    assert "too many chunks" in kinds["endless-chunks"] and "too many chunks" in kinds["huge-header-then-zeros"]
    assert "trailing data" in kinds["trailing-data"] and "trailing data" in kinds["huge-header-trailing-data"]


def test_files_without_a_latent_decode_quickly(seeds: list[bytes]) -> None:
    """K = 0 is valid at any size (issue 19, item 5): a 1-megapixel one is 8192 tiles."""
    assert timed_outcome(empty_latent_file(seeds[0], 1 << 20, 1, 3)) == OK_NO_LATENT
    assert timed_outcome(empty_latent_file(seeds[1], 1000, 1000, 4)) == OK_NO_LATENT
