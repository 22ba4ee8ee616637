"""The library's argument checks: every bad argument of encode/decode/info is one CaecError
with one clear line, and the bytes of a .cae file may come as any bytes-like object."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cae_codec import api, zoo
from cae_codec.cae import payload
from cae_codec.cae.codec import FamilyCodec
from cae_codec.errors import CaecError, ModelError
from cae_codec.stages import quant
from tests.conftest import rewrite_v2, smooth_image

GOOD = np.zeros((8, 8, 3), dtype=np.uint8)


def _one_line(err: pytest.ExceptionInfo[CaecError]) -> str:
    text = str(err.value)
    assert text and "\n" not in text
    return text


@pytest.fixture(scope="module")
def small_file(codec) -> bytes:
    return codec.encode(smooth_image(np.random.default_rng(3), 24, 40, 3), quality=6)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"quality": 0}, "quality must be an int in 1..10, got 0"),
        ({"quality": quant.QUALITY_MAX + 1}, "quality must be an int"),
        ({"quality": 4.5}, "quality must be an int in 1..10, got 4.5"),
        ({"quality": True}, "quality must be an int"),
        ({"quality": "5"}, "quality must be an int"),
        ({"bpp": math.nan}, "bpp must be a finite number in \\(0, 64\\), got nan"),
        ({"bpp": math.inf}, "bpp must be a finite number"),
        ({"bpp": -1}, "bpp must be a finite number in \\(0, 64\\), got -1"),
        ({"bpp": 0}, "bpp must be a finite number"),
        ({"bpp": 64}, "bpp must be a finite number"),
        ({"bpp": "0.5"}, "bpp must be a finite number"),
        ({"bpp": True}, "bpp must be a finite number"),
        ({"quality": 4, "bpp": 0.5}, "give one of quality, bpp and size"),
        ({"quality": 4, "size": 500}, "give one of quality, bpp and size"),
        ({"bpp": 0.5, "size": 500}, "give one of quality, bpp and size"),
        ({"size": 0}, "size must be a positive int \\(bytes\\), got 0"),
        ({"size": 100.5}, "size must be a positive int"),
        ({"size": True}, "size must be a positive int"),
        ({"codec": "nope"}, "unknown codec 'nope' \\(this caec knows cae-pca-j2k"),
        ({"codec": None}, "codec must be a codec id, got None"),
        ({"refine": -1}, "refine must be an int in 0..1000"),
        ({"refine": 2.5}, "refine must be an int"),
        ({"refine": True}, "refine must be an int"),
        ({"model": 3}, "model must be a name or a path"),
        ({"device": None}, "device must be"),
        ({"max_pixels": 0}, "max_pixels must be a positive int"),
        ({"max_pixels": 1.5}, "max_pixels must be a positive int"),
    ],
)
def test_bad_encode_arguments_are_one_caec_error(kwargs: dict, needle: str) -> None:
    with pytest.raises(CaecError, match=needle) as err:
        api.encode(GOOD, **kwargs)
    _one_line(err)


@pytest.mark.parametrize(
    ("image", "needle"),
    [
        (np.zeros(16, dtype=np.uint8), "got shape \\(16,\\)"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "got shape \\(2, 4, 4, 3\\)"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "C in 1..4, got shape \\(4, 4, 5\\)"),
        (np.zeros((4, 4, 0), dtype=np.uint8), "C in 1..4"),
        (np.zeros((0, 4, 3), dtype=np.uint8), "no pixels"),
        (np.zeros((4, 0), dtype=np.uint8), "no pixels"),
        (np.zeros((4, 4, 3), dtype=np.float32), "uint8 pixels, got float32"),
        (np.uint8(7), "got shape \\(\\)"),
        ([[1, 2], [3]], "takes a uint8 array, got list"),
        (None, "uint8 pixels, got object"),
    ],
)
def test_bad_images_are_one_caec_error(image: object, needle: str) -> None:
    with pytest.raises(CaecError, match=needle) as err:
        api.encode(image)  # type: ignore[arg-type]
    _one_line(err)


def test_numpy_integers_and_floats_are_accepted(codec) -> None:
    img = smooth_image(np.random.default_rng(5), 24, 24, 3)
    by_int = api.encode(img, quality=6, device="cpu")
    assert api.encode(img, quality=np.int64(6), device="cpu") == by_int
    assert api.encode(img, bpp=np.float32(4.0), device="cpu") == api.encode(img, bpp=4.0, device="cpu")


def test_size_gives_the_largest_file_within_that_many_bytes(codec) -> None:
    img = smooth_image(np.random.default_rng(5), 64, 80, 3)
    at_q4 = len(api.encode(img, quality=4, device="cpu"))
    for size in (at_q4 // 2, at_q4, 2 * at_q4):
        data = api.encode(img, size=size, device="cpu")
        # whole file, header included; the search lands within a few percent under it
        assert 0.9 * size < len(data) <= size, (size, len(data))
        assert api.info(data)["quality"] == 0  # the step was searched, not a quality's
    with pytest.raises(CaecError, match=r"cannot reach 10 bytes: the smallest file for this image is") as err:
        api.encode(img, size=10, device="cpu")
    _one_line(err)


def test_a_rate_the_image_cannot_reach_names_the_rate_asked_for(codec) -> None:
    # 64x64 at 0.001 bpp is a budget of 0 bytes; the message used to give the budget's rate
    img = smooth_image(np.random.default_rng(5), 64, 64, 3)
    with pytest.raises(CaecError, match=r"cannot reach 0\.001 bpp: the smallest file") as err:
        api.encode(img, bpp=0.001, device="cpu")
    _one_line(err)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: np.frombuffer(b, dtype=np.uint8)])
def test_decode_and_info_take_any_bytes_like_object(small_file: bytes, wrap) -> None:
    expected = api.decode(small_file, device="cpu")
    assert np.array_equal(api.decode(wrap(small_file), device="cpu"), expected)
    assert api.info(wrap(small_file)) == api.info(small_file)


def test_info_gives_the_container_version_and_the_codecs_parameters(codec, small_file: bytes) -> None:
    fields = api.info(small_file)
    assert (fields["format_version"], fields["codec"], fields["width"], fields["height"], fields["channels"]) == (
        2,
        "cae-pca-j2k",
        40,
        24,
        3,
    )
    # the model: its zoo number (0 for weights the zoo does not ship) and 8 bytes of its
    # weights hash in the header, its name found from them
    if isinstance(codec, FamilyCodec):
        member, step = codec.at(quant.step_for_quality(6))
    else:
        member, step = codec, quant.step_for_quality(6)
    shipped = zoo.catalogue().models.get(member.name)
    assert fields["model"] == member.name and fields["model_number"] == (shipped.number if shipped else 0)
    assert fields["weights_hash"] == member.model.weights_hash[:8].hex()
    # the CAE's parameters, from its PARM chunk: quality 6 at the member's step, one padded tile
    assert fields["step"] == pytest.approx(step, rel=1e-6)
    assert fields["quality"] == 6 and fields["tile"] == 128
    assert (fields["padded_width"], fields["padded_height"]) == (128, 128)
    assert fields["latent_channels"] == member.model.latent_channels
    assert 0 < fields["components"] <= fields["latent_channels"] and fields["mosaic_cols"] >= 1
    assert fields["chunks"] == {"PARM": payload.PARAMS_STRUCT.size, "LATN": fields["chunks"]["LATN"]}
    assert fields["file_bytes"] == len(small_file) and fields["bpp"] == 8 * len(small_file) / (40 * 24)


def test_info_describes_a_file_whose_weights_this_caec_lacks(small_file: bytes) -> None:
    unknown = rewrite_v2(small_file, model_number=0, weights_hash=bytes(range(8)))
    fields = api.info(unknown)
    assert fields["model"] is None and fields["weights_hash"] == bytes(range(8)).hex()
    assert fields["quality"] == 6 and fields["width"] == 40
    with pytest.raises(ModelError, match="no model with weights hash 0001020304050607"):
        api.decode(unknown, device="cpu")


def test_a_shaped_buffer_is_taken_as_its_bytes(small_file: bytes) -> None:
    # len() of a 2-D view counts rows (1 here): the file is the buffer's bytes, all of them
    view = memoryview(small_file).cast("B", (1, len(small_file)))
    assert len(view) == 1
    assert api.info(view)["file_bytes"] == len(small_file)


@pytest.mark.parametrize("data", ["a .cae file", 42, None, [1, 2, 3]])
def test_decode_and_info_refuse_what_is_not_bytes(data: object) -> None:
    for call in (api.decode, api.info):
        with pytest.raises(CaecError, match="bytes-like object") as err:
            call(data)  # type: ignore[operator]
        _one_line(err)


def test_bad_decode_options_are_one_caec_error(small_file: bytes) -> None:
    for kwargs, needle in (
        ({"model": 3}, "model must be"),
        ({"device": 0}, "device must be"),
        ({"max_pixels": -5}, "max_pixels"),
    ):
        with pytest.raises(CaecError, match=needle):
            api.decode(small_file, **kwargs)  # type: ignore[arg-type]


def test_a_model_not_found_says_how_to_point_caec_at_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="'no-such-model' not found in") as err:
        api.encode(GOOD, model="no-such-model", device="cpu")
    text = _one_line(err)
    assert str(tmp_path) in text and "$CAEC_MODELS" in text and "-m" in text
