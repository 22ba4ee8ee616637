"""The library's argument checks: every bad argument of encode/decode/info is one CaecError
with one clear line, and the bytes of a .cae file may come as any bytes-like object."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cae_codec import api, quant
from cae_codec.errors import CaecError, ModelError
from tests.conftest import smooth_image

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
        ({"quality": 4, "bpp": 0.5}, "not both"),
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
