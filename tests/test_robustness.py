"""Hostile and broken input through the CLI: malformed .cae files, odd and broken images,
decompression bombs, bad weights, interrupted runs, batches and exit codes.

Every failure must be one `caec: error: ...` line on stderr and exit status 1, quickly,
with no output file left behind. Malformed .cae files come in both container versions:
version 2, which caec writes, and version 1, which old files have and caec still reads (made
from a version-2 file by tools.fuzz.as_v1).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from cae_codec import api, cli, container, fsutil
from cae_codec.cae.codec import CaePcaJ2kCodec
from cae_codec.cli import app
from cae_codec.container import ALPHA, CRC, HEADER_STRUCT, ICC, LATENT, MAGIC, v2
from cae_codec.container.v2 import PARAMS
from cae_codec.errors import ImageError
from cae_codec.imageio import DEFAULT_MAX_PIXELS
from cae_codec.modelfiles import read_model_info
from cae_codec.weights import tensors_hash
from tests.conftest import REPO, default_weights, smooth_image
from tools.fuzz import (
    as_v1,
    chunks_of,
    empty_latent_file,
    first_chunk,
    fix_crcs,
    forged_huge_header,
    header_values,
    header_values_v2,
    icc_header,
    leb128,
    params_values,
    raw_chunk_v2,
    raw_header,
    raw_header_v2,
    raw_params,
    version_of,
    with_chunks,
)

FIRST_CHUNK = len(MAGIC) + 1 + HEADER_STRUCT.size + CRC.size
# generous: malformed files fail in milliseconds (docs/robustness.md), CI machines are noisy
FAIL_SECONDS = 5.0


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def rgba_cae(codec) -> bytes:
    """A small valid file with both a latent and an alpha chunk (version 2, as caec writes)."""
    return codec.encode(smooth_image(np.random.default_rng(7), 40, 60, 4), quality=6)


@pytest.fixture(scope="module")
def rgba_v1(rgba_cae: bytes) -> bytes:
    """The same file in version 1's layout, as caec 0.1 wrote it."""
    return as_v1(rgba_cae)


@pytest.fixture(params=["v1", "v2"])
def either_version(request: pytest.FixtureRequest, rgba_cae: bytes, rgba_v1: bytes) -> bytes:
    """The RGBA file in each container version in turn."""
    return rgba_v1 if request.param == "v1" else rgba_cae


def error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The single `caec: error:` line of a failed run (and no traceback anywhere)."""
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("caec: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_header(data: bytes, **fields: object) -> bytes:
    """A version-1 file with header ``fields`` changed, header CRC valid."""
    values = header_values(data)
    values.update(fields)
    return raw_header(values) + data[FIRST_CHUNK:]


def with_header_v2(data: bytes, **fields: object) -> bytes:
    """A version-2 file with header ``fields`` changed (tools.fuzz.V2_FIELDS; a varint field as
    an int or as the raw bytes of an odd form), header CRC valid."""
    return raw_header_v2({**header_values_v2(data), **fields}) + data[first_chunk(data) :]


def with_chunk(data: bytes, ctype: bytes, payload: bytes | None) -> bytes:
    """The file (either version) with chunk ``ctype`` replaced by ``payload`` (None: left out),
    CRCs valid."""
    chunks = [(t, p if t != ctype else payload) for t, p in chunks_of(data)]
    return with_chunks(data, [(t, p) for t, p in chunks if p is not None])


def with_params(data: bytes, **fields: object) -> bytes:
    """A version-2 file with PARM ``fields`` changed (tools.fuzz.PARAM_FIELDS), CRCs valid."""
    return with_chunk(data, PARAMS, raw_params({**params_values(data), **fields}))


def chunk_start(data: bytes, ctype: bytes) -> int:
    """Where chunk ``ctype`` of a valid version-2 file starts (its type bytes)."""
    pos = first_chunk(data)
    for t, p in chunks_of(data):
        if t == ctype:
            return pos
        pos += len(raw_chunk_v2(t, p))
    raise KeyError(ctype)


def with_length_v2(data: bytes, ctype: bytes, declared: int | bytes) -> bytes:
    """A version-2 file whose chunk ``ctype`` declares ``declared`` as its length (an int, or
    the raw bytes of an odd varint form); its payload and CRC are left where they were."""
    start = chunk_start(data, ctype)
    payload = dict(chunks_of(data))[ctype]
    after = start + 4 + len(leb128(len(payload)))
    length = declared if isinstance(declared, bytes) else leb128(declared)
    return data[: start + 4] + length + data[after:]


def _flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x10
    return bytes(out)


def _latent(data: bytes) -> int:
    """The latent channels of a valid version-2 file's model, as its PARM chunk states them."""
    return params_values(data)["latent_channels"]  # type: ignore[return-value]


def _other_columns(data: bytes) -> int:
    """A mosaic column count that fits a valid version-2 file's components but is not the one
    its latent codestream was laid out with."""
    columns = params_values(data)["mosaic_cols"]
    assert isinstance(columns, int) and columns >= 1 and params_values(data)["components"] > 1
    return columns - 1 if columns > 1 else 2


def _in_latent(data: bytes) -> int:
    """An offset inside the latent codestream of a valid file of either version."""
    return data.index(dict(chunks_of(data))[LATENT]) + 32


def _siz_shape(data: bytes) -> tuple[int, int]:
    from cae_codec.stages import j2k

    siz = j2k.read_siz(dict(chunks_of(data))[LATENT])
    return siz.height, siz.width


def _k0(data: bytes, channels: int = 3) -> bytes:
    """A valid file without a latent (K = 0) of ``data``'s model, size and version."""
    box = container.parse(data)
    return empty_latent_file(data, box.width, box.height, channels)


def _with_stray(data: bytes, donor: bytes, ctype: bytes) -> bytes:
    """``data`` with ``donor``'s chunk ``ctype`` added at the end."""
    return with_chunks(data, [*chunks_of(data), (ctype, dict(chunks_of(donor))[ctype])])


# name -> (forge a malformed file from a valid RGBA one, words the error line must contain);
# the same for either container version
MALFORMED_EITHER = {
    "empty": (lambda d: b"", "not a .cae file"),
    "truncated-payload": (lambda d: d[: len(d) // 2], "truncated"),
    "bit-flip": (lambda d: _flip(d, _in_latent(d)), "CRC mismatch"),
    "wrong-magic": (lambda d: b"\x89PNG\r\n\x1a\n" + d[8:], "not a .cae file"),
    "future-version": (lambda d: d[:8] + bytes([max(container.VERSIONS) + 1]) + d[9:], "unsupported format version"),
    "trailing-data": (lambda d: d + b"\0", "trailing data"),
    "100000x100000": (lambda d: forged_huge_header(d, 100_000, 100_000), "exceeds"),
    "60000x60000": (lambda d: forged_huge_header(d, 60_000, 60_000), "--no-pixel-limit"),
    "j2k-wrong-shape": (
        lambda d: with_chunk(
            d, LATENT, bytes(imagecodecs.jpeg2k_encode(np.zeros((9, 7), np.int16), level=0, codecformat="J2K"))
        ),
        "codestream is 7x9x1",
    ),
    "j2k-wrong-sample-type": (
        lambda d: with_chunk(
            d, LATENT, bytes(imagecodecs.jpeg2k_encode(np.zeros(_siz_shape(d), np.uint8), level=0, codecformat="J2K"))
        ),
        "unsigned 8-bit samples",
    ),
    "j2k-three-components": (
        lambda d: with_chunk(
            d,
            LATENT,
            bytes(imagecodecs.jpeg2k_encode(np.zeros((*_siz_shape(d), 3), np.int16), level=0, codecformat="J2K")),
        ),
        "x3",
    ),
    "jp2-file-not-codestream": (
        lambda d: with_chunk(d, LATENT, bytes(imagecodecs.jpeg2k_encode(np.zeros(_siz_shape(d), np.int16), level=0))),
        "not a raw JPEG2000 codestream",
    ),
    "j2k-truncated": (lambda d: with_chunk(d, LATENT, dict(chunks_of(d))[LATENT][:30]), "not a raw JPEG2000"),
    "j2k-cut-after-siz": (lambda d: with_chunk(d, LATENT, dict(chunks_of(d))[LATENT][:120]), "corrupt latent"),
    "j2k-garbage": (lambda d: with_chunk(d, LATENT, b"\xff\x4f\xff\x51" + bytes(200)), "malformed SIZ"),
    "missing-alpha": (lambda d: with_chunk(d, ALPHA, None), "missing alpha chunk"),
    "missing-latent": (lambda d: with_chunk(d, LATENT, None), "missing latent chunk"),
    "duplicate-latent": (
        lambda d: with_chunks(d, [*chunks_of(d), (LATENT, dict(chunks_of(d))[LATENT])]),
        "duplicate chunk LATN",
    ),
    "unknown-critical-chunk": (
        lambda d: with_chunks(d, [*chunks_of(d), (b"NEWX", b"abc")]),
        "unknown critical chunk NEWX",
    ),
    "invalid-chunk-type": (lambda d: with_chunks(d, [*chunks_of(d), (b"L\0TN", b"abc")]), "invalid chunk type"),
    "icc-not-a-profile": (lambda d: with_chunks(d, [*chunks_of(d), (ICC, b"junk")]), "not an ICC profile"),
    "icc-of-grey-data": (
        lambda d: with_chunks(d, [*chunks_of(d), (ICC, icc_header(b"GRAY"))]),
        "cannot describe an RGB image",
    ),
}

# version 1 only: its fixed header and END_ chunk
MALFORMED_V1 = {
    "truncated-header": (lambda d: d[:50], "truncated"),
    "missing-end": (lambda d: d[:-12], "truncated"),
    "wrong-header-crc": (lambda d: _flip(d, FIRST_CHUNK - 1), "header CRC mismatch"),
    # a length within the header's limit that the file does not hold
    "chunk-past-end": (
        lambda d: fix_crcs(d[: FIRST_CHUNK + 4] + struct.pack(">I", len(d)) + d[FIRST_CHUNK + 8 :]),
        "runs past",
    ),
    # a length no file with this header can need (also a "negative" 2^31 - 1): refused unread
    "chunk-over-limit": (
        lambda d: fix_crcs(d[: FIRST_CHUNK + 4] + b"\x7f\xff\xff\xff" + d[FIRST_CHUNK + 8 :]),
        "over this header's limit",
    ),
    "zero-width": (lambda d: with_header(d, width=0), "image size"),
    "negative-height": (lambda d: with_header(d, height=2**32 - 1, padded_height=2**32 - 1), "image size"),
    "zero-tile": (lambda d: with_header(d, tile=0), "not a multiple of tile"),
    "nan-step": (lambda d: with_header(d, step=float("nan")), "quantization step"),
    "model-path": (lambda d: with_header(d, model=b"/dev/stdin".ljust(32, b"\0")), "not a plain name"),
    "model-newline": (lambda d: with_header(d, model=b"cae\nx".ljust(32, b"\0")), "not printable"),
    "unknown-codec": (
        lambda d: with_header(d, codec=b"cae-future".ljust(16, b"\0")),
        "file made by codec 'cae-future', which this caec cannot decode",
    ),
    "flags": (lambda d: with_header(d, flags=1), "unknown flags"),
    # the header's limits leave a file without a latent, or without alpha, no room for one
    "latent-without-components": (lambda d: _with_stray(_k0(d), d, LATENT), "over this header's limit of 0"),
    "alpha-without-alpha": (lambda d: _with_stray(_k0(d), d, ALPHA), "over this header's limit of 0"),
}

# version 2 only: its compact header (varints, codec and model numbers, chunk count) and the
# CAE's parameters in the PARM chunk
MALFORMED_V2 = {
    "truncated-header": (lambda d: d[:20], "truncated file: width incomplete"),
    "missing-last-chunk": (lambda d: d[: chunk_start(d, ALPHA)], "truncated file: it ends inside its chunks"),
    "wrong-header-crc": (lambda d: _flip(d, first_chunk(d) - 1), "header CRC mismatch"),
    # a length within the header's limit that the file does not hold
    "chunk-past-end": (
        lambda d: fix_crcs(with_length_v2(d, LATENT, len(d))),
        "truncated file: it ends inside its chunks",
    ),
    # a length no file with this header can need: refused unread
    "chunk-over-limit": (lambda d: with_length_v2(d, LATENT, 2**31), "over this header's limit"),
    "length-overlong": (lambda d: fix_crcs(with_length_v2(d, PARAMS, leb128(13, 2))), "longer form than needed"),
    "length-over-5-bytes": (lambda d: with_length_v2(d, LATENT, b"\x80" * 5 + b"\x01"), "more than 5 bytes"),
    "length-over-u32": (lambda d: with_length_v2(d, LATENT, leb128(2**32)), "is above 4294967295"),
    "unknown-flags": (lambda d: with_header_v2(d, flags=4), "unknown flags 0x4"),
    # flags the container knows but this codec never writes
    "progressive-flag": (lambda d: with_header_v2(d, flags=v2.FLAG_PROGRESSIVE), "flags 0x1 do not apply to cae-pca"),
    "stack-flag": (lambda d: with_header_v2(d, flags=v2.FLAG_STACK), "flags 0x2 do not apply to cae-pca-j2k files"),
    "codec-number-0": (lambda d: with_header_v2(d, codec=0), "unknown codec number 0"),
    "codec-number-255": (lambda d: with_header_v2(d, codec=255), "unknown codec number 255"),
    # every number of CODEC_NUMBERS is registered now: a file naming another codec than the one
    # that wrote its payload meets that codec's checks (version 1's cae-future is the unregistered one)
    "codec-of-another-payload": (
        lambda d: with_header_v2(d, codec=2),
        "unknown critical chunk PARM for comcnn",
    ),
    "unknown-model-number": (lambda d: with_header_v2(d, model=99), "no shipped model has number 99"),
    "model-number-over-u32": (lambda d: with_header_v2(d, model=2**32), "malformed model number"),
    "other-model-number": (lambda d: with_header_v2(d, model=2), "file was encoded with model"),
    "short-weights-hash": (lambda d: with_header_v2(d, weights_hash=bytes(7)), "header CRC mismatch"),
    "zero-width": (lambda d: with_header_v2(d, width=0), "image size 0x40"),
    "zero-height": (lambda d: with_header_v2(d, height=0), "image size 60x0"),
    "side-over-limit": (lambda d: with_header_v2(d, width=v2.MAX_SIDE + 1), "image size 1048577x40"),
    "width-over-u32": (lambda d: with_header_v2(d, width=2**32), "malformed width: 4294967296 is above"),
    "width-overlong": (lambda d: with_header_v2(d, width=leb128(60, 3)), "longer form than needed"),
    "height-over-5-bytes": (lambda d: with_header_v2(d, height=b"\xa8" + b"\x80" * 4 + b"\x00"), "more than 5 bytes"),
    "other-width": (lambda d: with_header_v2(d, width=61), "alpha codestream is 60x40x1, the header says 61x40x1"),
    "zero-channels": (lambda d: with_header_v2(d, channels=0), "malformed header: 0 channels"),
    "five-channels": (lambda d: with_header_v2(d, channels=5), "malformed header: 5 channels"),
    "rgb-header": (lambda d: with_header_v2(d, channels=3), "an alpha chunk in a file without alpha"),
    "count-too-small": (
        lambda d: with_header_v2(d, count=2),
        "trailing data after the last chunk (the file is longer than its chunks)",
    ),
    "count-too-large": (lambda d: with_header_v2(d, count=4), "truncated file: it ends inside its chunks"),
    "count-over-limit": (lambda d: with_header_v2(d, count=v2.MAX_CHUNKS + 1), "4097 chunks, more than 4096"),
    "count-overlong": (lambda d: with_header_v2(d, count=leb128(3, 2)), "malformed chunk count"),
    "end-chunk": (lambda d: with_chunks(d, [*chunks_of(d), (b"END_", b"")]), "unknown critical chunk END_"),
    "parameters-missing": (lambda d: with_chunk(d, PARAMS, None), "missing PARM chunk"),
    "parameters-not-first": (
        lambda d: with_chunks(d, [chunks_of(d)[1], chunks_of(d)[0], *chunks_of(d)[2:]]),
        "PARM must be the first chunk",
    ),
    "parameters-twice": (lambda d: with_chunks(d, [chunks_of(d)[0], *chunks_of(d)]), "PARM must be the first chunk"),
    "parameters-short": (lambda d: with_chunk(d, PARAMS, dict(chunks_of(d))[PARAMS][:-1]), "PARM chunk of 12 bytes"),
    "parameters-long": (lambda d: with_chunk(d, PARAMS, dict(chunks_of(d))[PARAMS] + b"\0"), "PARM chunk of 14 bytes"),
    "step-zero": (lambda d: with_params(d, step=0.0), "malformed parameters: quantization step 0.0"),
    "step-nan": (lambda d: with_params(d, step=float("nan")), "malformed parameters: quantization step nan"),
    "step-inf": (lambda d: with_params(d, step=float("inf")), "malformed parameters: quantization step inf"),
    "step-negative": (lambda d: with_params(d, step=-1.0), "malformed parameters: quantization step -1.0"),
    "tile-zero": (lambda d: with_params(d, tile=0), "malformed parameters: tile of 0 pixels"),
    "tile-not-128": (lambda d: with_params(d, tile=64), "tiles of 64 pixels; cae-pca-j2k codes tiles of 128"),
    "components-over-latent": (
        lambda d: with_params(d, components=_latent(d) + 1, mosaic_cols=8),
        lambda d: f"malformed parameters: {_latent(d) + 1} of {_latent(d)} components",
    ),
    "latent-channels-zero": (lambda d: with_params(d, latent_channels=0), "malformed parameters"),
    "latent-channels-not-the-model's": (
        lambda d: with_params(d, latent_channels=_latent(d) - 1),
        lambda d: f"file declares {_latent(d) - 1} latent channels, the model has {_latent(d)}",
    ),
    "mosaic-cols-zero": (lambda d: with_params(d, mosaic_cols=0), "malformed parameters: mosaic of 0 columns"),
    "mosaic-cols-over-components": (
        lambda d: with_params(d, mosaic_cols=params_values(d)["components"] + 1),  # type: ignore[operator]
        "columns for",
    ),
    "mosaic-cols-without-components": (lambda d: with_params(_k0(d), mosaic_cols=4), "columns without components"),
    "mosaic-cols-other": (lambda d: with_params(d, mosaic_cols=_other_columns(d)), "latent codestream is"),
    # the CAE's checks: version 2's limits do not depend on the codec's parameters
    "latent-without-components": (
        lambda d: _with_stray(_k0(d), d, LATENT),
        "a latent chunk in a file without components",
    ),
    "alpha-without-alpha": (lambda d: _with_stray(_k0(d), d, ALPHA), "an alpha chunk in a file without alpha"),
    "duplicate-alpha": (
        lambda d: with_chunks(d, [*chunks_of(d), (ALPHA, dict(chunks_of(d))[ALPHA])]),
        "duplicate chunk ALPH",
    ),
}

MALFORMED = {
    **{f"v1-{name}": (forge, needle, "v1") for name, (forge, needle) in (MALFORMED_EITHER | MALFORMED_V1).items()},
    **{f"v2-{name}": (forge, needle, "v2") for name, (forge, needle) in (MALFORMED_EITHER | MALFORMED_V2).items()},
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_cae_is_one_error_line(
    runner: CliRunner, tmp_path: Path, rgba_cae: bytes, rgba_v1: bytes, case: str
) -> None:
    forge, needle, version = MALFORMED[case]
    source = rgba_v1 if version == "v1" else rgba_cae
    if callable(needle):  # what the message says depends on the model that wrote the file
        needle = needle(source)
    bad = tmp_path / "bad.cae"
    bad.write_bytes(forge(source))
    t0 = time.perf_counter()
    r = runner.invoke(app, ["decode", str(bad), "-o", str(tmp_path / "out.png")])
    elapsed = time.perf_counter() - t0
    assert r.exit_code == 1
    line = error_line(r)
    assert needle in line and str(bad) in line
    assert elapsed < FAIL_SECONDS
    assert files_in(tmp_path) == {"bad.cae"}, "no output and no temporary file"


def test_a_shipped_models_file_with_a_wrong_weights_hash_is_one_error_line(
    runner: CliRunner, tmp_path: Path, shipped_codec
) -> None:
    # a shipped model's version-2 file names its weights by their zoo number as well as by
    # their hash (the tests' own models have no number): the number names the right weights,
    # the hash does not match them
    data = shipped_codec.encode(smooth_image(np.random.default_rng(7), 40, 60, 4), quality=6)
    assert header_values_v2(data)["model"] != 0
    bad = tmp_path / "bad.cae"
    bad.write_bytes(with_header_v2(data, weights_hash=bytes(8)))
    r = runner.invoke(app, ["decode", str(bad), "-o", str(tmp_path / "out.png")])
    assert r.exit_code == 1
    line = error_line(r)
    assert "file was encoded with model" in line and str(bad) in line
    assert files_in(tmp_path) == {"bad.cae"}, "no output and no temporary file"


def test_info_on_malformed_file_is_one_error_line(runner: CliRunner, tmp_path: Path, either_version: bytes) -> None:
    bad = tmp_path / "bad.cae"
    bad.write_bytes(either_version[:-5])
    r = runner.invoke(app, ["info", str(bad)])
    assert r.exit_code == 1 and "truncated" in error_line(r)


# ---------------------------------------------------------------- pixel limit


def test_pixel_limit_is_pillows_error_threshold() -> None:
    assert DEFAULT_MAX_PIXELS == 2 * Image.MAX_IMAGE_PIXELS


def test_huge_header_refused_before_any_allocation(either_version: bytes) -> None:
    # within the format's limits, above the decode limit, and with no latent to decode:
    # without the limit this tiny file would make the decoder allocate ~0.7 GB
    side = int((DEFAULT_MAX_PIXELS or 0) ** 0.5) + 1
    # the header alone (version 2: and PARM): with K = 0 and no alpha, nothing else belongs
    bomb = empty_latent_file(either_version, side, side, 3)
    box = container.parse(bomb)
    assert box.version == version_of(either_version) and (box.width, box.height, box.channels) == (side, side, 3)
    assert [t for t, _ in box.chunks] == ([PARAMS] if box.version == 2 else [])
    assert len(bomb) < 200
    tracemalloc.start()
    try:
        with pytest.raises(ImageError, match="--no-pixel-limit"):
            api.decode(bomb, device="cpu")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_api_pixel_limit_keyword(codec, rgba_cae: bytes, rgba_v1: bytes) -> None:
    for data in (rgba_cae, rgba_v1):
        with pytest.raises(ImageError, match="more than the limit of 100"):
            api.decode(data, device="cpu", max_pixels=100)
        assert api.decode(data, device="cpu", max_pixels=None).shape == (40, 60, 4)
    img = smooth_image(np.random.default_rng(1), 20, 30, 3)
    with pytest.raises(ImageError, match="max_pixels=None"):
        api.encode(img, max_pixels=599, device="cpu")
    assert api.encode(img, max_pixels=600, device="cpu").startswith(MAGIC)


def test_no_pixel_limit_flag_lifts_the_limit(
    runner: CliRunner, tmp_path: Path, rgba_cae: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a tiny limit stands in for the real one, so that lifting it costs no huge image
    monkeypatch.setattr(cli.coding, "DEFAULT_MAX_PIXELS", 1000)
    src = tmp_path / "photo.png"
    Image.fromarray(smooth_image(np.random.default_rng(2), 40, 60, 3)).save(src)
    r = runner.invoke(app, ["encode", str(src)])
    assert r.exit_code == 1 and "--no-pixel-limit" in error_line(r)
    assert runner.invoke(app, ["encode", str(src), "--no-pixel-limit"]).exit_code == 0
    cae = tmp_path / "x.cae"
    cae.write_bytes(rgba_cae)
    r = runner.invoke(app, ["decode", str(cae)])
    assert r.exit_code == 1 and "--no-pixel-limit" in error_line(r)
    assert not (tmp_path / "x.decoded.png").exists()
    assert runner.invoke(app, ["decode", str(cae), "--no-pixel-limit"]).exit_code == 0
    assert Image.open(tmp_path / "x.decoded.png").size == (60, 40)


def png_with_size(path: Path, width: int, height: int) -> None:
    """A few-hundred-byte PNG whose header declares width x height (a decompression bomb)."""
    Image.new("L", (64, 64)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR payload starts at byte 16
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))


def test_decompression_bomb_png(runner: CliRunner, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    side = int((DEFAULT_MAX_PIXELS or 0) ** 0.5) + 1
    png_with_size(bomb, side, side)
    r = runner.invoke(app, ["encode", str(bomb)])
    assert r.exit_code == 1
    line = error_line(r)
    assert "--no-pixel-limit" in line and str(side * side) in line
    # lifted, Pillow goes on to the pixel data, which this file does not have
    r = runner.invoke(app, ["encode", str(bomb), "--no-pixel-limit"])
    assert r.exit_code == 1
    line = error_line(r)
    assert "cannot decode image" in line and "pixel" not in line
    assert (DEFAULT_MAX_PIXELS or 0) // 2 == Image.MAX_IMAGE_PIXELS, "Pillow's global limit is restored"
    assert files_in(tmp_path) == {"bomb.png"}


# ---------------------------------------------------------------- input images


def save(im: Image.Image, path: Path, **kw: object) -> Path:
    im.save(path, **kw)
    return path


def png16_rgb(path: Path, arr: np.ndarray) -> Path:
    """A 16-bit RGB PNG, written by hand: Pillow cannot write 48-bit PNGs."""
    h, w, _ = arr.shape
    raw = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t: bytes, d: bytes) -> bytes:
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture(scope="module")
def photo_rgb() -> np.ndarray:
    return smooth_image(np.random.default_rng(3), 48, 64, 3)


def palette_with_transparency(rgb: np.ndarray) -> Image.Image:
    im = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    idx = np.asarray(im).copy()
    idx[:10, :10] = 15  # a transparent corner
    out = Image.fromarray(idx, "P")
    out.putpalette(im.getpalette() or [])
    out.info["transparency"] = 15
    return out


GOOD_INPUTS = {
    # name -> (write it, channels coded, warning expected in stderr or None)
    "palette.png": (lambda p, a: save(Image.fromarray(a).convert("P"), p), 3, None),
    "palette-transparent.png": (lambda p, a: save(palette_with_transparency(a), p, transparency=15), 4, None),
    "cmyk.jpg": (lambda p, a: save(Image.fromarray(a).convert("CMYK"), p, quality=95), 3, None),
    "grey16.png": (lambda p, a: save(Image.fromarray(a[:, :, 0].astype(np.uint16) * 257), p), 1, "reduced to 8 bits"),
    "rgb16.png": (lambda p, a: png16_rgb(p, a.astype(np.uint16) * 257), 3, "reduced to 8 bits"),
    "animated.gif": (
        lambda p, a: save(Image.fromarray(a).convert("P"), p, save_all=True, append_images=[Image.new("P", (64, 48))]),
        3,
        "only the first frame",
    ),
    "animated.webp": (
        lambda p, a: save(
            Image.fromarray(a), p, save_all=True, append_images=[Image.new("RGB", (64, 48))], lossless=True
        ),
        3,
        "only the first frame",
    ),
    "bilevel.png": (lambda p, a: save(Image.fromarray(a).convert("1"), p), 1, None),
    "grey-alpha.png": (lambda p, a: save(Image.fromarray(a).convert("LA"), p), 2, None),
}


@pytest.mark.parametrize("name", sorted(GOOD_INPUTS))
def test_odd_but_valid_inputs(runner: CliRunner, tmp_path: Path, photo_rgb: np.ndarray, name: str) -> None:
    write, channels, warning = GOOD_INPUTS[name]
    src = write(tmp_path / name, photo_rgb)
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "out.cae")])
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("caec: warning:")]
    assert len(warnings) == (warning is not None), r.stderr
    if warning:
        assert warning in warnings[0]
    box = container.parse((tmp_path / "out.cae").read_bytes())
    assert (box.version, box.width, box.height, box.channels) == (2, 64, 48, channels)


def test_palette_transparency_and_colours_survive(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    from cae_codec.imageio import open_image

    pal = palette_with_transparency(photo_rgb)
    arr = open_image(save(pal, tmp_path / "p.png", transparency=15))
    assert arr.shape == (48, 64, 4)
    assert np.array_equal(arr[:, :, 3] == 0, np.asarray(pal) == 15)
    cmyk = open_image(save(Image.fromarray(photo_rgb).convert("CMYK"), tmp_path / "c.jpg", quality=95))
    assert np.abs(cmyk.astype(int) - photo_rgb).mean() < 8, "CMYK is converted, not misread"
    rgb16 = open_image(png16_rgb(tmp_path / "r.png", photo_rgb.astype(np.uint16) * 257), warn=lambda m: None)
    assert np.array_equal(rgb16, photo_rgb)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    from cae_codec.imageio import open_image

    arr = np.zeros((20, 30, 3), np.uint8)
    arr[:5, :5] = 255  # a white top-left corner
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    out = open_image(save(im, tmp_path / "o.jpg", exif=exif.tobytes(), quality=95))
    assert out.shape == (30, 20, 3)
    assert out[:5, -5:].mean() > 200 and out[:5, :5].mean() < 50


def truncated(path: Path, im: Image.Image, fmt: str) -> Path:
    im.save(path, fmt)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


BAD_INPUTS = {
    "empty.png": (lambda p, a: p.write_bytes(b""), "not an image"),
    "text.png": (lambda p, a: p.write_text("this is not a PNG\n"), "not an image"),
    "truncated.png": (lambda p, a: truncated(p, Image.fromarray(a), "PNG"), "cannot decode image"),
    "truncated.jpg": (lambda p, a: truncated(p, Image.fromarray(a), "JPEG"), "cannot decode image"),
    "header-only.gif": (lambda p, a: truncated(p, Image.fromarray(a).convert("P"), "GIF"), "cannot decode image"),
    "directory.png": (lambda p, a: p.mkdir(), "is a directory"),
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_broken_inputs_are_one_error_line(runner: CliRunner, tmp_path: Path, photo_rgb: np.ndarray, name: str) -> None:
    write, needle = BAD_INPUTS[name]
    src = tmp_path / name
    write(src, photo_rgb)
    r = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "out.cae")])
    assert r.exit_code == 1
    assert needle in error_line(r)
    assert not (tmp_path / "out.cae").exists()


# ---------------------------------------------------------------- weights


def _other_and_tampered_weights(rgba_cae: bytes, folder: Path) -> tuple[Path, dict[str, str], dict[str, str]]:
    """The file's own model changed a little, written to ``folder`` under the model's name;
    returns the path, its tensors' genuine metadata (a different model) and the original's
    (tampered weights)."""
    found = api.file_model(container.parse(rgba_cae))
    tensors = load_file(str(found.path))
    tensors["pca.mean"] = tensors["pca.mean"] + 1e-3
    folder.mkdir()
    from safetensors import safe_open

    with safe_open(str(found.path), framework="pt") as f:
        metadata = f.metadata()
    other = {**metadata, "weights_hash": tensors_hash(tensors).hex()}  # a genuine, different model
    path = folder / f"{found.name}.safetensors"
    save_file(tensors, str(path), metadata=other)
    return path, other, metadata


def test_weights_whose_hash_does_not_match_are_refused(
    runner: CliRunner, tmp_path: Path, rgba_v1: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # version 1 names its model: a models/ directory holding a file of that name but other
    # weights comes first in the lookup
    path, _, metadata = _other_and_tampered_weights(rgba_v1, tmp_path / "models")
    monkeypatch.setenv("CAEC_MODELS", str(path.parent))
    cae = tmp_path / "x.cae"
    cae.write_bytes(rgba_v1)
    r = runner.invoke(app, ["decode", str(cae)])
    assert r.exit_code == 1
    assert "file was encoded with model" in error_line(r)
    assert not (tmp_path / "x.png").exists()
    # the same tensors under the original's recorded hash: tampered weights, refused as such
    save_file(load_file(str(path)), str(path), metadata=metadata)
    r = runner.invoke(app, ["decode", str(cae)])
    assert r.exit_code == 1
    assert "do not match their recorded hash" in error_line(r)


def test_weights_given_for_a_file_of_other_weights_are_refused(
    runner: CliRunner, tmp_path: Path, rgba_cae: bytes
) -> None:
    # version 2 names the shipped model by number (and a hash prefix): other weights come in
    # through --model
    path, _, metadata = _other_and_tampered_weights(rgba_cae, tmp_path / "models")
    cae = tmp_path / "x.cae"
    cae.write_bytes(rgba_cae)
    r = runner.invoke(app, ["decode", str(cae), "--model", str(path)])
    assert r.exit_code == 1
    line = error_line(r)
    box = container.parse(rgba_cae)
    made_by = f"file was encoded with weights {box.weights_hash.hex()[:12]}, but the loaded weights"
    assert f"{made_by} {path.stem!r} are {tensors_hash(load_file(str(path))).hex()[:12]}" in line
    assert not (tmp_path / "x.decoded.png").exists()
    save_file(load_file(str(path)), str(path), metadata=metadata)
    r = runner.invoke(app, ["decode", str(cae), "--model", str(path)])
    assert r.exit_code == 1
    assert "do not match their recorded hash" in error_line(r)
    assert files_in(tmp_path) == {"models", "x.cae"}


@pytest.mark.parametrize("stem", ["m" * 33, "my model"])
def test_weights_file_names_version_1_could_not_hold(runner: CliRunner, tmp_path: Path, stem: str) -> None:
    # version 1 wrote the weights file's name into every file (at most 32 plain characters);
    # version 2 holds a model number and a hash prefix, so any name encodes: weights the zoo
    # does not ship under that name are number 0, found by their hash
    weights = tmp_path / f"{stem}.safetensors"
    weights.write_bytes(default_weights().read_bytes())
    src = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(src)
    r = runner.invoke(app, ["encode", str(src), "--model", str(weights)])
    assert r.exit_code == 0, r.output
    box = container.parse((tmp_path / "a.cae").read_bytes())
    full_hash = read_model_info(weights).weights_hash
    assert box.model_number == 0 and full_hash is not None and full_hash.startswith(box.weights_hash)
    r = runner.invoke(app, ["decode", str(tmp_path / "a.cae"), "--model", str(weights)])
    assert r.exit_code == 0, r.output


def assert_weights_refused(runner: CliRunner, tmp_path: Path, cae_bytes: bytes, weights: Path) -> None:
    """Both encode and decode with ``weights`` fail with one 'cannot load weights' line."""
    src = tmp_path / "a.png"
    Image.new("RGB", (20, 20)).save(src)
    r = runner.invoke(app, ["encode", str(src), "--model", str(weights)])
    assert r.exit_code == 1 and "cannot load weights" in error_line(r)
    cae = tmp_path / "x.cae"
    cae.write_bytes(cae_bytes)
    r = runner.invoke(app, ["decode", str(cae), "--model", str(weights)])
    assert r.exit_code == 1 and "cannot load weights" in error_line(r)


def test_truncated_weights_are_refused(runner: CliRunner, tmp_path: Path, rgba_cae: bytes) -> None:
    weights = tmp_path / "cut.safetensors"
    # the file's own model cut short: refused as unreadable, before any hash comparison
    full = api.file_model(container.parse(rgba_cae)).path.read_bytes()
    weights.write_bytes(full[: len(full) // 2])
    assert_weights_refused(runner, tmp_path, rgba_cae, weights)


class _Trap:
    """Unpickling this creates a directory: proof that a loader ran pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("suffix", [".pt", ".pkl", ".safetensors"])
def test_pickled_weights_are_never_unpickled(runner: CliRunner, tmp_path: Path, rgba_cae: bytes, suffix: str) -> None:
    marker = tmp_path / "pickle-ran"
    evil = tmp_path / f"model{suffix}"
    evil.write_bytes(pickle.dumps({"net.weight": _Trap(marker)}))
    assert_weights_refused(runner, tmp_path, rgba_cae, evil)
    assert not marker.exists()


# ---------------------------------------------------------------- outputs, interruption


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "photo.png"
    p.parent.mkdir()
    Image.fromarray(smooth_image(np.random.default_rng(4), 50, 70, 3)).save(p)
    return p


def test_keyboard_interrupt_in_the_encoder_leaves_nothing(
    runner: CliRunner, tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: CaePcaJ2kCodec, *args: object, **kwargs: object) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(CaePcaJ2kCodec, "analyse", interrupted)  # the encoder, in a family too
    out = tmp_path / "out"
    out.mkdir()
    before = sha256(photo)
    r = runner.invoke(app, ["encode", str(photo), "-o", str(out / "photo.cae")])
    assert r.exit_code == 130
    assert files_in(out) == set() and files_in(photo.parent) == {"photo.png"}
    assert sha256(photo) == before


def test_interrupt_while_writing_removes_the_temporary_file(
    runner: CliRunner, tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[set[str]] = []

    def interrupted_fsync(fd: int) -> None:
        seen.append(files_in(tmp_path / "out"))  # the temporary file exists at this point
        raise KeyboardInterrupt

    (tmp_path / "out").mkdir()
    monkeypatch.setattr(fsutil.os, "fsync", interrupted_fsync)
    r = runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path / "out" / "photo.cae")])
    assert r.exit_code == 130
    assert len(seen) == 1 and len(seen[0]) == 1 and next(iter(seen[0])).endswith(".tmp")
    assert files_in(tmp_path / "out") == set()


# The CLI in a child process, with a hook that says on stderr when the run reaches the
# point to interrupt, and stalls there so the signal lands inside it.
SIGNAL_CHILD = """
import signal, sys, time
import cae_codec.cae.codec, cae_codec.fsutil
# a process started in the background by a non-interactive shell inherits SIGINT ignored, and
# Python then keeps it ignored: give the child the disposition an interactive caec has
signal.signal(signal.SIGINT, signal.default_int_handler)
point = sys.argv.pop(1)
if point == "encode":
    original = cae_codec.cae.codec.CaePcaJ2kCodec.analyse
    def hooked(self, img, *args, **kwargs):
        print("REACHED", file=sys.stderr, flush=True)
        # keep the network busy far longer than the test waits, however fast the machine
        for _ in range(10_000):
            original(self, img, *args, **kwargs)
        return original(self, img, *args, **kwargs)
    cae_codec.cae.codec.CaePcaJ2kCodec.analyse = hooked
else:
    def hooked(fd):
        print("REACHED", file=sys.stderr, flush=True)
        time.sleep(60)
    cae_codec.fsutil.os.fsync = hooked
from cae_codec.cli import main
sys.argv[0] = "caec"
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, point, code",
    [
        (signal.SIGTERM, "write", 128 + signal.SIGTERM),
        (signal.SIGHUP, "write", 128 + signal.SIGHUP),
        (signal.SIGINT, "write", 130),
        (signal.SIGTERM, "encode", 128 + signal.SIGTERM),
    ],
)
def test_signal_leaves_no_partial_output(tmp_path: Path, signum: int, point: str, code: int) -> None:
    src = tmp_path / "big.png"
    Image.fromarray(smooth_image(np.random.default_rng(5), 768, 1024, 3)).save(src)
    before = sha256(src)
    out = tmp_path / "out"
    out.mkdir()
    cmd = [sys.executable, "-c", SIGNAL_CHILD, point, "encode", str(src), "-o", str(out / "big.cae"), "--device", "cpu"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stderr is not None
    try:
        assert proc.stderr.readline().strip() == "REACHED"
        if point == "write":
            assert len(files_in(out)) == 1, "the temporary file is there when the signal comes"
        else:
            time.sleep(0.5)  # well inside the network pass
        proc.send_signal(signum)
        assert proc.wait(timeout=60) == code
    finally:
        proc.kill()
        rest = proc.stderr.read()
    assert "Traceback" not in rest
    assert files_in(out) == set(), "neither the output nor a temporary file"
    assert files_in(tmp_path) == {"big.png", "out"} and sha256(src) == before


def test_inputs_are_never_modified(runner: CliRunner, tmp_path: Path, photo: Path) -> None:
    before = sha256(photo)
    assert runner.invoke(app, ["encode", str(photo)]).exit_code == 0
    cae = photo.with_suffix(".cae")
    cae_before = sha256(cae)
    assert runner.invoke(app, ["decode", str(cae), "-o", str(tmp_path / "d.png")]).exit_code == 0
    assert sha256(photo) == before and sha256(cae) == cae_before


def test_existing_outputs_are_kept_without_force(runner: CliRunner, tmp_path: Path, photo: Path) -> None:
    assert runner.invoke(app, ["encode", str(photo)]).exit_code == 0
    cae = photo.with_suffix(".cae")
    existing = tmp_path / "d.png"
    existing.write_bytes(b"precious")
    r = runner.invoke(app, ["decode", str(cae), "-o", str(existing)])
    assert r.exit_code == 1 and "--force" in error_line(r)
    assert existing.read_bytes() == b"precious"
    assert files_in(tmp_path) == {"in", "d.png"}
    assert runner.invoke(app, ["decode", str(cae), "-o", str(existing), "--force"]).exit_code == 0
    assert Image.open(existing).size == (70, 50)


# ---------------------------------------------------------------- batches and exit codes


def test_batch_goes_on_past_a_bad_file(runner: CliRunner, tmp_path: Path, photo_rgb: np.ndarray) -> None:
    names = ["a.png", "b.png", "bad.png", "c.png"]
    for name in names:
        Image.fromarray(photo_rgb).save(tmp_path / name)
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "out"
    r = runner.invoke(app, ["encode", *(str(tmp_path / n) for n in names), "-o", f"{out}/"])
    assert r.exit_code == 1
    assert files_in(out) == {"a.cae", "b.cae", "c.cae"}
    assert f"1 of 4 files failed: {tmp_path / 'bad.png'}" in r.stderr
    # the same for decoding: a corrupt .cae among good ones
    (out / "b.cae").write_bytes((out / "b.cae").read_bytes()[:-3])
    r = runner.invoke(
        app, ["decode", *(str(out / n) for n in ("a.cae", "b.cae", "c.cae")), "-o", f"{tmp_path / 'dec'}/"]
    )
    assert r.exit_code == 1
    assert files_in(tmp_path / "dec") == {"a.decoded.png", "c.decoded.png"}
    assert f"1 of 3 files failed: {out / 'b.cae'}" in r.stderr


@pytest.mark.parametrize(
    "args, code",
    [
        (["encode", "PHOTO"], 0),
        (["encode", "PHOTO", "MISSING"], 1),
        (["decode", "MISSING"], 1),
        (["encode"], 2),
        (["encode", "PHOTO", "--quality", "99"], 2),
        (["encode", "PHOTO", "--no-such-option"], 2),
        (["decode", "PHOTO", "--quality", "1"], 2),  # an option of encode, not decode
        (["frobnicate"], 2),
    ],
)
def test_exit_codes(runner: CliRunner, tmp_path: Path, photo: Path, args: list[str], code: int) -> None:
    argv = [str(photo) if a == "PHOTO" else str(tmp_path / "missing.png") if a == "MISSING" else a for a in args]
    r = runner.invoke(app, [*argv, "--force"] if code == 0 else argv)
    assert r.exit_code == code, r.output
    if code == 1:
        assert "no such file" in error_line(r)


def test_usage_error_and_failure_exit_codes_from_a_real_process(tmp_path: Path) -> None:
    caec = [sys.executable, "-m", "cae_codec"]
    usage = subprocess.run([*caec, "encode"], capture_output=True, text=True, cwd=REPO)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    bad = tmp_path / "bad.cae"
    bad.write_bytes(b"\x89CAE\r\n\x1a\n\x07")
    failed = subprocess.run([*caec, "decode", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"caec: error: {bad}: unsupported format version 7 (this caec reads versions 1 and 2)"
    ]


def _forged(cae: bytes, kind: str) -> bytes:
    if kind == "truncated":
        return cae[:-1]
    if kind == "wrong-shape":  # a valid JPEG2000 codestream, of the wrong size
        from cae_codec.stages import j2k

        return with_chunk(cae, LATENT, j2k.encode_plane(np.zeros((7, 9), dtype=np.int16), 0))
    if kind == "wrong-parameters":
        return with_params(cae, step=float("nan"))
    # wrong weights
    if version_of(cae) == 2:
        return with_header_v2(cae, weights_hash=bytes(8))
    box = container.unpack(cae)
    header = container.Header(**{**box.header.__dict__, "weights_hash": bytes(16)})
    return container.pack(header, box.chunks.items())


@pytest.mark.parametrize(
    "version, kind",
    [
        *(("v1", kind) for kind in ("truncated", "wrong-shape", "wrong-weights")),
        *(("v2", kind) for kind in ("truncated", "wrong-shape", "wrong-weights", "wrong-parameters")),
    ],
)
def test_malformed_file_fails_before_torch_is_imported(
    tmp_path: Path, rgba_cae: bytes, rgba_v1: bytes, version: str, kind: str
) -> None:
    """Importing torch takes seconds; a file refused by the container, the payload checks or
    the weights hash must not wait for it."""
    bad = tmp_path / "bad.cae"
    bad.write_bytes(_forged(rgba_v1 if version == "v1" else rgba_cae, kind))
    child = (
        "import sys\n"
        "from cae_codec import api\n"
        "from cae_codec.errors import CaecError\n"
        "try:\n"
        f"    api.decode(open({str(bad)!r}, 'rb').read())\n"
        "except CaecError as e:\n"
        "    print('torch' in sys.modules, e)\n"
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.startswith("False "), done.stdout + done.stderr


def test_tiles_cut_from_the_image_equal_those_of_a_padded_copy() -> None:
    """The encoder no longer builds a padded copy of the whole image (memory); what it
    codes must not change: the same tiles, the same integers."""
    from cae_codec.cae.codec import _edge_tile
    from cae_codec.stages import quant
    from cae_codec.stages.tiling import TILE, pad_edge, padded_size, tile_origins

    rng = np.random.default_rng(8)
    for h, w, c in [(1, 1, 3), (130, 257, 3), (300, 128, 1), (129, 129, 4)]:
        img = rng.integers(0, 256, (h, w, c), dtype=np.uint8)
        ph, pw = padded_size(h, w)
        colour = 3 if c >= 3 else 1
        padded = pad_edge(np.ascontiguousarray(img[:, :, :colour].transpose(2, 0, 1)), ph, pw)
        for y, x in tile_origins(ph, pw):
            assert np.array_equal(_edge_tile(img, y, x, colour), padded[:, y : y + TILE, x : x + TILE])
    z = rng.normal(0, 50, (96, 9, 13)).astype(np.float32)
    per_plane = np.stack([quant.quantize(plane, 0.7) for plane in z])
    assert np.array_equal(per_plane, quant.quantize(z, 0.7))


# ---------------------------------------------------------------- reproducible decoding

DECODE_CHILD = """
import sys
import numpy as np
import torch
from cae_codec import api, container
from cae_codec.cae import payload
torch.set_num_threads(int(sys.argv[1]))
data = open(sys.argv[2], "rb").read()
box = container.parse(data)
np.save(sys.argv[3], api.decode(data, device="cpu"))
p = payload.params(box)
s = api.get_codec(api.file_model(box).name, "cpu").model.stride  # the model the file names
np.save(sys.argv[4], payload.read_components(box, p, p.padded_height // s, p.padded_width // s))
"""


@pytest.mark.slow
def test_decoding_is_identical_across_thread_counts(codec, tmp_path: Path) -> None:
    img = smooth_image(np.random.default_rng(6), 300, 400, 3)  # 12 tiles: the batch is split across threads
    cae = tmp_path / "x.cae"
    cae.write_bytes(codec.encode(img, quality=7))
    results = {}
    for threads in (1, 2):
        pixels, ints = tmp_path / f"px{threads}.npy", tmp_path / f"q{threads}.npy"
        cmd = [sys.executable, "-c", DECODE_CHILD, str(threads), str(cae), str(pixels), str(ints)]
        subprocess.run(cmd, check=True, cwd=REPO)
        results[threads] = np.load(pixels), np.load(ints)
    (px1, q1), (px2, q2) = results[1], results[2]
    assert np.array_equal(q1, q2), "the integers read from the file never differ"
    # measured equal on this project's CPU machines (docs/robustness.md)
    assert np.array_equal(px1, px2)
