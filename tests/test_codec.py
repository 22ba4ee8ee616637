"""Round trips through the real model on odd sizes and every channel layout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cae_codec import api, container, zoo
from cae_codec.cae import payload
from cae_codec.cae.codec import Analysis, CaePcaJ2kCodec, FamilyCodec, member_of
from cae_codec.container import LATENT
from cae_codec.container.v2 import PARAMS
from cae_codec.errors import CaecError, ModelError
from cae_codec.registry import DEFAULT_CODEC
from cae_codec.stages import j2k, quant
from tests.conftest import as_v1, default_weights, rewrite_v2, smooth_image

CASES = [(s, c) for s in [(1, 1), (7, 5), (65, 257), (128, 128)] for c in (1, 2, 3, 4)]
CASES += [((333, 500), 3), ((333, 500), 4)]


@pytest.mark.parametrize("shape, channels", CASES)
def test_round_trip_shapes_and_layouts(codec, rng, shape: tuple[int, int], channels: int) -> None:
    img = smooth_image(rng, *shape, channels)
    data = codec.encode(img)
    out = codec.decode(container.parse(data))
    assert out.shape == img.shape and out.dtype == np.uint8
    if channels in (2, 4):
        assert np.array_equal(out[:, :, -1], img[:, :, -1]), "alpha must be lossless"
    box = container.parse(data)
    assert (box.width, box.height, box.channels) == (shape[1], shape[0], channels)


def test_grey_stays_grey_and_is_close(codec, rng) -> None:
    img = smooth_image(rng, 200, 300, 1)
    out = codec.decode(container.parse(codec.encode(img, quality=quant.QUALITY_MAX)))
    assert out.shape == (200, 300, 1)
    assert np.abs(out.astype(int) - img).mean() < 12


def test_higher_quality_costs_more_and_is_closer(codec, rng) -> None:
    img = smooth_image(rng, 256, 256, 3)
    sizes, errors = [], []
    for q in (quant.QUALITY_MIN, quant.QUALITY_DEFAULT, quant.QUALITY_MAX):
        data = codec.encode(img, quality=q)
        out = codec.decode(container.parse(data))
        sizes.append(len(data))
        errors.append(float(np.mean((out.astype(float) - img) ** 2)))
    assert sizes[0] < sizes[1] < sizes[2]
    assert errors[0] > errors[2]


@pytest.mark.parametrize("target", [0.1, 0.4, 1.0])
def test_bpp_target_is_never_exceeded(codec, rng, target: float) -> None:
    img = smooth_image(rng, 200, 260, 3)
    data = codec.encode(img, bpp=target)
    bpp = 8 * len(data) / (200 * 260)
    assert bpp <= target
    # and it is not wastefully small: a finer step must overshoot (binary search converged)
    assert payload.params(container.parse(data)).step <= quant.STEP_MAX


def test_unreachable_bpp_is_one_clear_error(codec, rng) -> None:
    img = smooth_image(rng, 16, 16, 3)
    with pytest.raises(CaecError, match="cannot reach"):
        codec.encode(img, bpp=0.01)


def test_library_api_round_trip(rng) -> None:
    img = smooth_image(rng, 40, 70, 3)
    data = api.encode(img, quality=6, device="cpu")
    out = api.decode(data, device="cpu")
    assert out.shape == img.shape
    fields = api.info(data)
    assert fields["width"] == 70 and fields["quality"] == 6 and fields["file_bytes"] == len(data)
    assert api.decode(api.encode(img[:, :, 0]), device="cpu").shape == (40, 70, 1)


@pytest.mark.parametrize("case", ["v1", "v2", "v2-shipped"])
def test_wrong_weights_hash_refused(request: pytest.FixtureRequest, rng, case: str) -> None:
    # a shipped model's version-2 file names its weights by their zoo number as well as by
    # their hash: the number still names the right weights, and the hash alone must refuse
    # them; other weights a version-2 file names by their hash alone, so the caller names them
    codec = request.getfixturevalue("shipped_codec" if case == "v2-shipped" else "codec")
    data = codec.encode(smooth_image(rng, 20, 20, 3))
    member = member_of(codec, container.parse(data))
    if case == "v1":
        box = container.unpack(as_v1(data))
        forged = container.pack(dataclasses.replace(box.header, weights_hash=bytes(16)), box.chunks.items())
    else:
        forged = rewrite_v2(data, weights_hash=bytes(8))
    named = {"model": member.name} if case == "v2" else {}
    mismatch = r"weights 000000000000\)?, but the loaded weights '[^']+' are [0-9a-f]{12}"
    with pytest.raises(ModelError, match=mismatch):
        member.decode(container.parse(forged))  # the decoder's own check
    with pytest.raises(ModelError, match=mismatch):
        api.decode(forged, device="cpu", **named)  # the check before the network is loaded
    with pytest.raises(ModelError, match="weights"):
        codec.decode(container.parse(forged))


def test_decoding_is_deterministic(codec, rng) -> None:
    data = codec.encode(smooth_image(rng, 130, 140, 3))
    a = codec.decode(container.parse(data))
    b = codec.decode(container.parse(data))
    assert np.array_equal(a, b)


MOSAIC_CASES = [(48, 150, 1), (32, 150, 2), (8, 150, 8), (8, 3, 3), (96, 40, 1)]


@pytest.mark.parametrize("plane_w, components, expected", MOSAIC_CASES)
def test_mosaic_columns_fill_one_code_block_width(plane_w: int, components: int, expected: int) -> None:
    assert j2k.mosaic_columns(components, 32, plane_w) == expected
    assert j2k.mosaic_columns(0, 32, plane_w) == 0


def test_the_mosaic_layout_is_the_encoders_choice_and_decodes_the_same(codec, rng, monkeypatch) -> None:
    # one tile wide: planes 128 / stride latent samples wide (8 for the shipped model, 32 for
    # the tests'), no wider than a code block: the rule puts several side by side
    img = smooth_image(rng, 300, 120, 3)
    data = codec.encode(img, quality=8)
    monkeypatch.setattr(j2k, "mosaic_columns", lambda k, h, w: 1 if k else 0)
    one_column = codec.encode(img, quality=8)
    p, p1 = payload.params(container.parse(data)), payload.params(container.parse(one_column))
    assert p.mosaic_cols > 1 and p1.mosaic_cols == 1 and p.components == p1.components
    assert np.array_equal(codec.decode(container.parse(data)), codec.decode(container.parse(one_column)))


def test_mosaic_layout_is_the_formats_and_from_mosaic_inverts_it() -> None:
    planes = np.arange(1, 5 * 2 * 3 + 1, dtype=np.int16).reshape(5, 2, 3)
    mosaic = j2k.to_mosaic(planes, 2)
    assert mosaic.shape == (6, 6)  # ceil(5 / 2) rows of 2-row planes, 2 columns of 3-column planes
    for k in range(5):  # docs/format.md: component k at grid cell (k // C, k % C)
        r, c = divmod(k, 2)
        assert np.array_equal(mosaic[2 * r : 2 * r + 2, 3 * c : 3 * c + 3], planes[k])
    assert not mosaic[4:, 3:].any()  # the empty cell
    assert np.array_equal(j2k.from_mosaic(mosaic, 5, 2, 3), planes)


def test_pack_writes_the_quantized_components_as_to_mosaic_lays_them_out(codec, rng) -> None:
    from dataclasses import replace

    from cae_codec.cae.codec import FamilyCodec

    plain = codec.at(1.0)[0] if isinstance(codec, FamilyCodec) else codec
    a = plain.analyse(smooth_image(rng, 140, 300, 3))
    z = a.z.copy()
    z[5] = 0.0  # an all-zero component inside the stored range
    z[9] = 0.54  # quantizes to 0 in a plane with (0.5 + dead zone) x step as its threshold...
    z[9, 0, 0] = 0.61  # ...except one value just past it: the component must still be stored
    z[10:] = 0.59
    box = container.parse(plain.pack(replace(a, z=z), 1.0))
    p = payload.params(box)
    q = np.stack([quant.quantize(plane, 1.0, plain.deadzone) for plane in z])
    assert p.components == 10
    expected = j2k.to_mosaic(q[:10], p.mosaic_cols)
    latent = box.first(LATENT)
    assert latent is not None and box.all(LATENT) == [latent]
    assert np.array_equal(j2k.decode_plane(latent, expected.shape, np.dtype(np.int16)), expected)
    assert np.array_equal(payload.read_components(box, p, *q.shape[1:]), q[:10])


def test_encode_rejects_non_uint8() -> None:
    with pytest.raises(CaecError, match="uint8"):
        api.encode(np.zeros((4, 4, 3), dtype=np.float32))


@pytest.mark.parametrize("version", [1, 2])
def test_model_name_from_a_file_is_never_taken_as_a_path(codec, rng, tmp_path, monkeypatch, version: int) -> None:
    # version 1 writes the name in the file; version 2 a number the catalogue names
    data = codec.encode(smooth_image(rng, 20, 30, 3))
    if version == 1:
        data = as_v1(data)
    name = api.info(data)["model"]
    assert container.parse(data).model == (name if version == 1 else None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(b"not weights")  # a file named like the model in the cwd
    assert api.decode(data, device="cpu").shape == (20, 30, 3)


@pytest.mark.parametrize(
    "bad, field", [({"hidden": 1_000_000}, "hidden"), ({"density": "gaussian-mixture"}, "density")]
)
def test_weights_with_an_absurd_config_are_refused_before_building(tmp_path, bad: dict, field: str) -> None:
    import json

    import torch
    from safetensors.torch import save_file

    from cae_codec.weights import load_model

    path = tmp_path / "huge.safetensors"
    config = {"in_channels": 3, "hidden": 64, "latent": 96, "stages": 4, "kernel": 5} | bad
    save_file(
        {"pca.mean": torch.zeros(1)}, str(path), metadata={"architecture": "cae-gdn", "config": json.dumps(config)}
    )
    with pytest.raises(ModelError, match=field):
        load_model(path)


def test_weights_without_a_pca_load_but_the_cae_codec_refuses_them(tmp_path) -> None:
    """One weights loader serves every codec, and only the CAE's weights carry a PCA."""
    import json

    from safetensors.torch import save_file

    from cae_codec.cae.network import CAE, CAEConfig
    from cae_codec.weights import load_model

    net = CAE(CAEConfig(hidden=4, latent=3, stages=2))
    path = tmp_path / "no-pca.safetensors"
    tensors = {f"net.{k}": v.contiguous() for k, v in net.state_dict().items()}
    save_file(tensors, str(path), metadata={"architecture": "cae-gdn", "config": json.dumps(net.config_dict())})
    assert load_model(path).tensors == {}
    with pytest.raises(ModelError, match=r"'no-pca' hold no pca\.mean") as err:
        api.get_codec(path, "cpu")
    assert "\n" not in str(err.value)


def test_package_level_api(rng) -> None:
    import cae_codec

    img = smooth_image(rng, 33, 47, 3)
    data = cae_codec.encode(img, device="cpu")
    assert cae_codec.info(data)["width"] == 47
    assert cae_codec.decode(data, device="cpu").shape == (33, 47, 3)


def test_a_codec_on_another_device_leaves_the_shared_model_where_it_was() -> None:
    from cae_codec.cae.codec import CaePcaJ2kCodec

    codec = api.get_codec(default_weights(), "cpu")
    assert isinstance(codec, CaePcaJ2kCodec)

    # "meta" stands in for a GPU here: any device other than the CPU must not move the
    # cached, shared network (a CPU codec made next would otherwise use the GPU's weights)
    other = CaePcaJ2kCodec(codec.model, torch.device("meta"))
    assert next(other.net.parameters()).device.type == "meta"
    assert next(codec.model.network.parameters()).device.type == "cpu"
    assert next(codec.net.parameters()).device.type == "cpu"


@pytest.mark.parametrize("name", sorted(m.name for m in zoo.catalogue().models.values() if m.codec == DEFAULT_CODEC))
def test_every_shipped_model_round_trips_and_is_found_from_the_file(rng, name: str) -> None:
    # the shipped models of this codec (another codec's take other images); a file names
    # its model, and decode picks that model unless told otherwise
    img = smooth_image(rng, 48, 80, 3)
    data = api.encode(img, quality=5, model=name, device="cpu")
    assert api.info(data)["model"] == name
    out = api.decode(data, device="cpu")
    assert out.shape == img.shape and np.abs(out.astype(int) - img).mean() < 12


def test_torch_quantize_dequantize_makes_the_codecs_decisions() -> None:
    # the decoder-only fine-tune trains on these values: they must be what the codec really sends
    gen = np.random.default_rng(7)
    z = (gen.laplace(size=(3, 4, 16, 16)) * 3).astype(np.float32)
    steps = np.array([0.25, 0.7071, 1.0, 5.657], dtype=np.float32)[None, :, None, None]
    z[0, :, 0, :4] = np.array([0.4, 0.6, 1.4, -1.6], dtype=np.float32) * steps[0, :, 0, :1]  # near thresholds
    got = quant.quantize_dequantize(torch.from_numpy(z), torch.from_numpy(steps), quant.DEADZONE).numpy()
    for j in range(4):
        step = float(steps[0, j, 0, 0])
        want = quant.dequantize(quant.quantize(z[:, j], step, quant.DEADZONE), step)
        np.testing.assert_array_equal(got[:, j], want)


@pytest.mark.parametrize("channels", [1, 3])
def test_a_file_without_latent_decodes_each_batch_size_once(codec, monkeypatch, channels: int) -> None:
    """K = 0 (issue 19, item 5): every tile's decoder input is the PCA mean, so the decoder
    runs once per batch size, and the pixels are those of a file whose one stored component
    is all zeros, which still goes through the decoder tile batch by tile batch."""
    member = codec.at(quant.step_for_quality(quant.QUALITY_DEFAULT))[0] if isinstance(codec, FamilyCodec) else codec
    small_batches = CaePcaJ2kCodec(member.model, torch.device("cpu"), batch_tiles=4)
    s, m = member.model.stride, member.model.latent_channels
    # 300 x 290 pads to 3 x 3 tiles: batches of 4, 4 and 1
    empty = Analysis(
        z=np.zeros((m, 384 // s, 384 // s), np.float32),
        height=300,
        width=290,
        channels=channels,
        padded=(384, 384),
        alpha_chunk=None,
    )
    empty_file = small_batches.pack(empty, 0.5)
    no_latent = container.parse(empty_file)
    assert payload.params(no_latent).components == 0 and [t for t, _ in no_latent.chunks] == [PARAMS]
    zero_plane = j2k.encode_plane(np.zeros((384 // s, 384 // s), np.int16), j2k.LATENT_LEVELS)
    one_zero_component = container.parse(
        rewrite_v2(empty_file, [(LATENT, zero_plane)], params={"components": 1, "mosaic_cols": 1})
    )

    calls: list[int] = []
    network_decode = small_batches.net.decode

    def counted(y: torch.Tensor, step: float) -> torch.Tensor:
        calls.append(y.shape[0])
        return network_decode(y, step)

    monkeypatch.setattr(small_batches.net, "decode", counted)
    done: list[int] = []
    fast = small_batches.decode(no_latent, progress=done.append)
    assert calls == [4, 1] and done == [4, 4, 1]
    calls.clear()
    reference = small_batches.decode(one_zero_component)
    assert calls == [4, 4, 1]
    assert fast.shape == (300, 290, channels)
    assert np.array_equal(fast, reference)
    # the same tile everywhere: a K = 0 image repeats with the tile's period
    assert np.array_equal(fast[:128, :128], fast[128:256, 128:256])
