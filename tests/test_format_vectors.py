"""The test vectors of docs/format.md ("Conformance and test vectors"), checked two ways.

tests/fixtures/v2-*.cae are small version-2 files of the shipped cae-gdn-v3 members; beside
each, v2-*.png holds its decoded pixels and v2-*.json the dump of its header and chunks, the
SHA-256 of its quantized integers (the LATN mosaic's components, int16 little-endian, C order)
and of its pixels. Each is checked against:

- the product (cae_codec.container, cae_codec.cae.payload, api.decode), and
- a reference reader and decoder written here from docs/format.md alone: numpy, imagecodecs
  (OpenJPEG) and the shipped safetensors files, no torch and no cae_codec code. It is the
  proof that the page is enough for a second implementation: its pixels must meet the same
  tolerance (one level, docs/format.md "Conformance").

The version-1 fixtures (tests/fixtures/v1-*.cae, tests/test_format_fixtures.py) must still
parse as version 1, and the reference decoder reads them too.

The vectors were written once by ``python -m tests.test_format_vectors --write`` (the encoder's
floats vary between machines, so writing them again gives other files); a test never writes.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import sys
import zlib
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
ZOO = REPO / "cae_codec" / "zoo"
FORMAT_MD = REPO / "docs" / "format.md"

# name: how it was made (tests.conftest.smooth_image with this seed; quality; the shipped family)
VECTORS: dict[str, dict[str, Any]] = {
    "v2-rgb-q4": {"seed": 14, "height": 40, "width": 56, "channels": 3, "quality": 4},
    "v2-grey-alpha-q2": {"seed": 14, "height": 33, "width": 47, "channels": 2, "quality": 2},
    "v2-grey-q7": {"seed": 14, "height": 31, "width": 29, "channels": 1, "quality": 7},
    "v2-rgba-q9-icc": {"seed": 14, "height": 20, "width": 136, "channels": 4, "quality": 9, "icc": "sRGB"},
}
V1_FILES = sorted(FIXTURES.glob("v1-*.cae"))
TOLERANCE = 1  # levels of 0..255, docs/format.md "Conformance"


# --------------------------------------------------------------------------------------------
# The reference reader: docs/format.md, sections 1-5, and nothing else
# --------------------------------------------------------------------------------------------

MAGIC = bytes.fromhex("894341450d0a1a0a")
CODEC_NUMBERS = {1: "cae-pca-j2k", 2: "comcnn", 3: "rnn", 4: "mnist-dae"}
# the zoo's model numbers (format.md section 3.2) and the weights files that hold them
MODEL_NUMBERS = {
    1: "cae-gdn-v3-high",
    2: "cae-gdn-v3-low",
    3: "mnist-dae-196",
    4: "mnist-dae-30",
    5: "comcnn-jpeg",
    6: "rnn-gru-w8",
    7: "comcnn-enhance",
    8: "comcnn-jpeg2000",
    9: "comcnn-webp",
    10: "comcnn-avif",
    11: "rnn-gru-w8-ft64",
}
V1_HEADER = struct.Struct(">BBIIHII16s32s16sfBHHH")
PARM = struct.Struct(">HfBHHH")
SAFETENSORS_DTYPES = {
    "F32": ("torch.float32", "<f4"),
    "F16": ("torch.float16", "<f2"),
    "I32": ("torch.int32", "<i4"),
    "I64": ("torch.int64", "<i8"),
}


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(5):
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            assert not (i and not byte), "uvarint not in its shortest form"
            assert value <= 0xFFFFFFFF
            return value, pos + i + 1
    raise AssertionError("uvarint of more than 5 bytes")


def ref_parse(data: bytes) -> dict[str, Any]:
    """Header fields, chunk list and codec parameters of a .cae file of version 1 or 2."""
    assert data[:8] == MAGIC
    if data[8] == 1:
        return _ref_parse_v1(data)
    assert data[8] == 2
    flags, number = data[9], data[10]
    model, p = _uvarint(data, 11)
    weights = data[p : p + 8]
    width, p = _uvarint(data, p + 8)
    height, p = _uvarint(data, p)
    channels = data[p]
    count, p = _uvarint(data, p + 1)
    (crc,) = struct.unpack_from(">I", data, p)
    assert zlib.crc32(data[8:p]) == crc, "header CRC"
    header = {
        "version": 2,
        "flags": flags,
        "codec_number": number,
        "codec": CODEC_NUMBERS[number],
        "model_number": model,
        "weights_hash": weights.hex(),
        "width": width,
        "height": height,
        "channels": channels,
        "chunk_count": count,
        "header_crc": f"{crc:08x}",
        "header_bytes": data[: p + 4].hex(),
    }
    pos = p + 4
    chunks = []
    for _ in range(count):
        ctype = data[pos : pos + 4]
        length, body = _uvarint(data, pos + 4)
        payload = data[body : body + length]
        (ccrc,) = struct.unpack_from(">I", data, body + length)
        assert zlib.crc32(ctype + payload) == ccrc, f"chunk {ctype!r} CRC"
        chunks.append({"type": ctype.decode(), "offset": pos, "length": length, "crc": f"{ccrc:08x}"})
        pos = body + length + 4
    assert pos == len(data), "trailing data"
    assert chunks[0]["type"] == "PARM"
    parm = _payload(data, chunks[0])
    tile, step, quality, latent, components, cols = PARM.unpack(parm)
    params = {
        "tile": tile,
        "step": step,
        "step_float32_bits": parm[2:6].hex(),
        "quality": quality,
        "latent_channels": latent,
        "components": components,
        "mosaic_cols": cols,
    }
    return {"header": header, "chunks": chunks, "params": params}


def _ref_parse_v1(data: bytes) -> dict[str, Any]:
    (crc,) = struct.unpack_from(">I", data, 104)
    assert zlib.crc32(data[8:104]) == crc, "header CRC"
    (flags, channels, width, height, tile, pw, ph, codec, model, weights, step, quality, latent, components, cols) = (
        V1_HEADER.unpack_from(data, 9)
    )
    header = {
        "version": 1,
        "flags": flags,
        "codec": codec.rstrip(b"\0").decode(),
        "model": model.rstrip(b"\0").decode(),
        "weights_hash": weights.hex(),
        "width": width,
        "height": height,
        "channels": channels,
        "header_crc": f"{crc:08x}",
    }
    pos, chunks = 108, []
    while True:
        ctype, length = struct.unpack_from(">4sI", data, pos)
        payload = data[pos + 8 : pos + 8 + length]
        (ccrc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert zlib.crc32(ctype + payload) == ccrc, f"chunk {ctype!r} CRC"
        chunks.append({"type": ctype.decode(), "offset": pos, "length": length, "crc": f"{ccrc:08x}"})
        pos += 12 + length
        if ctype == b"END_":
            break
    assert pos == len(data), "trailing data"
    params = {
        "tile": tile,
        "padded_width": pw,
        "padded_height": ph,
        "step": step,
        "quality": quality,
        "latent_channels": latent,
        "components": components,
        "mosaic_cols": cols,
    }
    return {"header": header, "chunks": chunks, "params": params}


def _payload(data: bytes, chunk: dict[str, Any]) -> bytes:
    start = _payload_start(data, chunk)
    return data[start : start + chunk["length"]]


def _payload_start(data: bytes, chunk: dict[str, Any]) -> int:
    if data[8] == 1:
        return int(chunk["offset"]) + 8
    _, body = _uvarint(data, chunk["offset"] + 4)
    return body


def _all_payloads(data: bytes, parsed: dict[str, Any], ctype: str) -> list[bytes]:
    return [_payload(data, c) for c in parsed["chunks"] if c["type"] == ctype]


@cache
def ref_weights(name: str) -> tuple[dict[str, Any], dict[str, np.ndarray], bytes]:
    """A weights file's metadata, its tensors (numpy) and the weights hash computed from the
    file's bytes by format.md's recipe."""
    raw = (ZOO / f"{name}.safetensors").read_bytes()
    (size,) = struct.unpack_from("<Q", raw, 0)
    head = json.loads(raw[8 : 8 + size])
    meta = head.pop("__metadata__")
    base = 8 + size
    tensors: dict[str, np.ndarray] = {}
    digest = hashlib.sha256()
    for tname in sorted(head):
        entry = head[tname]
        torch_dtype, np_dtype = SAFETENSORS_DTYPES[entry["dtype"]]
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        body = raw[base + start : base + end]
        digest.update(f"{tname}|{torch_dtype}|{shape}|".encode())
        digest.update(body)
        tensors[tname] = np.frombuffer(body, dtype=np_dtype).reshape(shape).astype(np.float32)
    return meta, tensors, digest.digest()[:16]


def _conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stride 2, padding k // 2, output padding 1: (cin, H, W) -> (cout, 2H, 2W);
    out[o, 2i - p + ky, 2j - p + kx] += x[c, i, j] * w[c, o, ky, kx]."""
    cin, h, wd = x.shape
    cout, k = w.shape[1], w.shape[2]
    p = k // 2
    full = np.zeros((cout, 2 * h + k, 2 * wd + k), dtype=np.float32)
    flat = x.reshape(cin, h * wd)
    for ky in range(k):
        for kx in range(k):
            full[:, ky : ky + 2 * h : 2, kx : kx + 2 * wd : 2] += (w[:, :, ky, kx].T @ flat).reshape(cout, h, wd)
    return full[:, p : p + 2 * h, p : p + 2 * wd] + b[:, None, None]


def _igdn(x: np.ndarray, beta_sqrt: np.ndarray, gamma_sqrt: np.ndarray) -> np.ndarray:
    """x_i * sqrt(beta_i + sum_j gamma_ij x_j^2), beta = beta_sqrt^2 + 1e-6, gamma = gamma_sqrt^2
    (row i: the output channel)."""
    c = x.shape[0]
    beta = beta_sqrt * beta_sqrt + np.float32(1e-6)
    gamma = gamma_sqrt * gamma_sqrt
    norm = (gamma @ (x * x).reshape(c, -1)).reshape(x.shape) + beta[:, None, None]
    return x * np.sqrt(norm)


# full-range BT.601: the inverse of the encoder's RGB -> YCbCr matrix, in float64, then float32
RGB_TO_YCBCR = np.array([[0.299, 0.587, 0.114], [-0.168735892, -0.331264108, 0.5], [0.5, -0.418687589, -0.081312411]])
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR).astype(np.float32)


def _synthesize(y: np.ndarray, tensors: dict[str, np.ndarray], prefix: str, stages: int) -> np.ndarray:
    """One tile's latent (M, t, t) -> YCbCr (3, 128, 128) in about [0, 1]."""
    x = y
    for i in range(stages):
        layer = 2 * i
        x = _conv_transpose(x, tensors[f"{prefix}{layer}.weight"], tensors[f"{prefix}{layer}.bias"])
        if i < stages - 1:
            x = _igdn(x, tensors[f"{prefix}{layer + 1}.beta_sqrt"], tensors[f"{prefix}{layer + 1}.gamma_sqrt"])
    return x + np.float32(0.5)


def ref_components(data: bytes) -> np.ndarray:
    """The quantized components (K, h, w) int16 from the LATN mosaic."""
    import imagecodecs

    parsed = ref_parse(data)
    hd, prm = parsed["header"], parsed["params"]
    meta, _, _ = ref_weights(_model_name(hd))
    stride = 2 ** json.loads(meta["config"])["stages"]
    ph, pw = _padded(hd, prm)
    h, w = ph // stride, pw // stride
    k, cols = prm["components"], prm["mosaic_cols"]
    if not k:
        return np.zeros((0, h, w), dtype=np.int16)
    (latn,) = _all_payloads(data, parsed, "LATN")
    mosaic = imagecodecs.jpeg2k_decode(latn)
    rows = -(-k // cols)
    assert mosaic.dtype == np.int16 and mosaic.shape == (rows * h, cols * w)
    return np.stack(
        [mosaic[(i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w] for i in range(k)]
    )


def _model_name(hd: dict[str, Any]) -> str:
    return str(hd["model"]) if hd["version"] == 1 else MODEL_NUMBERS[hd["model_number"]]


def _padded(hd: dict[str, Any], prm: dict[str, Any]) -> tuple[int, int]:
    if hd["version"] == 1:
        return prm["padded_height"], prm["padded_width"]
    t = prm["tile"]
    return -(-hd["height"] // t) * t, -(-hd["width"] // t) * t


def ref_decode(data: bytes) -> np.ndarray:
    """(height, width, channels) uint8, by docs/format.md section 4."""
    import imagecodecs

    parsed = ref_parse(data)
    hd, prm = parsed["header"], parsed["params"]
    meta, tensors, digest = ref_weights(_model_name(hd))
    assert digest.hex().startswith(hd["weights_hash"]), "weights hash"
    config = json.loads(meta["config"])
    stages, stride = config["stages"], 2 ** config["stages"]
    bands = [float(b) for b in config.get("decoder_bands", [])]
    step = np.float32(prm["step"])
    band = sum(b <= float(step) for b in bands)
    prefix = "net.decoder." if band == 0 else f"net.band_decoders.{band - 1}."
    q = ref_components(data)
    k = q.shape[0]
    basis = tensors["pca.basis"][:, :k]
    mean = tensors["pca.mean"]
    ph, pw = _padded(hd, prm)
    tile, t = prm["tile"], prm["tile"] // stride
    channels = hd["channels"]
    colour = 3 if channels >= 3 else 1
    out = np.zeros((ph, pw, channels), dtype=np.uint8)
    for ty in range(0, ph, tile):
        for tx in range(0, pw, tile):
            z = q[:, ty // stride : ty // stride + t, tx // stride : tx // stride + t].astype(np.float32) * step
            y = (basis @ z.reshape(k, -1)).reshape(-1, t, t) + mean[:, None, None]
            x = _synthesize(y.astype(np.float32), tensors, prefix, stages)
            if colour == 3:
                x = (YCBCR_TO_RGB @ (x - np.array([0, 0.5, 0.5], np.float32)[:, None, None]).reshape(3, -1)).reshape(
                    x.shape
                )
            else:
                x = x[:1]
            pix = np.rint(np.clip(x, 0, 1) * np.float32(255)).astype(np.uint8)
            out[ty : ty + tile, tx : tx + tile, :colour] = pix.transpose(1, 2, 0)
    out = out[: hd["height"], : hd["width"]]
    if channels in (2, 4):
        (alph,) = _all_payloads(data, parsed, "ALPH")
        out[:, :, -1] = imagecodecs.jpeg2k_decode(alph)
    return out


# --------------------------------------------------------------------------------------------
# Digests and dumps
# --------------------------------------------------------------------------------------------


def sha256(array: np.ndarray) -> str:
    """SHA-256 of an array's samples, C order, little-endian."""
    return hashlib.sha256(np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"))).tobytes()).hexdigest()


def read_png(path: Path) -> np.ndarray:
    pixels = np.asarray(Image.open(path))
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def dump(name: str, data: bytes, pixels: np.ndarray, recipe: dict[str, Any]) -> dict[str, Any]:
    """The JSON beside a vector."""
    import imagecodecs

    parsed = ref_parse(data)
    hd, prm = parsed["header"], parsed["params"]
    meta, _, digest = ref_weights(_model_name(hd))
    config = json.loads(meta["config"])
    stride = 2 ** config["stages"]
    bands = [float(b) for b in config.get("decoder_bands", [])]
    band = sum(b <= float(np.float32(prm["step"])) for b in bands)
    ph, pw = _padded(hd, prm)
    q = ref_components(data)
    alpha = _all_payloads(data, parsed, "ALPH")
    return {
        "file": f"{name}.cae",
        "file_bytes": len(data),
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "recipe": recipe,
        "header": hd,
        "chunks": parsed["chunks"],
        "params": prm,
        "derived": {
            "model": _model_name(hd),
            "weights_hash": digest.hex(),
            "stride": stride,
            "padded_width": pw,
            "padded_height": ph,
            "plane": [ph // stride, pw // stride],
            "tiles": (ph // prm["tile"]) * (pw // prm["tile"]),
            "decoder_bands": bands,
            "band": band,
            "decoder": "decoder" if band == 0 else f"band_decoders.{band - 1}",
        },
        "components": {
            "shape": list(q.shape),
            "dtype": "int16 little-endian, C order",
            "sha256": sha256(q),
            "min": int(q.min()) if q.size else 0,
            "max": int(q.max()) if q.size else 0,
            "nonzero": int(np.count_nonzero(q)),
        },
        "alpha": {"sha256": sha256(imagecodecs.jpeg2k_decode(alpha[0]))} if alpha else None,
        "pixels": {"png": f"{name}.png", "shape": list(pixels.shape), "sha256": sha256(pixels)},
        "tolerance": {"max_abs_diff": TOLERANCE},
    }


def write_vectors() -> None:
    """Encode the vectors with this checkout and write .cae, .png and .json (once, by hand)."""
    from cae_codec import api
    from tests.conftest import smooth_image

    for name, recipe in VECTORS.items():
        img = smooth_image(np.random.default_rng(recipe["seed"]), recipe["height"], recipe["width"], recipe["channels"])
        icc = None
        if recipe.get("icc") == "sRGB":
            from PIL import ImageCms

            icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
        data = api.encode(img, quality=recipe["quality"], model="cae-gdn-v3", device="cpu", icc_profile=icc)
        pixels = api.decode(data, device="cpu")
        (FIXTURES / f"{name}.cae").write_bytes(data)
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(FIXTURES / f"{name}.png")
        recipe = {"image": "tests.conftest.smooth_image(np.random.default_rng(seed), height, width, channels)"} | recipe
        recipe |= {"model": "cae-gdn-v3", "command": "python -m tests.test_format_vectors --write"}
        doc = dump(name, data, pixels, recipe)
        (FIXTURES / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(name, len(data), "bytes")


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def vector(name: str) -> tuple[bytes, dict[str, Any], np.ndarray]:
    return (
        (FIXTURES / f"{name}.cae").read_bytes(),
        json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")),
        read_png(FIXTURES / f"{name}.png"),
    )


def _differ(got: np.ndarray, expected: np.ndarray) -> tuple[int, int]:
    assert got.shape == expected.shape
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    return int(diff.max()), int(np.count_nonzero(diff))


def test_every_vector_is_committed() -> None:
    for name in VECTORS:
        for ext in ("cae", "png", "json"):
            assert (FIXTURES / f"{name}.{ext}").is_file(), f"{name}.{ext}"


@pytest.mark.parametrize("name", VECTORS)
def test_vector_parses_to_its_dumped_fields(name: str) -> None:
    from cae_codec import container
    from cae_codec.cae import payload

    data, doc, pixels = vector(name)
    assert hashlib.sha256(data).hexdigest() == doc["file_sha256"]
    # the reference reader of this file
    parsed = ref_parse(data)
    assert parsed["header"] == doc["header"]
    assert parsed["chunks"] == doc["chunks"]
    assert parsed["params"] == doc["params"]
    assert data.startswith(bytes.fromhex(doc["header"]["header_bytes"]))
    # the product's reader
    box = container.parse(data)
    hd = doc["header"]
    assert (box.version, box.codec, box.flags, box.model_number) == (2, hd["codec"], hd["flags"], hd["model_number"])
    assert (box.width, box.height, box.channels) == (hd["width"], hd["height"], hd["channels"])
    assert box.weights_hash.hex() == hd["weights_hash"] and box.declared == hd["chunk_count"] and box.complete
    assert [t.decode() for t, _ in box.chunks] == [c["type"] for c in doc["chunks"]]
    assert [len(p) for _, p in box.chunks] == [c["length"] for c in doc["chunks"]]
    p = payload.check(box, doc["derived"]["stride"], doc["params"]["latent_channels"])
    expected = {
        **{k: v for k, v in doc["params"].items() if k != "step_float32_bits"},
        "padded_width": doc["derived"]["padded_width"],
        "padded_height": doc["derived"]["padded_height"],
    }
    described = payload.describe(box)  # caec info's fields: it may show more than the format holds
    assert {k: described[k] for k in expected} == expected
    assert struct.pack(">f", p.step).hex() == doc["params"]["step_float32_bits"]
    # the model the number names has the hash the header begins
    meta, _, digest = ref_weights(doc["derived"]["model"])
    assert digest.hex() == doc["derived"]["weights_hash"] == meta["weights_hash"]
    assert digest.hex().startswith(hd["weights_hash"])
    assert list(pixels.shape) == doc["pixels"]["shape"] and sha256(pixels) == doc["pixels"]["sha256"]


@pytest.mark.parametrize("name", VECTORS)
def test_vector_integers_match_their_digest_exactly(name: str) -> None:
    import imagecodecs

    from cae_codec import container
    from cae_codec.cae import payload

    data, doc, _ = vector(name)
    box = container.parse(data)
    p = payload.params(box)
    s = doc["derived"]["stride"]
    product = payload.read_components(box, p, p.padded_height // s, p.padded_width // s)
    reference = ref_components(data)
    assert product.dtype == reference.dtype == np.int16
    assert list(product.shape) == doc["components"]["shape"]
    assert sha256(product) == sha256(reference) == doc["components"]["sha256"]
    if doc["alpha"] is not None:
        alpha = box.first(container.ALPHA)
        assert alpha is not None
        assert sha256(imagecodecs.jpeg2k_decode(alpha)) == doc["alpha"]["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("name", VECTORS)
def test_vector_decodes_to_its_pixels(name: str) -> None:
    from cae_codec import api

    data, doc, expected = vector(name)
    worst, count = _differ(api.decode(data, device="cpu"), expected)
    print(f"{name}: caec decode: {count} of {expected.size} samples differ from the PNG, by at most {worst}")
    assert worst <= doc["tolerance"]["max_abs_diff"]


@pytest.mark.slow
@pytest.mark.parametrize("name", VECTORS)
def test_the_reference_decoder_of_format_md_meets_the_tolerance(name: str) -> None:
    data, doc, expected = vector(name)
    worst, count = _differ(ref_decode(data), expected)
    print(f"{name}: reference decoder: {count} of {expected.size} samples differ from the PNG, by at most {worst}")
    assert worst <= doc["tolerance"]["max_abs_diff"]


def test_there_are_version_1_fixtures() -> None:
    assert len(V1_FILES) >= 3


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_version_1_fixtures_still_parse_as_version_1(path: Path) -> None:
    from cae_codec import container
    from cae_codec.cae import payload

    data = path.read_bytes()
    box = container.parse(data)
    assert box.version == 1 and box.v1_header is not None and box.codec == "cae-pca-j2k"
    parsed = ref_parse(data)
    hd = parsed["header"]
    assert (hd["version"], hd["model"], hd["width"], hd["height"], hd["channels"]) == (
        1,
        box.model,
        box.width,
        box.height,
        box.channels,
    )
    described = payload.describe(box)
    assert {k: described[k] for k in parsed["params"]} == parsed["params"]
    assert [c["type"] for c in parsed["chunks"]][-1] == "END_"
    assert [t.decode() for t, _ in box.chunks] == [c["type"] for c in parsed["chunks"]][:-1]


@pytest.mark.slow
@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.stem)
def test_the_reference_decoder_reads_version_1_fixtures(path: Path) -> None:
    expected = read_png(path.with_suffix(".png"))
    worst, count = _differ(ref_decode(path.read_bytes()), expected)
    print(f"{path.stem}: reference decoder: {count} of {expected.size} samples differ from the PNG, by at most {worst}")
    assert worst <= TOLERANCE


def test_the_zoo_numbers_and_hashes_are_those_format_md_lists() -> None:
    catalogue = json.loads((ZOO / "catalogue.json").read_text(encoding="utf-8"))
    assert {m["number"]: m["name"] for m in catalogue["models"]} == MODEL_NUMBERS
    for m in catalogue["models"]:
        meta, _, digest = ref_weights(m["name"])
        assert digest.hex() == m["weights_hash"] == meta["weights_hash"]
    text = FORMAT_MD.read_text(encoding="utf-8")
    for m in catalogue["models"]:
        assert m["weights_hash"] in text, m["name"]


def test_format_md_shows_the_smallest_vectors_header_bytes() -> None:
    smallest = min(VECTORS, key=lambda n: (FIXTURES / f"{n}.cae").stat().st_size)
    data, doc, _ = vector(smallest)
    text = FORMAT_MD.read_text(encoding="utf-8")
    block = re.search(r"<!-- header-hex: (\S+) -->\n```text\n(.*?)```", text, re.S)
    assert block is not None, "format.md lost its header hex dump"
    assert block.group(1) == f"{smallest}.cae"
    shown = bytes.fromhex("".join(line.split("  ")[1] for line in block.group(2).splitlines() if line.strip()))
    parm = next(c for c in doc["chunks"] if c["type"] == "PARM")
    end = _payload_start(data, parm) + parm["length"] + 4
    assert shown == data[:end]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_format_vectors --write   (writes tests/fixtures/v2-*)")
    write_vectors()
