"""The progressive recurrent codec (rnn): training, the codec at any size and channel layout,
its prefixes (decode, --bpp, truncate), hostile files, and the entropy coder's determinism.

A tiny network (4 passes of 8 bits a 16x16 block, widths of a few channels) is trained here on
smooth images in a few seconds by `caec train rnn`; nothing loads the shipped model.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_codec import api, container, progressive
from cae_codec.cli import app
from cae_codec.container import v2
from cae_codec.contract import encode
from cae_codec.errors import CaecError, FormatError
from cae_codec.rnn import entropy, load, payload
from tests.conftest import REPO, error_line, smooth_image

TINY = ["--encoder", "4,8,8,8", "--decoder", "8,8,8,8,8", "--bits", "8", "--passes", "4"]
TINY += ["--steps", "50", "--batch-size", "8", "--lr", "0.01", "--threads", "1", "--device", "cpu"]
TINY += ["--entropy-crops", "64", "--checkpoint-every", "1000"]


@pytest.fixture(scope="session")
def tiny_rnn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny rnn model trained by `caec train rnn` on three smooth images."""
    folder = tmp_path_factory.mktemp("rnn")
    photos = folder / "photos"
    photos.mkdir()
    gen = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(smooth_image(gen, 96, 96, 3)).save(photos / f"{i}.png")
    out = folder / "tiny-rnn.safetensors"
    result = CliRunner().invoke(app, ["train", "rnn", str(photos), "-o", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def rnn(tiny_rnn: Path):  # type: ignore[no-untyped-def]
    return load(tiny_rnn, "cpu")


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    return smooth_image(np.random.default_rng(5), 40, 52, 3)


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).mean())


def test_the_trained_network_beats_a_flat_image_and_passes_add_bytes(rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    a = rnn.analyse(photo)
    sizes = [len(rnn.pack(a, k)) for k in range(1, 5)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 4
    flat = mean_error(photo, np.full_like(photo, 128))
    errors = [mean_error(photo, img) for img in rnn.decode_passes(container.parse(rnn.pack(a, 4)))]
    # a few seconds of training: each pass a correction, the last well below a flat image's error
    assert len(errors) == 4 and errors[-1] < errors[0] and errors[-1] < 0.85 * flat, (errors, flat)


@pytest.mark.parametrize("shape", [(37, 50, 3), (20, 17, 1), (33, 40, 4), (16, 16, 2), (1, 1, 3), (5, 70, 1)])
def test_any_size_and_channel_layout_round_trips(rnn, tiny_rnn: Path, shape: tuple[int, int, int]) -> None:  # type: ignore[no-untyped-def]
    img = smooth_image(np.random.default_rng(1), shape[0], shape[1], shape[2])
    data = encode(rnn, img, quality=3)
    box = container.parse(data)
    assert box.progressive and len(box.all(payload.PASS)) == 3
    out = api.decode(data, model=str(tiny_rnn), device="cpu")
    assert out.shape == img.shape and out.dtype == np.uint8
    if shape[2] in (2, 4):
        assert np.array_equal(out[..., -1], img[..., -1])  # alpha is lossless
    if shape[2] == 1:
        assert mean_error(out, img) < mean_error(np.full_like(img, 128), img)


def test_a_prefix_is_the_file_of_fewer_passes_and_decodes_as_one_decode_sees_it(rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    a = rnn.analyse(photo)
    full = rnn.pack(a, 4)
    steps = list(rnn.decode_passes(container.parse(full)))
    for k in range(1, 5):
        cut, kept = progressive.cut(full, keep=k)
        assert kept == k and cut == rnn.pack(a, k)  # truncating is encoding at fewer passes
        assert np.array_equal(rnn.decode(container.parse(cut)), steps[k - 1])
    assert progressive.cut(full, keep=9)[1] == 4
    # --bpp: the most passes whose file fits
    for k in range(1, 4):
        budget_bpp = 8 * (len(rnn.pack(a, k + 1)) - 1) / photo.shape[0] / photo.shape[1]
        assert encode(rnn, photo, bpp=budget_bpp) == rnn.pack(a, k)
        assert progressive.cut(full, bpp=budget_bpp) == (rnn.pack(a, k), k)
    with pytest.raises(CaecError, match="cannot reach"):
        progressive.cut(full, bpp=0.001)


def test_raw_and_range_coded_files_hold_the_same_bits(tiny_rnn: Path, rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    from cae_codec.rnn.codec import RnnCodec
    from cae_codec.weights import load_model

    raw = RnnCodec(load_model(tiny_rnn), rnn.device, entropy=False)
    coded, plain = encode(rnn, photo, quality=4), encode(raw, photo, quality=4)
    assert payload.params(container.parse(plain)).coding == payload.RAW
    assert payload.params(container.parse(coded)).coding == payload.RANGE
    assert np.array_equal(rnn.decode(container.parse(coded)), rnn.decode(container.parse(plain)))


def test_the_entropy_coder_round_trips_and_reads_any_bytes_as_bits_of_the_right_shape() -> None:
    gen = np.random.default_rng(3)
    c, h, w = 6, 5, 7
    table = gen.integers(entropy.Q_MIN, entropy.ONE - entropy.Q_MIN, (entropy.BUCKETS, c, entropy.CONTEXTS))
    model = entropy.EntropyModel(table.astype(np.int32))
    passes = [np.where(gen.random((c, h, w)) < 0.3, 1, -1).astype(np.int8) for _ in range(4)]
    for t, bits in enumerate(passes):
        prev1 = passes[t - 1] if t else None
        prev2 = passes[t - 2] if t > 1 else None
        data = model.encode(bits, prev1, prev2, t)
        assert np.array_equal(model.decode(data, (c, h, w), prev1, prev2, t), bits)
        for junk in (b"", bytes(4), gen.bytes(8)):
            out = model.decode(junk, (c, h, w), prev1, prev2, t)
            assert out.shape == (c, h, w) and set(np.unique(out)) <= {-1, 1}
    # the table fitted on bits gives them fewer bytes than they take raw
    fitted = entropy.EntropyModel(entropy.fit(np.stack(passes)[None]))
    assert len(fitted.encode(passes[2], passes[1], passes[0], 2)) < c * h * w / 8


def test_contexts_only_read_bits_coded_before() -> None:
    """Changing a bit changes no context of a bit coded before it (the decoder's view)."""
    gen = np.random.default_rng(4)
    shape = (3, 4, 5)
    cur = np.where(gen.random(shape) < 0.5, 1, -1).astype(np.int8)
    prev = np.where(gen.random(shape) < 0.5, 1, -1).astype(np.int8)
    order = entropy.coding_order(shape)
    base = entropy.contexts(cur, prev, None).reshape(-1)[order]
    for i in range(len(order)):
        flipped = cur.copy().reshape(-1)
        flipped[order[i]] *= -1
        ctx = entropy.contexts(flipped.reshape(shape), prev, None).reshape(-1)[order]
        assert np.array_equal(ctx[: i + 1], base[: i + 1])


DECODE_IN_THREADS = """
import sys, hashlib, torch
torch.set_num_threads(int(sys.argv[1]))
from cae_codec import api
data = open(sys.argv[2], "rb").read()
print(hashlib.sha256(api.decode(data, model=sys.argv[3], device="cpu").tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_a_file_decodes_to_the_same_integers_on_any_thread_count(tiny_rnn: Path, rnn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img = smooth_image(np.random.default_rng(9), 64, 96, 3)
    path = tmp_path / "a.cae"
    path.write_bytes(encode(rnn, img, quality=4))
    digests = {
        subprocess.run(
            [sys.executable, "-c", DECODE_IN_THREADS, str(n), str(path), str(tiny_rnn)],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
        for n in (1, 2, 3)
    }
    assert len(digests) == 1


def test_a_file_cut_anywhere_decodes_to_its_whole_passes_or_fails_in_one_line(rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    full = encode(rnn, photo, quality=4)
    steps = list(rnn.decode_passes(container.parse(full)))
    outcomes = set()
    for end in range(len(full)):
        try:
            box = container.parse(full[:end])
            whole = len(box.all(payload.PASS))
            out = rnn.decode(box)
        except (FormatError, CaecError) as e:
            assert "\n" not in str(e)
            outcomes.add("error")
            continue
        assert out.shape == photo.shape and np.array_equal(out, steps[whole - 1])
        outcomes.add(whole)
    assert outcomes == {"error", 1, 2, 3}  # the whole file has 4


def fix_crcs(data: bytes) -> bytes:
    """``data`` with every chunk's CRC recomputed (a forged file that passes the framing)."""
    box = v2.unpack(data)
    return v2.pack(box.header, box.chunks)


def test_flipped_bits_fail_in_one_line_or_decode_to_an_image_of_the_right_size(rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    full = encode(rnn, photo, quality=3)
    steps = [img.tobytes() for img in rnn.decode_passes(container.parse(full))]
    gen = np.random.default_rng(6)
    forged_ok = 0
    for pos in range(len(full)):
        bad = bytearray(full)
        bad[pos] ^= 1 << int(gen.integers(8))
        try:
            out = rnn.decode(container.parse(bytes(bad)))
        except (FormatError, CaecError) as e:  # the CRCs catch a flipped bit in a chunk or the header
            assert "\n" not in str(e)
            continue
        # a chunk length grown past the end reads as a file cut short: its whole passes decode
        assert out.tobytes() in steps[:-1], pos
    box = v2.unpack(full)
    for i, (ctype, chunk) in enumerate(box.chunks):
        if ctype != payload.PASS:
            continue
        for _ in range(10):
            body = bytearray(chunk)
            body[int(gen.integers(len(body)))] ^= 1 << int(gen.integers(8))
            chunks = list(box.chunks)
            chunks[i] = (ctype, bytes(body))
            try:
                out = rnn.decode(container.parse(v2.pack(box.header, chunks)))
            except (FormatError, CaecError) as e:
                assert "\n" not in str(e)
                continue
            assert out.shape == photo.shape
            forged_ok += 1
    assert forged_ok  # range-coded passes decode to some bits: a wrong but well-formed image


def test_malformed_payloads_are_refused_before_the_model_loads(rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    full = encode(rnn, photo, quality=2)
    box = v2.unpack(full)
    parm = box.chunks[0][1]
    cases = {
        "unknown coding": [(v2.PARAMS, bytes([7]) + parm[1:]), *box.chunks[1:]],
        "reserved byte": [(v2.PARAMS, parm[:3] + b"\x01"), *box.chunks[1:]],
        "no pass": box.chunks[:1],
        "words": [*box.chunks[:-1], (payload.PASS, box.chunks[-1][1] + b"\x00")],
        "ALPH chunks": [*box.chunks, (b"ALPH", b"")],
    }
    for why, chunks in cases.items():
        with pytest.raises(FormatError) as e:
            payload.params(container.parse(v2.pack(box.header, chunks)))
        assert "\n" not in str(e.value), why
    with pytest.raises(FormatError, match="flags"):
        payload.params(container.parse(v2.pack(v2.HeaderV2(**{**box.header.__dict__, "flags": 0}), box.chunks)))


def test_the_cli_encodes_to_a_rate_decodes_a_prefix_truncates_and_warns_on_a_cut_file(
    tiny_rnn: Path, tmp_path: Path
) -> None:
    img = smooth_image(np.random.default_rng(2), 48, 64, 3)
    Image.fromarray(img).save(tmp_path / "in.png")
    runner = CliRunner()
    src, cae, model = str(tmp_path / "in.png"), str(tmp_path / "a.cae"), str(tiny_rnn)
    r = runner.invoke(app, ["encode", src, "--codec", "rnn", "-m", model, "--quality", "4", "-o", cae])
    assert r.exit_code == 0, r.output
    data = Path(cae).read_bytes()
    assert progressive.passes(data) == (4, 4)
    r = runner.invoke(app, ["truncate", cae, "--passes", "2", "-o", str(tmp_path / "b.cae")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "b.cae").read_bytes() == progressive.cut(data, keep=2)[0]
    r = runner.invoke(app, ["decode", cae, "--passes", "2", "-m", model, "-o", str(tmp_path / "p2.png")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["decode", str(tmp_path / "b.cae"), "-m", model, "-o", str(tmp_path / "b.png")])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "p2.png")), np.asarray(Image.open(tmp_path / "b.png")))
    cut_at = len(progressive.cut(data, keep=3)[0]) + 5  # inside the 4th pass
    (tmp_path / "cut.cae").write_bytes(data[:cut_at])
    r = runner.invoke(app, ["decode", str(tmp_path / "cut.cae"), "-m", model, "-o", str(tmp_path / "cut.png")])
    assert r.exit_code == 0, r.output
    assert "cut short" in r.stderr and "3 " in r.stderr and "of 4" in r.stderr
    (tmp_path / "head.cae").write_bytes(data[:30])
    r = runner.invoke(app, ["decode", str(tmp_path / "head.cae"), "-m", model, "-o", str(tmp_path / "head.png")])
    assert r.exit_code != 0 and "caec: error:" in error_line(r)
    assert not (tmp_path / "head.png").exists()
    r = runner.invoke(app, ["truncate", src, "--passes", "1", "-o", str(tmp_path / "x.cae")])
    assert r.exit_code != 0 and "not a .cae file" in error_line(r)
    r = runner.invoke(app, ["truncate", cae, "--bpp", "0.0001", "-o", str(tmp_path / "y.cae")])
    assert r.exit_code != 0 and "cannot reach" in error_line(r)
    assert not (tmp_path / "y.cae").exists()


def test_a_file_that_is_not_progressive_cannot_be_truncated(tmp_path: Path, codec) -> None:  # type: ignore[no-untyped-def]
    data = api.encode(smooth_image(np.random.default_rng(0), 32, 32, 3), quality=3)
    with pytest.raises(CaecError, match="not progressive"):
        progressive.cut(data, keep=1)


def test_the_evaluation_reads_every_rate_from_one_decode_of_the_whole_file(rnn, photo: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    from cae_codec.evaluate import runner
    from cae_codec.evaluate.learned import ContractCodec
    from cae_codec.evaluate.metrics import psnr_rgb

    evaluated = ContractCodec(rnn)
    runner._codecs[("rnn", "tiny", "cpu", 0)] = evaluated
    try:
        sizes = [len(rnn.pack(rnn.analyse(photo), k)) for k in (1, 2, 3, 4)]
        targets = tuple(8 * (n + 1) / photo.shape[0] / photo.shape[1] for n in sizes)
        points = runner.evaluate(runner.Task("photo", photo, "rnn", targets, "tiny", "cpu"))
    finally:
        runner._codecs.pop(("rnn", "tiny", "cpu", 0))
    assert [p.knob for p in points] == [1, 2, 3, 4] and [p.nbytes for p in points] == sizes
    for p in points:  # the same as decoding the file of that many passes on its own
        alone = evaluated.decode(rnn.pack(rnn.analyse(photo), p.knob))
        assert p.psnr == psnr_rgb(photo, alone)
    assert points[0].decoding_time < points[-1].decoding_time


def test_the_shipped_model_is_the_codecs_default_and_codes_a_photo() -> None:
    from cae_codec import registry, zoo

    assert registry.get("rnn").default_model == zoo.default_model("rnn") == "rnn-gru-w8-ft64"
    img = smooth_image(np.random.default_rng(8), 64, 80, 3)
    data = api.encode(img, codec="rnn", quality=8)
    box = container.parse(data)
    assert box.model_number == zoo.catalogue().models["rnn-gru-w8-ft64"].number
    assert payload.params(box).coding == payload.RANGE and len(box.all(payload.PASS)) == 8
    out = api.decode(data)
    assert out.shape == img.shape and mean_error(out, img) < 0.5 * mean_error(np.full_like(img, 128), img)


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from cae_codec.rnn import train as rnn_train
    from cae_codec.rnn.network import RnnConfig

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(smooth_image(np.random.default_rng(0), 64, 64, 3)).save(photos / "a.png")

    def config(out: Path) -> rnn_train.TrainConfig:
        net = RnnConfig(encoder=(4, 8, 8, 8), decoder=(8, 8, 8, 8, 8), bits=8, passes=3)
        return rnn_train.TrainConfig(
            data=photos,
            output=out,
            network=net,
            batch=4,
            steps=6,
            threads=1,
            device="cpu",
            checkpoint_every=2,
            entropy_crops=16,
        )

    whole = rnn_train.train(config(tmp_path / "whole.safetensors"), log=lambda line: None)

    class Stop(Exception):
        pass

    real = rnn_train.trainkit.save_checkpoint

    def save_then_stop(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise Stop  # the run dies right after its first checkpoint (step 2)

    part = tmp_path / "part.safetensors"
    monkeypatch.setattr(rnn_train.trainkit, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        rnn_train.train(config(part), log=lambda line: None)
    monkeypatch.setattr(rnn_train.trainkit, "save_checkpoint", real)
    lines: list[str] = []
    assert rnn_train.train(config(part), log=lines.append) == whole
    assert any("resumed" in line and "step 2" in line for line in lines)
