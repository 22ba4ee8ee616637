"""comcnn with another inner codec than JPEG (JPEG 2000, WebP, AVIF): training with --inner and
--init, files of every shape, the chunk's frame checked before any decoder runs, the compact
image written out as a plain file of its format, a model refusing another codec's files, the
fuzzer's comcnn families, and the evaluation's CODEC@MODEL names. Tiny pairs (RecCNN 3 x 4)
trained for a few steps: seconds each on one thread.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cae_codec import container, contract, registry
from cae_codec.cli import app
from cae_codec.comcnn import frames, inner, load, payload
from cae_codec.comcnn.codec import ComCnnCodec
from cae_codec.container import v2
from cae_codec.errors import CaecError, FormatError
from cae_codec.evaluate.classic import CLASSIC_CODECS
from cae_codec.modelfiles import read_model_info
from cae_codec.weights import load_model
from tests.conftest import error_line, smooth_image
from tests.test_comcnn import train_tiny
from tools import fuzz

OTHERS = ["jpeg2000", "webp", "avif"]


@pytest.fixture(scope="module")
def tiny_models(train_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("comcnn-inner")
    models = {}
    for i, name in enumerate(["jpeg", *OTHERS]):
        models[name] = folder / f"tiny-comcnn-{name}.safetensors"
        train_tiny(train_dir, models[name], "--seed", str(10 + i), "--inner", name)
    return models


def test_training_records_the_inner_codec_and_init_starts_from_a_model(
    tiny_models: dict[str, Path], train_dir: Path, tmp_path: Path
) -> None:
    for name, path in tiny_models.items():
        info = read_model_info(path)
        assert info.config["inner"] == name
        assert load_model(path).metadata["inner_codec"] == name
    # --init with ComCNN's learning rate at 0: ComCNN is the starting model's, RecCNN moved on
    start = load_model(tiny_models["jpeg"]).network
    out = tmp_path / "from-init.safetensors"
    train_tiny(train_dir, out, "--inner", "webp", "--init", str(tiny_models["jpeg"]), "--com-lr-scale", "0")
    net = load_model(out).network
    assert all(
        torch.equal(a, b) for a, b in zip(start.com.state_dict().values(), net.com.state_dict().values(), strict=True)
    )
    assert any(
        not torch.equal(a, b)
        for a, b in zip(start.rec.state_dict().values(), net.rec.state_dict().values(), strict=True)
    )
    # a RecCNN of another size: ComCNN alone with --init-com-only, one line without it
    wide = ["--rec-layers", "4", "--rec-channels", "6", "--init", str(tiny_models["jpeg"])]
    train_tiny(train_dir, tmp_path / "wide.safetensors", *wide, "--init-com-only", "--com-lr-scale", "0")
    assert torch.equal(load_model(tmp_path / "wide.safetensors").network.com.body[0].weight, start.com.body[0].weight)
    for bad in (wide, ["--inner", "gif"], ["--init-com-only"], ["--enhance", "--inner", "webp"]):
        args = ["train", "comcnn", str(train_dir), "-o", str(tmp_path / "bad.safetensors"), "--steps", "1", *bad]
        result = CliRunner().invoke(app, args)
        assert result.exit_code != 0, bad
        error_line(result)


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize(("h", "w", "c"), [(1, 1, 3), (2, 3, 2), (33, 17, 1), (40, 56, 4)])
def test_every_shape_round_trips_with_each_inner_codec(
    tiny_models: dict[str, Path], rng: np.random.Generator, name: str, h: int, w: int, c: int
) -> None:
    codec = load(tiny_models[name], "cpu")
    assert codec.inner.name == name and codec.knob == CLASSIC_CODECS[name].knob
    img = smooth_image(rng, h, w, c)
    data = contract.encode(codec, img, quality=60)
    box = container.parse(data)
    found, frame = payload.check(box)
    assert found.name == name and [t for t, _ in box.chunks if t in payload.INNER_CHUNKS] == [found.chunk]
    want_c = 3 if name == "webp" or c >= 3 else 1
    assert (frame.width, frame.height, frame.components) == ((w + 1) // 2, (h + 1) // 2, want_c)
    out = codec.decode(box)
    assert out.shape == (h, w, c) and out.dtype == np.uint8
    if c in (2, 4):
        assert np.array_equal(out[:, :, -1], img[:, :, -1])


@pytest.mark.parametrize("name", OTHERS)
def test_the_rate_follows_the_knob_and_bpp_is_reached(tiny_models: dict[str, Path], rng, name: str) -> None:
    codec = load(tiny_models[name], "cpu")
    img = smooth_image(rng, 96, 128, 3)
    sizes = [len(contract.encode(codec, img, quality=q)) for q in (10, 50, 90)]
    assert sizes[0] < sizes[1] < sizes[2]
    data = contract.encode(codec, img, bpp=1.0)
    assert 8 * len(data) / (96 * 128) <= 1.0


@pytest.mark.parametrize("name", OTHERS)
def test_cli_encodes_with_inner_and_extracts_a_plain_file_of_that_format(
    tiny_models: dict[str, Path], tmp_path: Path, rng, name: str
) -> None:
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(smooth_image(rng, 50, 61, 3)).save(src)
    cae, png = tmp_path / "a.cae", tmp_path / "a.png"
    suffix = frames.INNER_CODECS[name].suffixes[0]
    runner = CliRunner()
    args = ["encode", str(src), "-c", "comcnn", "--inner", name, "-m", str(tiny_models[name]), "-o", str(cae)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    wrong = tmp_path / "compact.jpg"
    result = runner.invoke(app, ["info", str(cae), "--extract-compact", str(wrong)])
    assert result.exit_code != 0 and suffix in error_line(result) and not wrong.exists()
    plain = tmp_path / f"compact{suffix}"
    result = runner.invoke(app, ["info", str(cae), "--json", "--extract-compact", str(plain)])
    assert result.exit_code == 0, result.output
    assert frames.INNER_CODECS[name].label in result.output and '"compact_size": "31x25"' in result.output
    assert CLASSIC_CODECS[name]().decode(plain.read_bytes()).shape == (25, 31, 3)
    result = runner.invoke(app, ["decode", str(cae), "-m", str(tiny_models[name]), "-o", str(png)])
    assert result.exit_code == 0, result.output
    # a model of another inner codec: refused on one line, at encode and at decode
    other = tiny_models["jpeg"]
    for args in (
        ["encode", str(src), "-c", "comcnn", "--inner", name, "-m", str(other), "-o", str(tmp_path / "b.cae")],
        ["decode", str(cae), "-m", str(other), "-o", str(tmp_path / "b.png")],
        ["encode", str(src), "--inner", name, "-o", str(tmp_path / "c.cae")],  # the default codec has no inner
    ):
        result = runner.invoke(app, args)
        assert result.exit_code != 0, args
        error_line(result)
    assert not list(tmp_path.glob("b.*")) and not (tmp_path / "c.cae").exists()


def test_a_model_refuses_files_of_another_inner_codec(tiny_models: dict[str, Path], rng) -> None:
    img = smooth_image(rng, 20, 24, 3)
    webp_file = contract.encode(load(tiny_models["webp"], "cpu"), img, quality=50)
    jpeg_codec = load(tiny_models["jpeg"], "cpu")
    with pytest.raises(FormatError, match="trained for JPEG"):
        jpeg_codec.decode(container.parse(webp_file))
    with pytest.raises(FormatError, match="trained for JPEG"):
        payload.precheck(container.parse(webp_file), read_model_info(tiny_models["jpeg"]))
    with pytest.raises(CaecError, match="trained for inner codec jpeg"):
        load(tiny_models["jpeg"], "cpu", inner="avif")


def test_an_unknown_inner_codec_and_a_missing_variant_are_one_line_each(
    tiny_models: dict[str, Path], tmp_path: Path, rng, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    src, out = tmp_path / "in.png", tmp_path / "a.cae"
    Image.fromarray(smooth_image(rng, 20, 24, 3)).save(src)
    result = CliRunner().invoke(app, ["encode", str(src), "-c", "comcnn", "--inner", "gif", "-o", str(out)])
    assert result.exit_code != 0 and "unknown inner codec 'gif'" in error_line(result) and not out.exists()
    # the default model with --inner picks the shipped comcnn-INNER; where there is none, it says how to make one
    from cae_codec import weights

    def no_model(name: str, *args: object, **kwargs: object) -> object:
        raise CaecError(f"no model {name}")

    monkeypatch.setattr(weights, "load_model", no_model)
    with pytest.raises(CaecError, match="no comcnn model for inner codec webp is shipped"):
        load(registry.get(payload.CODEC).default_model, "cpu", inner="webp")


def with_inner(data: bytes, chunk: bytes, stream: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    old = v2.unpack(data)
    chunks = [(t, c) for t, c in old.chunks if t not in payload.INNER_CHUNKS]
    return v2.pack(old.header, [(chunk, stream), *chunks, *(extra or [])])


@pytest.mark.parametrize("name", OTHERS)
def test_hostile_inner_chunks_are_refused_before_any_decoder_runs(
    tiny_models: dict[str, Path], rng, name: str, tmp_path: Path
) -> None:
    codec = load(tiny_models[name], "cpu")
    good = contract.encode(codec, smooth_image(rng, 32, 32, 3), quality=50)
    chunk = frames.INNER_CODECS[name].chunk
    stream = container.parse(good).first(chunk) or b""
    hostile = {
        "bomb": with_inner(good, chunk, fuzz.inner_bomb(name, 16000, 16000, 3)),
        "wrong size": with_inner(good, chunk, inner.encode(np.zeros((10, 14, 3), np.uint8), 50, name)),
        "a jpeg in the chunk": with_inner(good, chunk, inner.encode(np.zeros((16, 16, 3), np.uint8), 50, "jpeg")),
        "truncated": with_inner(good, chunk, stream[: len(stream) // 2]),
        "two inner chunks": with_inner(good, chunk, stream, [(b"JPEG", b"\xff\xd8")]),
        "empty": with_inner(good, chunk, b""),
    }
    for what, data in hostile.items():
        with pytest.raises(FormatError):
            codec.decode(container.parse(data))
        path = tmp_path / f"{what.replace(' ', '_')}.cae"
        path.write_bytes(data)
        result = CliRunner().invoke(
            app, ["decode", str(path), "-m", str(tiny_models[name]), "-o", str(tmp_path / "o.png")]
        )
        assert result.exit_code != 0, what
        error_line(result)
        assert not (tmp_path / "o.png").exists()
    with pytest.raises(FormatError, match="16000"):
        payload.check(container.parse(hostile["bomb"]))


def test_an_avif_whose_av1_stream_is_larger_than_its_ispe_is_refused(rng) -> None:
    """The AV1 decoder allocates for the sequence header's size, not for ispe's: both must agree."""
    small = inner.encode(smooth_image(rng, 8, 8, 3), 50, "avif")
    big = inner.encode(smooth_image(rng, 64, 64, 3), 50, "avif")
    forged = bytearray(big)
    at = forged.index(b"ispe") + 8
    forged[at : at + 8] = (8).to_bytes(4, "big") * 2  # ispe says 8x8, the AV1 stream is 64x64
    assert frames.read_avif(small).width == 8
    with pytest.raises(FormatError, match="64x64"):
        frames.read_avif(bytes(forged))


@pytest.fixture
def models_on_path(tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    folder = tiny_models["jpeg"].parent
    monkeypatch.setenv("CAEC_MODELS", os.pathsep.join([str(folder), os.environ.get("CAEC_MODELS", "")]))
    return tiny_models


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("family", ["comcnn-inner-foreign", "comcnn-inner-mutation", "comcnn-chunk-layout"])
def test_fuzz_families_of_each_inner_codec_end_in_one_line_errors(
    models_on_path: dict[str, Path], name: str, family: str
) -> None:
    codec = registry.load("comcnn", str(models_on_path[name]), "cpu")
    seeds = fuzz.make_comcnn_seeds(lambda img, q: contract.encode(codec, img, quality=q))
    assert all(fuzz.decode_outcome(s) == fuzz.OK for s in seeds)
    report = fuzz.run_family(family, seeds, 20, slow_s=2.0, rng_seed=2)
    assert not report.bugs and not report.slow, (report.bugs[:1], report.slow[:1])


def test_the_evaluation_takes_a_codec_with_a_model_of_its_own(models_on_path: dict[str, Path], rng) -> None:
    from cae_codec.evaluate.cli import parse_codecs
    from cae_codec.evaluate.runner import learned_id, make_codec, suffix_of

    name = "comcnn@tiny-comcnn-webp"
    assert parse_codecs(f"{name},webp") == [name, "webp"]
    assert learned_id(name) == "comcnn" and suffix_of(name) == ".cae"
    adapter = make_codec(name, "unused", "cpu")
    assert adapter.label == adapter.describe()["codec"] == "ComCNN+WebP+RecCNN (tiny-comcnn-webp)"
    assert adapter.describe()["model"] == "tiny-comcnn-webp"
    img = smooth_image(rng, 32, 48, 3)
    assert adapter.decode(adapter.encode(img, 50)).shape == img.shape
    for bad in ("jpeg@x", "comcnn@runs/x.safetensors", "nosuch@x"):
        with pytest.raises(Exception) as e:  # the CLI's one-line failure (typer.Exit)
            parse_codecs(bad)
        assert not isinstance(e.value, AssertionError)
    result = CliRunner().invoke(app, ["bdrate", "--codecs", "comcnn@runs/x.safetensors"])
    assert result.exit_code == 2 and "CODEC@MODEL takes a learned codec and a model name" in error_line(result)
    assert isinstance(load(models_on_path["avif"], "cpu"), ComCnnCodec)
