"""The ComCNN -> JPEG -> RecCNN codec (comcnn): training, the codec on every image shape, its
files (the compact image as a standard JPEG), hostile payloads, the CLI path.

A tiny pair (RecCNN of 3 layers x 4 channels) is trained here by `caec train comcnn` for a few
steps on a few of the shared training photos: seconds on one thread.
"""

from __future__ import annotations

from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from cae_codec import api, container, contract, registry
from cae_codec.cli import app
from cae_codec.comcnn import codec as codec_module
from cae_codec.comcnn import payload
from cae_codec.comcnn.network import ComCnnConfig, ComRecPair
from cae_codec.comcnn.train import TrainConfig, train_step
from cae_codec.container import ALPHA, v2
from cae_codec.errors import CaecError, FormatError
from cae_codec.modelfiles import read_model_info
from tests.conftest import error_line, smooth_image, torchrun_train
from tools import fuzz

TINY = ["--steps", "4", "--batch-size", "2", "--patch-size", "32", "--rec-layers", "3", "--rec-channels", "4"]
TINY += ["--max-images", "3", "--threads", "1", "--checkpoint-every", "2"]


def train_tiny(train_dir: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["train", "comcnn", str(train_dir), "-o", str(out), *TINY, *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def tiny(train_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("comcnn") / "tiny-comcnn.safetensors"
    train_tiny(train_dir, out, "--seed", "3")
    return out


@pytest.fixture(scope="module")
def codec(tiny: Path) -> codec_module.ComCnnCodec:
    from cae_codec import comcnn

    return comcnn.load(tiny, "cpu")


def encode(codec: codec_module.ComCnnCodec, img: np.ndarray, quality: int = 50) -> bytes:
    return codec.pack(codec.analyse(img), quality)


def test_training_is_seeded_and_a_resumed_run_ends_as_an_uninterrupted_one(
    train_dir: Path, tiny: Path, tmp_path: Path
) -> None:
    info = read_model_info(tiny)
    assert info.architecture == "comcnn"
    assert info.config == {"channels": 3, "rec_layers": 3, "rec_channels": 4, "inner": "jpeg"}
    again = tmp_path / "again.safetensors"
    train_tiny(train_dir, again, "--seed", "3")
    assert read_model_info(again).weights_hash == info.weights_hash


def test_a_resumed_run_ends_as_an_uninterrupted_one(train_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from cae_codec import trainkit
    from cae_codec.comcnn import train as training

    def config(out: Path) -> TrainConfig:
        return TrainConfig(
            train_dir,
            out,
            steps=4,
            batch_size=2,
            patch_size=32,
            rec_layers=3,
            rec_channels=4,
            seed=5,
            checkpoint_every=2,
            max_images=3,
            turn=1,
            log=lambda s: None,
        )

    whole = training.train(config(tmp_path / "whole.safetensors"))
    save = trainkit.save_checkpoint

    def save_then_stop(*args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        save(*args, **kwargs)
        raise KeyboardInterrupt  # the run dies right after its step-2 checkpoint

    monkeypatch.setattr(trainkit, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        training.train(config(tmp_path / "cut.safetensors"))
    monkeypatch.setattr(trainkit, "save_checkpoint", save)
    assert training.train(config(tmp_path / "cut.safetensors")) == whole


@pytest.mark.slow
def test_ddp_two_process_gloo_run(train_dir: Path, tmp_path: Path) -> None:
    """`caec train comcnn` under torchrun: two CPU processes (gloo), each its own crops, their
    gradients averaged every step; the first writes the weights."""
    from cae_codec import trainkit

    out = tmp_path / "ddp.safetensors"
    meta = torchrun_train(out, "comcnn", str(train_dir), *TINY, "--steps", "3")
    assert meta["samples"] == 3 * 2 * 2, "two processes of batch 2 for 3 steps"
    assert meta["device"].endswith("x2")
    assert not trainkit.checkpoint_path(out).exists()


def test_gradients_are_averaged_over_the_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """What two processes' all-reduce does, with the collective calls stood in for."""
    from cae_codec import trainkit

    net = ComRecPair(ComCnnConfig(3, 3, 4))
    for p in net.parameters():
        p.grad = torch.ones_like(p)
    net.com.body[0].weight.grad = None  # a frozen part has no gradient to send
    calls: list[str] = []

    def all_reduce(t: torch.Tensor) -> None:
        calls.append("reduce")
        t.mul_(2)  # the sum of two processes' equal gradients

    monkeypatch.setattr(trainkit.dist, "all_reduce", all_reduce)
    monkeypatch.setattr(trainkit.dist, "broadcast", lambda t, src: calls.append("broadcast"))
    trainkit.average_gradients(net, 1)
    assert not calls
    trainkit.average_gradients(net, 2)
    assert all(torch.equal(p.grad, torch.ones_like(p)) for p in net.parameters() if p.grad is not None)
    assert calls.count("reduce") == len(list(net.parameters())) - 1
    assert calls.count("broadcast") == len(list(net.buffers()))


def test_each_turn_trains_only_its_network() -> None:
    torch.manual_seed(0)
    net = ComRecPair(ComCnnConfig(3, 3, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.rand(2, 3, 32, 32)
    q = np.array([20, 60])
    train_step(net, opt, x, q, "both")  # the zero-initialised last layers move off zero
    for which, moves, stays in (("rec", net.rec, net.com), ("com", net.com, net.rec)):
        before_moves = [p.detach().clone() for p in moves.parameters()]
        before_stays = [p.detach().clone() for p in stays.parameters()]
        train_step(net, opt, x, q, which)
        assert any(not torch.equal(a, p) for a, p in zip(before_moves, moves.parameters(), strict=True)), which
        assert all(torch.equal(a, p) for a, p in zip(before_stays, stays.parameters(), strict=True)), which


def test_bad_training_options_are_one_line(train_dir: Path, tmp_path: Path) -> None:
    for bad in (["--quality-min", "50", "--quality-max", "10"], ["--patch-size", "31"], ["--turn", "-1"]):
        result = CliRunner().invoke(app, ["train", "comcnn", str(train_dir), "-o", str(tmp_path / "x"), *bad])
        assert result.exit_code != 0
        error_line(result)
    with pytest.raises(CaecError):
        TrainConfig(train_dir, tmp_path / "x", batch_size=0)


@pytest.mark.parametrize(("h", "w", "c"), [(1, 1, 3), (1, 1, 1), (2, 3, 2), (5, 7, 4), (33, 17, 3), (64, 48, 1)])
def test_every_shape_round_trips(codec: codec_module.ComCnnCodec, rng: np.random.Generator, h: int, w: int, c: int):
    img = smooth_image(rng, h, w, c)
    data = encode(codec, img)
    box = container.parse(data)
    assert (box.width, box.height, box.channels) == (w, h, c)
    frame = payload.read_frame(box.first(payload.JPEG) or b"")
    assert (frame.width, frame.height, frame.components) == ((w + 1) // 2, (h + 1) // 2, 1 if c < 3 else 3)
    out = codec.decode(box)
    assert out.shape == (h, w, c) and out.dtype == np.uint8
    if c in (2, 4):
        assert np.array_equal(out[:, :, -1], img[:, :, -1])  # alpha is lossless


def test_a_photo_decodes_close_and_the_rate_follows_the_quality(
    codec: codec_module.ComCnnCodec, kodak_dir: Path
) -> None:
    from cae_codec.imageio import read_image_rgb8

    img = read_image_rgb8(kodak_dir / "kodim23.png")[:160, :224]
    analysis = codec.analyse(img)
    sizes = [len(codec.pack(analysis, q)) for q in (5, 30, 90)]
    assert sizes[0] < sizes[1] < sizes[2]
    out = codec.decode(container.parse(codec.pack(analysis, 90)))
    mse = np.mean((out.astype(np.float64) - img) ** 2)
    assert 10 * np.log10(255**2 / mse) > 22  # half resolution caps it; a broken path gives far less


def test_bpp_is_reached_through_the_shared_rate_control(codec: codec_module.ComCnnCodec, rng: np.random.Generator):
    from cae_codec import contract

    img = smooth_image(rng, 96, 128, 3)
    data = contract.encode(codec, img, bpp=1.0)
    assert len(data) * 8 / (96 * 128) <= 1.0
    assert len(contract.encode(codec, img, bpp=2.0)) > len(data)


def test_tiles_give_what_one_pass_gives(codec: codec_module.ComCnnCodec, rng: np.random.Generator, monkeypatch):
    img = smooth_image(rng, 70, 90, 3)
    whole_compact = codec.compact_image(img)
    whole = codec.reconstruct(np.round(whole_compact * 255).astype(np.uint8))
    monkeypatch.setattr(codec_module, "TILE", 8)
    assert np.allclose(codec.compact_image(img), whole_compact, atol=1e-5)
    assert np.allclose(codec.reconstruct(np.round(whole_compact * 255).astype(np.uint8)), whole, atol=1e-5)


def test_cli_encodes_and_extracts_the_compact_image_as_a_plain_jpeg(tiny: Path, tmp_path: Path, rng) -> None:
    from PIL import Image

    src = tmp_path / "in.png"
    Image.fromarray(smooth_image(rng, 50, 61, 3)).save(src)
    cae, jpg, png = tmp_path / "a.cae", tmp_path / "compact.jpg", tmp_path / "a.png"
    runner = CliRunner()
    result = runner.invoke(app, ["encode", str(src), "-c", "comcnn", "-m", str(tiny), "-q", "40", "-o", str(cae)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["info", str(cae), "--json", "--extract-compact", str(jpg)])
    assert result.exit_code == 0, result.output
    assert '"compact_size": "31x25"' in result.output and "JPEG" in result.output
    assert imagecodecs.jpeg8_decode(jpg.read_bytes()).shape == (25, 31, 3)
    assert jpg.read_bytes() == container.parse(cae.read_bytes()).first(payload.JPEG)
    again = runner.invoke(app, ["info", str(cae), "--extract-compact", str(jpg)])
    assert again.exit_code != 0 and "exists" in error_line(again)
    result = runner.invoke(app, ["decode", str(cae), "-m", str(tiny), "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(png)).shape == (50, 61, 3)


def test_extracting_from_a_codec_without_a_standard_codestream_is_one_line(tmp_path: Path, rng) -> None:
    cae = tmp_path / "default.cae"
    cae.write_bytes(api.encode(smooth_image(rng, 32, 32, 3), device="cpu"))
    result = CliRunner().invoke(app, ["info", str(cae), "--extract-compact", str(tmp_path / "x.jpg")])
    assert result.exit_code != 0 and "no standard codestream" in error_line(result)
    assert not (tmp_path / "x.jpg").exists()


def with_jpeg(data: bytes, jpeg: bytes | None, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    old = v2.unpack(data)
    chunks = [(t, c) for t, c in old.chunks if t != payload.JPEG]
    if jpeg is not None:
        chunks.insert(0, (payload.JPEG, jpeg))
    return v2.pack(old.header, chunks + (extra or []))


def sof_bomb(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header is rewritten to declare width x height."""
    real = bytearray(imagecodecs.jpeg8_encode(np.zeros((8, 8, 3), np.uint8), level=50))
    at = real.index(b"\xff\xc0")
    real[at + 5 : at + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(real)


def hostile_files(good: bytes) -> dict[str, bytes]:
    jpeg = container.parse(good).first(payload.JPEG) or b""
    return {
        "wrong size": with_jpeg(good, imagecodecs.jpeg8_encode(np.zeros((10, 14, 3), np.uint8), level=50)),
        "grey for colour": with_jpeg(good, imagecodecs.jpeg8_encode(np.zeros((16, 16), np.uint8), level=50)),
        "bomb": with_jpeg(good, sof_bomb(60000, 60000)),
        "not a jpeg": with_jpeg(good, b"\x89PNG\r\n\x1a\n" + bytes(40)),
        "truncated jpeg": with_jpeg(good, jpeg[: len(jpeg) // 2]),
        "no jpeg": with_jpeg(good, None),
        "two jpegs": with_jpeg(good, jpeg, [(payload.JPEG, jpeg)]),
        "alpha in rgb": with_jpeg(good, jpeg, [(ALPHA, b"x")]),
        "unknown critical chunk": with_jpeg(good, jpeg, [(b"ZZZZ", b"x")]),
        "many scans": with_jpeg(good, jpeg[:-2] + (b"\xff\xda\x00\x02") * 70 + b"\xff\xd9"),
    }


def test_hostile_payloads_are_refused_on_one_line(tiny: Path, tmp_path: Path, rng) -> None:
    from cae_codec.comcnn import load

    codec = load(tiny, "cpu")
    good = encode(codec, smooth_image(rng, 32, 32, 3))
    for name, data in hostile_files(good).items():
        box = container.parse(data)
        with pytest.raises((FormatError, CaecError)):
            codec.decode(box)
        path = tmp_path / f"{name.replace(' ', '_')}.cae"
        path.write_bytes(data)
        result = CliRunner().invoke(app, ["decode", str(path), "-m", str(tiny), "-o", str(tmp_path / "out.png")])
        assert result.exit_code != 0, name
        error_line(result)
        assert not (tmp_path / "out.png").exists()


def test_the_frame_check_refuses_the_bomb_before_any_decoder_runs(tiny: Path, rng) -> None:
    from cae_codec.comcnn import load

    codec = load(tiny, "cpu")
    bomb = with_jpeg(encode(codec, smooth_image(rng, 32, 32, 3)), sof_bomb(60000, 60000))
    with pytest.raises(FormatError, match="60000x60000"):
        payload.check(container.parse(bomb))


@pytest.fixture
def comcnn_on_path(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny pair where a decoder finds weights by the hash a file names."""
    import os

    monkeypatch.setenv("CAEC_MODELS", os.pathsep.join([str(tiny.parent), os.environ.get("CAEC_MODELS", "")]))
    return tiny


@pytest.mark.parametrize("family", sorted(fuzz.COMCNN_FAMILIES))
def test_fuzz_families_of_comcnn_files_end_in_one_line_errors(comcnn_on_path: Path, family: str) -> None:
    codec = registry.load("comcnn", str(comcnn_on_path), "cpu")
    seeds = fuzz.make_comcnn_seeds(lambda img, q: contract.encode(codec, img, quality=q))
    assert all(fuzz.decode_outcome(s) == fuzz.OK for s in seeds)
    report = fuzz.run_family(family, seeds, 25, slow_s=2.0, rng_seed=1)
    assert not report.bugs and not report.slow, (report.bugs[:1], report.slow[:1])
    assert report.cases == 25


def test_fuzzing_names_the_comcnn_families_it_leaves_out(capsys) -> None:
    assert fuzz._comcnn_seeds("no-such-comcnn-model") == []
    assert "comcnn families left out" in capsys.readouterr().err


def test_the_folded_reccnn_computes_what_the_trained_one_does(codec: codec_module.ComCnnCodec) -> None:
    x = torch.rand(1, 3, 40, 36)
    with torch.inference_mode():
        assert torch.allclose(codec.rec(x), codec.net.rec(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in codec.rec.modules())


def test_the_ablation_tool_writes_its_tables(tiny: Path, tiny_enhancer: Path, tmp_path: Path, rng) -> None:
    from PIL import Image

    from tools import comcnn_ablation

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(rng, 168, 176, 3)).save(photos / f"{i}.png")
    page = tmp_path / "page.md"
    page.write_text(
        f"before\n{comcnn_ablation.START}\nold\n{comcnn_ablation.END}\n"
        f"{comcnn_ablation.ENHANCE_START}\nold\n{comcnn_ablation.ENHANCE_END}\nafter\n"
    )
    argv = ["--model", str(tiny), "--dataset", str(photos), "--qualities", "5", "40", "--threads", "1"]
    sheet = tmp_path / "sheet.png"
    crop = ["--crop-sheet", str(sheet), "--crop-image", "0.png", "--crop-bpp", "1.5", "--crop-box", "8", "16", "64"]
    gains = ["--enhance-qualities", "10", "50", "--enhance-model", str(tiny_enhancer)]
    assert comcnn_ablation.main([*argv, "--markdown", str(page), *crop, *gains]) == 0
    assert Image.open(sheet).size == (3 * 128 + 16, 128 + 18)
    text = page.read_text()
    assert "old" not in text and text.startswith("before") and text.endswith("after\n")
    rows = [ln for ln in text.splitlines() if ln.startswith("| 5 |") or ln.startswith("| 40 |")]
    assert len(rows) == 8 and "Decode, 1 threads: comcnn" in text and "sheet.png: a 64x64 crop" in text
    assert "`caec enhance` with tiny-enhance" in text and "| 50 |" in text
    bpp = {ln.split("|")[2].strip(): float(ln.split("|")[3]) for ln in rows if ln.startswith("| 40 |")}
    # equal quality: the compact image is a quarter of the pixels, so far fewer bytes than plain JPEG
    assert bpp["ComCNN + JPEG + RecCNN (the codec)"] < bpp["JPEG"]
    assert comcnn_ablation.main(["--dataset", str(tmp_path / "none")]) == 2


def test_the_evaluation_runs_comcnn_through_the_generic_adapter(comcnn_on_path: Path, rng) -> None:
    from cae_codec.evaluate.classic import largest_within
    from cae_codec.evaluate.learned import ContractCodec
    from cae_codec.ratecontrol import MemoEncoder

    adapter = ContractCodec(registry.load("comcnn", str(comcnn_on_path), "cpu"))
    described = adapter.describe()
    assert described["codec id"] == "comcnn"
    assert described["weights_hash"] == (read_model_info(comcnn_on_path).weights_hash or b"").hex()
    img = smooth_image(rng, 48, 64, 3)
    found = largest_within(adapter, MemoEncoder(adapter.prepare(img)), 600)
    assert found is not None and len(found[0]) <= 600 and found[1].shape == img.shape


@pytest.fixture(scope="module")
def tiny_enhancer(train_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("enhance") / "tiny-enhance.safetensors"
    train_tiny(train_dir, out, "--seed", "4", "--enhance", "--lr", "3e-4")
    return out


def test_enhance_cleans_a_jpeg_file_of_any_layout(tiny_enhancer: Path, tmp_path: Path, rng, monkeypatch) -> None:
    from PIL import Image

    from cae_codec.comcnn import enhance

    assert read_model_info(tiny_enhancer).architecture == "comcnn-enhance"
    runner = CliRunner()
    for i, shape in enumerate([(37, 50, 3), (20, 9, 1), (1, 1, 3)]):
        img = smooth_image(rng, *shape)
        src = tmp_path / f"in{i}.jpg"
        src.write_bytes(imagecodecs.jpeg8_encode(img[:, :, 0] if shape[2] == 1 else img, level=20))
        out = tmp_path / f"out{i}.png"
        result = runner.invoke(app, ["enhance", str(src), "-o", str(out), "-m", str(tiny_enhancer)])
        assert result.exit_code == 0, result.output
        assert np.asarray(Image.open(out)).shape[:2] == shape[:2]
    # tiles give what one pass gives
    enhancer = enhance.Enhancer(str(tiny_enhancer))
    rgb = smooth_image(rng, 40, 52, 3)
    whole = enhancer.run(rgb)
    monkeypatch.setattr(enhance, "TILE", 16)
    assert np.allclose(enhancer.run(rgb), whole, atol=1e-5)


def test_enhance_refuses_what_it_cannot_take_on_one_line(tiny_enhancer: Path, tiny: Path, tmp_path: Path, rng) -> None:
    from PIL import Image

    png = tmp_path / "a.png"
    Image.fromarray(smooth_image(rng, 16, 16, 3)).save(png)
    twelve = tmp_path / "b.jpg"
    twelve.write_bytes(imagecodecs.jpeg8_encode(np.zeros((16, 16), np.uint16), level=50, bitspersample=12))
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(fuzz.jpeg_of_frame(65000, 65000, 3))
    good = tmp_path / "c.jpg"
    good.write_bytes(imagecodecs.jpeg8_encode(smooth_image(rng, 16, 16, 3), level=50))
    (tmp_path / "exists.png").write_bytes(b"x")
    cases = {
        "not a JPEG": [str(png), "-o", str(tmp_path / "o1.png")],
        "12-bit": [str(twelve), "-o", str(tmp_path / "o2.png")],
        "limit": [str(bomb), "-o", str(tmp_path / "o3.png")],
        "a comcnn model": [str(good), "-o", str(tmp_path / "o4.png"), "-m", str(tiny)],
        "exists": [str(good), "-o", str(tmp_path / "exists.png")],
        "format": [str(good), "-o", str(tmp_path / "o5.xyz")],
    }
    for what, args in cases.items():
        result = CliRunner().invoke(app, ["enhance", *args, *([] if "-m" in args else ["-m", str(tiny_enhancer)])])
        assert result.exit_code != 0, what
        error_line(result)
    assert not list(tmp_path.glob("o*.png")) and (tmp_path / "exists.png").read_bytes() == b"x"
