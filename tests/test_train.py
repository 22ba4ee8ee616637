"""`caec train` on CPU: a tiny real run, deterministic resume, and a 2-process DDP smoke test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cae_codec.cli import app
from cae_codec.weights import load_model
from tests.conftest import torchrun_train

TINY = ["--patch-size", "32", "--batch-size", "2", "--hidden", "8", "--latent", "6", "--stages", "2"]
TINY += ["--max-images", "4", "--pca-samples", "500", "--device", "cpu", "--seed", "3"]


def run_train(data: Path, out: Path, *extra: str) -> None:
    result = CliRunner().invoke(app, ["train", str(data), "-o", str(out), *TINY, *extra])
    assert result.exit_code == 0, result.output


def _interrupt_third_batch(monkeypatch: pytest.MonkeyPatch) -> Callable[..., torch.Tensor]:
    """Make the next training run fail (KeyboardInterrupt) when it asks for its third batch;
    returns the real sampler method, to put back."""
    import cae_codec.cae.train as tr

    calls = {"n": 0}
    real = tr.PatchSampler.sample

    def failing(self, batch, gen):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, batch, gen)

    monkeypatch.setattr(tr.PatchSampler, "sample", failing)
    return real


def test_tiny_training_run_writes_a_loadable_model(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.safetensors"
    run_train(train_dir, out, "--steps", "6", "--checkpoint-every", "3")
    model = load_model(out)
    assert model.latent_channels == 6 and model.stride == 4
    assert model.metadata["steps"] == 6 and model.metadata["samples"] == 12
    basis = model.pca_basis.double()
    assert torch.allclose(basis.T @ basis, torch.eye(6, dtype=torch.float64), atol=1e-4), "PCA must be orthonormal"
    assert (tmp_path / "tiny.safetensors.ckpt.safetensors").is_file()


def test_same_seed_gives_identical_weights(train_dir: Path, tmp_path: Path) -> None:
    a_path, b_path = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    run_train(train_dir, a_path, "--steps", "4", "--checkpoint-every", "100")
    run_train(train_dir, b_path, "--steps", "4", "--checkpoint-every", "1")
    a, b = load_model(a_path), load_model(b_path)
    assert a.weights_hash == b.weights_hash, "checkpointing must not change the run"
    other = tmp_path / "c.safetensors"
    run_train(train_dir, other, "--steps", "4", "--seed", "4")
    assert load_model(other).weights_hash != a.weights_hash


def test_resume_continues_from_checkpoint(train_dir: Path, tmp_path: Path, monkeypatch) -> None:
    import cae_codec.cae.train as tr

    out = tmp_path / "r.safetensors"
    full = tmp_path / "full.safetensors"
    run_train(train_dir, full, "--steps", "4", "--checkpoint-every", "100")
    # stop a 4-step run after its step-2 checkpoint by failing the third step
    real = _interrupt_third_batch(monkeypatch)
    args = ["train", str(train_dir), "-o", str(out), *TINY, "--steps", "4", "--checkpoint-every", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0 and not out.exists()
    monkeypatch.setattr(tr.PatchSampler, "sample", real)
    run_train(train_dir, out, "--steps", "4", "--checkpoint-every", "2", "--resume")
    a, b = load_model(full).network.state_dict(), load_model(out).network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run must match the uninterrupted one"
    assert load_model(out).metadata["steps"] == 4


def test_fine_tune_from_existing_weights_records_history(train_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.safetensors"
    run_train(train_dir, base, "--steps", "2")
    tuned = tmp_path / "tuned.safetensors"
    run_train(train_dir, tuned, "--steps", "2", "--init", str(base))
    meta = load_model(tuned).metadata
    assert len(meta["history"]) == 1 and meta["history"][0]["steps"] == 2
    assert meta["total_patch128_equivalents"] == 2 * (2 * 2 * 32 * 32 / 128**2)


def test_factorized_density_model_trains_and_encodes(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fact.safetensors"
    run_train(train_dir, out, "--steps", "3", "--density", "factorized")
    model = load_model(out)
    assert model.config["density"] == "factorized"
    assert any(k.startswith("density.matrices") for k in model.network.state_dict())


def test_time_budget_fixes_the_step_total_and_resumes_to_it(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "budget.safetensors"
    # a budget (0.6 ms) spent before the first step ends: the run stops after that one step (it
    # ran 120 steps before the budget was looked at)
    run_train(train_dir, out, "--steps", "1000", "--minutes", "0.00001", "--checkpoint-every", "1")
    meta = load_model(out).metadata
    assert meta["steps"] == 1 and meta["train_config"]["steps"] == 1
    run_train(train_dir, out, "--steps", "1000", "--minutes", "0.00001", "--resume")
    assert load_model(out).metadata["steps"] == 1, "a resumed budgeted run keeps its planned end"


def test_a_short_time_budget_limits_the_steps_and_the_run_ends(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "short.safetensors"
    run_train(train_dir, out, "--steps", "1000000", "--minutes", "0.01", "--checkpoint-every", "1000000")
    meta = load_model(out).metadata
    assert 1 <= meta["steps"] < 1000000 and meta["train_config"]["steps"] == meta["steps"]


def _simulated_run(minutes: float, step_seconds: Callable[[int], float], steps: int = 10_000) -> tuple[int, float]:
    """Drive a TimeBudget on a simulated clock (the command starts at 0 and is ready to train at
    1 s); the steps run and the clock when the run ends."""
    from cae_codec.cae.train import TrainConfig
    from cae_codec.trainkit import TimeBudget

    now = [1.0]
    cfg = TrainConfig(data_dir=Path("unused"), output=Path("unused"), steps=steps, minutes=minutes)
    budget = TimeBudget(cfg, 0, torch.device("cpu"), 0.0, 1, clock=lambda: now[0])
    step = 0
    while step < cfg.steps:
        now[0] += step_seconds(step)
        step += 1
        budget.plan(step)
    return step, now[0]


def test_time_budget_plans_from_the_first_steps_and_uses_the_time_it_has() -> None:
    # a slow first step (torch.compile's), then 1 s a step: the first plans err short, and the
    # run must neither stop while a step still fits nor run past the deadline
    for minutes in (0.5, 2.0, 10.0):
        steps, end = _simulated_run(minutes, lambda i: 20.0 if i == 0 else 1.0)
        assert minutes * 60 - 2.0 <= end <= minutes * 60, (minutes, steps, end)
    # steady steps: planned at step 120 and every 500 after, and the run still ends on time
    steps, end = _simulated_run(20.0, lambda i: 0.25)
    assert 20 * 60 - 0.5 <= end <= 20 * 60 and steps > 620


def test_time_budget_stops_a_run_whose_steps_slow_down_between_plans() -> None:
    # 0.1 s a step for 150 steps, then 10 s: a plan made at step 120 is far too long
    _, end = _simulated_run(1.0, lambda i: 0.1 if i < 150 else 10.0)
    assert end <= 60 + 10.0, "at most the one step that crossed the deadline"


def test_time_budget_caps_at_steps_and_a_first_step_past_the_deadline_ends_the_run() -> None:
    assert _simulated_run(10.0, lambda i: 1.0, steps=50) == (50, 51.0)
    assert _simulated_run(0.1, lambda i: 30.0) == (1, 31.0)


def test_pca_fit_with_a_time_bound_keeps_its_minimum_of_vectors(train_dir: Path) -> None:
    from cae_codec.cae.network import CAE, CAEConfig
    from cae_codec.cae.train import PCA_MIN_PER_CHANNEL, fit_pca
    from cae_codec.imageio import read_image_rgb8
    from cae_codec.stages.color import rgb_to_ycbcr
    from cae_codec.trainkit import PatchSampler, list_images

    images = [read_image_rgb8(f) for f in list_images(train_dir)[:2]]
    sampler = PatchSampler(images, 32, torch.device("cpu"), rgb_to_ycbcr)
    model = CAE(CAEConfig(3, 8, 6, 2, 5, "laplace"))
    mean, basis, used = fit_pca(model, sampler, 1_000_000, seed=0, seconds=0.0)
    assert PCA_MIN_PER_CHANNEL * 6 <= used < 1_000_000
    assert basis.shape == (6, 6) and mean.shape == (6,)


def test_unreadable_checkpoint_is_one_clear_error(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "broken.safetensors"
    (tmp_path / "broken.safetensors.ckpt.safetensors").write_bytes(b"not a safetensors file")
    args = ["train", str(train_dir), "-o", str(out), *TINY, "--steps", "2", "--resume"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "cannot resume from" in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_bad_training_arguments_exit_cleanly(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["train", str(tmp_path / "missing"), "-o", str(tmp_path / "m"), *TINY])
    assert r.exit_code == 1 and "does not exist" in r.output
    for bad in (["--patch-size", "30"], ["--density", "gauss"], ["--minutes", "0"]):
        r = CliRunner().invoke(app, ["train", str(tmp_path), "-o", str(tmp_path / "m"), *bad])
        assert r.exit_code == 2, bad


@pytest.mark.slow
def test_ddp_two_process_gloo_smoke(train_dir: Path, tmp_path: Path) -> None:
    meta = torchrun_train(tmp_path / "ddp.safetensors", str(train_dir), *TINY, "--steps", "3")
    assert meta["samples"] == 3 * 2 * 2, "two processes of batch 2 for 3 steps"
    assert meta["device"].endswith("x2")


def test_resume_rebuilds_the_checkpoints_architecture(train_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "arch.safetensors"
    run_train(train_dir, out, "--steps", "2", "--latent", "5", "--density", "factorized")
    out.unlink()  # only the checkpoint is left, as after an interrupted run
    run_train(train_dir, out, "--steps", "4", "--resume")  # TINY says --latent 6, laplace
    model = load_model(out)
    assert model.latent_channels == 5 and model.config["density"] == "factorized"
    assert model.metadata["steps"] == 4


def _encode_tiny(path: Path) -> bytes:
    from cae_codec.cae.codec import CaePcaJ2kCodec
    from cae_codec.container import LATENT, parse

    img = (torch.arange(40 * 48 * 3) % 251).reshape(40, 48, 3).to(torch.uint8).numpy()
    codec = CaePcaJ2kCodec(load_model(path), torch.device("cpu"))
    # a fine step: an untrained tiny model's latent would round to nothing at the usual ones
    latent = parse(codec.pack(codec.analyse(img), step=1 / 64)).first(LATENT)
    assert latent is not None
    return latent


def _fine_tune(train_dir: Path, tmp_path: Path, mode: str) -> tuple[Path, Path]:
    """A 2-step base model and a 3-step ``mode`` fine-tune of it: their paths, their weights
    checked for the PCA kept and the run recorded."""
    base, tuned = tmp_path / "base.safetensors", tmp_path / "tuned.safetensors"
    run_train(train_dir, base, "--steps", "2")
    run_train(train_dir, tuned, "--steps", "3", "--init", str(base), f"--{mode}", "--lr", "1e-2")
    a, b = load_model(base), load_model(tuned)
    assert torch.equal(a.pca_mean, b.pca_mean) and torch.equal(a.pca_basis, b.pca_basis), "PCA is kept, not refit"
    assert b.metadata["train_config"][mode.replace("-", "_")] is True and len(b.metadata["history"]) == 1
    return base, tuned


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).network.state_dict()


def test_decoder_only_fine_tune_keeps_encoder_pca_and_bitstream(train_dir: Path, tmp_path: Path) -> None:
    base, tuned = _fine_tune(train_dir, tmp_path, "decoder-only")
    sa, sb = _weights(base), _weights(tuned)
    frozen = [k for k in sa if not k.startswith("decoder.")]
    assert frozen and all(torch.equal(sa[k], sb[k]) for k in frozen), "encoder and density must not move"
    assert any(not torch.equal(sa[k], sb[k]) for k in sa if k.startswith("decoder.")), "the decoder must train"
    assert _encode_tiny(base) == _encode_tiny(tuned), "the same encoder must write the same latent bitstream"


def test_encoder_only_fine_tune_keeps_decoders_and_pca(train_dir: Path, tmp_path: Path) -> None:
    base, tuned = _fine_tune(train_dir, tmp_path, "encoder-only")
    sa, sb = _weights(base), _weights(tuned)
    decoder = [k for k in sa if k.startswith("decoder.")]
    assert decoder and all(torch.equal(sa[k], sb[k]) for k in decoder), "the decoder must not move"
    for part in ("encoder.", "density."):
        assert any(not torch.equal(sa[k], sb[k]) for k in sa if k.startswith(part)), f"{part} must train"
    assert _encode_tiny(base) != _encode_tiny(tuned), "a new encoder writes new latents"


def test_encoder_only_trains_the_encoder_through_the_codecs_quantization(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the decoder must see the latent exactly as the codec quantizes it, and the encoder must
    # get a gradient through that rounding
    import cae_codec.cae.train as tr
    from cae_codec.stages import quant

    base = tmp_path / "base.safetensors"
    run_train(train_dir, base, "--steps", "2")
    model = load_model(base)
    model.network.requires_grad_(True)  # loaded for inference; training turns the flags on
    mean, basis = model.pca_mean.view(1, -1, 1, 1), model.pca_basis
    tuning = tr._EncoderTuning(model.network, mean, basis)
    x = torch.rand(2, 3, 32, 32)
    step = torch.full((2, 1, 1, 1), 0.05)
    x_hat, bits = tuning(x, torch.zeros(2, 6, 8, 8), step)
    with torch.no_grad():
        expected = model.network.decode(tr.quantized_latent(model.network, x, mean, basis, step), step)
    assert torch.allclose(x_hat, expected, atol=1e-6) and bits.shape == (2,)
    x_hat.sum().backward()
    grads = [p.grad for p in model.network.encoder.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert quant.DEADZONE > 0  # the dead zone is part of what the decoder sees


def test_fine_tuning_one_half_excludes_the_other(train_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "base.safetensors"
    run_train(train_dir, base, "--steps", "1")
    out = tmp_path / "both.safetensors"
    args = ["train", str(train_dir), "-o", str(out), *TINY, "--steps", "2", "--init", str(base)]
    r = CliRunner().invoke(app, [*args, "--decoder-only", "--encoder-only"])
    assert r.exit_code == 1 and "exclude each other" in r.output and "Traceback" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("mode", ["--decoder-only", "--encoder-only"])
def test_fine_tune_resume_matches_an_uninterrupted_run(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    import cae_codec.cae.train as tr

    base = tmp_path / "base.safetensors"
    run_train(train_dir, base, "--steps", "2")
    tune = ["--init", str(base), mode, "--lr", "1e-2", "--steps", "4", "--checkpoint-every", "2"]
    full = tmp_path / "full.safetensors"
    run_train(train_dir, full, *tune)
    out = tmp_path / "cut.safetensors"
    real = _interrupt_third_batch(monkeypatch)
    assert CliRunner().invoke(app, ["train", str(train_dir), "-o", str(out), *TINY, *tune]).exit_code != 0
    monkeypatch.setattr(tr.PatchSampler, "sample", real)
    r = CliRunner().invoke(app, ["train", str(train_dir), "-o", str(out), *TINY, "--steps", "4", "--resume"])
    assert r.exit_code == 1 and f"resume it with {mode}" in r.output, "the mode must not flip on resume"
    run_train(train_dir, out, *tune, "--resume")
    assert load_model(out).weights_hash == load_model(full).weights_hash


@pytest.mark.parametrize("mode", ["--decoder-only", "--encoder-only"])
def test_fine_tune_needs_weights_to_start_from(train_dir: Path, tmp_path: Path, mode: str) -> None:
    out = tmp_path / "nothing.safetensors"
    r = CliRunner().invoke(app, ["train", str(train_dir), "-o", str(out), *TINY, "--steps", "2", mode])
    assert r.exit_code == 1 and "give --init" in r.output and not out.exists()


def test_training_leaves_the_process_float_settings_as_it_found_them(train_dir: Path, tmp_path: Path) -> None:
    # train() flushes subnormals and may set the thread count; hypothesis (test_fuzz) and any
    # library caller would otherwise inherit them
    from cae_codec.trainkit import denormals_flushed

    before = (denormals_flushed(), torch.get_num_threads())
    run_train(train_dir, tmp_path / "t.safetensors", "--steps", "1", "--threads", "1")
    assert (denormals_flushed(), torch.get_num_threads()) == before


@pytest.mark.parametrize("mode", ["--decoder-only", "--encoder-only"])
def test_fine_tune_is_refused_under_torchrun(
    train_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # refused before any process group is joined, which would wait for peers that never come
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "ddp.safetensors"
    args = ["train", str(train_dir), "-o", str(out), *TINY, "--steps", "2", mode, "--init", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "not under torchrun" in r.output and "Traceback" not in r.output
    assert not out.exists()


def test_decoder_only_checkpoint_without_its_pca_is_one_clear_error(train_dir: Path, tmp_path: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    base = tmp_path / "base.safetensors"
    run_train(train_dir, base, "--steps", "2")
    out = tmp_path / "dec.safetensors"
    tune = ["--init", str(base), "--decoder-only", "--lr", "1e-2", "--checkpoint-every", "1"]
    run_train(train_dir, out, *tune, "--steps", "2")
    out.unlink()
    ckpt = tmp_path / "dec.safetensors.ckpt.safetensors"
    with safe_open(str(ckpt), framework="pt") as f:
        meta = f.metadata()
    save_file({k: v for k, v in load_file(str(ckpt)).items() if not k.startswith("pca.")}, str(ckpt), metadata=meta)
    r = CliRunner().invoke(app, ["train", str(train_dir), "-o", str(out), *TINY, *tune, "--steps", "4", "--resume"])
    assert r.exit_code == 1 and "cannot resume from" in r.output and "without the PCA" in r.output
    assert "Traceback" not in r.output and not out.exists()


def test_read_checkpoint_refuses_a_broken_file_on_one_line(tmp_path: Path) -> None:
    """Every codec's training resumes through trainkit.read_checkpoint: a file that is not a
    checkpoint (garbage, or a safetensors file without the training state) is one CaecError line."""
    from safetensors.torch import save_file

    from cae_codec import trainkit
    from cae_codec.errors import CaecError

    garbage = tmp_path / "garbage.ckpt.safetensors"
    garbage.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    stateless = tmp_path / "stateless.ckpt.safetensors"
    save_file({"w": torch.zeros(2)}, str(stateless))
    for path in (garbage, stateless):
        with pytest.raises(CaecError, match=r"^cannot read checkpoint .*") as caught:
            trainkit.read_checkpoint(path)
        assert "\n" not in str(caught.value)
