"""`caec train`: fit the CAE on random crops of a folder of photos, then fit its PCA rotation.

Speed matters more than anything else here (samples seen is the first lever on quality),
so the whole training set lives on the device as one padded uint8 tensor and every batch
is cut out of it with a single gather (random crop + random flip), converted to YCbCr on
the device. On CUDA the step runs under bf16 autocast, channels_last and torch.compile.

Every random number of step ``s`` comes from a generator seeded with (seed, rank, s), so
a resumed run continues exactly as an uninterrupted one would, and ``--seed`` makes runs
repeatable. Multi-GPU / multi-node training is PyTorch's DistributedDataParallel under
``torchrun`` (the environment variables it sets are all this module reads).

``decoder_only`` fine-tunes just the decoder of existing weights, on latents quantized
exactly as the codec quantizes them (PCA rotation, dead zone, rounding) rather than on the
additive noise that stands in for rounding in full training: the encoder, the PCA and so
every bitstream stay as they were, and the decoder learns the error that rounding really makes.

``encoder_only`` is the other half: it fine-tunes the encoder (and the rate model that prices its
latent) of existing weights for the decoders it ships with, which stay fixed. The decoders were
tuned on the codec's real quantization after the encoder stopped training, and the encoder was
trained for noise and for the decoder before that tuning; here it learns to pick latents whose
real quantization (PCA rotation, dead zone, rounding, with a straight-through gradient) those very
decoders reconstruct best. Decoders, PCA and format stay as they were, so files of the new
encoder decode with the old decoders; what `caec encode --refine` finds per image, the encoder
learns once for all images, at no cost at encode time.
"""

from __future__ import annotations

import json
import math
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file
from tqdm import tqdm

from cae_codec.api import pick_device
from cae_codec.cae.network import CAE, CAEConfig
from cae_codec.errors import CaecError, ModelError
from cae_codec.imageio import read_image_rgb8
from cae_codec.stages import pca, quant
from cae_codec.stages.color import rgb_to_ycbcr, ycbcr_to_rgb
from cae_codec.trainkit import (
    PatchSampler,
    TimeBudget,
    checkpoint_path,
    command_line,
    cosine_lr,
    denormals_flushed,
    dist_info,
    join_processes,
    list_images,
    restore,
    save_checkpoint,
    step_generator,
)
from cae_codec.weights import PCA_BASIS, PCA_MEAN, load_model, run_record, save_model, training_totals

ARCHITECTURE = "cae-gdn"
# a time-budgeted run gives the PCA fit this share of --minutes (after the training), and the
# fit keeps at least this many latent vectors per channel: a covariance of M channels needs
# many more than M, and 20 per channel is one batch of 32 crops of 128x128 at the default size
PCA_SHARE_OF_BUDGET = 0.1
PCA_MIN_PER_CHANNEL = 20
# steps between the plain progress lines written when stderr is not a terminal (a log)
LOG_EVERY = 500


@dataclass
class TrainConfig:
    data_dir: Path
    output: Path
    steps: int = 20000
    batch_size: int = 16
    patch_size: int = 128
    lmbda: float = 0.013
    lr: float = 3e-4
    step_min: float = 0.5
    step_max: float = 4.0
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 500
    resume: bool = False
    init: Path | None = None
    compile: bool | None = None
    hidden: int | tuple[int, ...] = 64  # one width, or one per stage boundary (nn/cae.py)
    decoder_hidden: int | tuple[int, ...] | None = None  # the decoder's, when not the encoder's mirror
    latent: int = 96
    stages: int = 4
    kernel: int = 5
    density: str = "laplace"
    minutes: float | None = None
    pca_samples: int = 200_000
    max_images: int | None = None
    threads: int | None = None
    decoder_only: bool = False
    encoder_only: bool = False
    log: Callable[[str], None] = field(default=lambda s: print(s, file=sys.stderr))


def _lr_at(cfg: TrainConfig, step: int) -> float:
    return cosine_lr(cfg.lr, step, cfg.steps)


def _mode_of(settings: Any) -> str:
    """'decoder-only', 'encoder-only' or 'full', of a TrainConfig or a checkpoint's state."""
    get = settings.get if isinstance(settings, dict) else lambda k: getattr(settings, k)
    if get("decoder_only"):
        return "decoder-only"
    return "encoder-only" if get("encoder_only") else "full"


def _read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Tensors, training state and model config of a checkpoint, from one read of the file."""
    from safetensors import safe_open

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state: dict[str, Any] = json.loads(meta["state"])
        config: dict[str, Any] = json.loads(meta["config"])
        CAEConfig(**config)
        if _mode_of(state) != "full" and not {PCA_MEAN, PCA_BASIS} <= tensors.keys():
            raise KeyError(f"a {_mode_of(state)} checkpoint without the PCA it was trained with")
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as e:
        raise ModelError(f"cannot resume from {path}: {str(e).splitlines()[0]}") from None
    return tensors, state, config


@torch.no_grad()
def quantized_latent(
    model: CAE, x: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor, step: torch.Tensor | float
) -> torch.Tensor:
    """The latent the codec's decoder receives for crops ``x`` at ``step``: encoded in fp32 (as
    the codec encodes), rotated by the PCA, quantized with the encoder's dead zone, rotated back."""
    y = model.encode(x).float()
    z = pca.rotate(y, mean, basis)
    z_hat = quant.quantize_dequantize(z, step, quant.DEADZONE)
    return pca.unrotate(z_hat, mean, basis)


@torch.no_grad()
def fit_pca(
    model: CAE, sampler: PatchSampler, samples: int, seed: int, seconds: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Principal directions of the latent vectors (one per latent position) of training crops:
    their mean, the directions, and how many vectors they come from.

    Fitted once here and stored with the weights: per-image PCA would cost M x M
    coefficients of side information in every file, more than a low-rate payload.
    With ``seconds``, stops gathering vectors after that long, once it has
    ``PCA_MIN_PER_CHANNEL`` per latent channel (the CAE forward passes are its cost).
    """
    g = step_generator(seed, 0, -1, sampler.device)
    vecs: list[torch.Tensor] = []
    got = 0
    enough = min(samples, PCA_MIN_PER_CHANNEL * model.config.latent)
    stop = math.inf if seconds is None else time.perf_counter() + seconds
    while got < samples and not (got >= enough and time.perf_counter() >= stop):
        y = model.encode(sampler.sample(32, g)).float()
        v = y.permute(0, 2, 3, 1).reshape(-1, y.shape[1])
        vecs.append(v.cpu().double())
        got += v.shape[0]
    allv = torch.cat(vecs)[:samples]
    mean, basis = pca.fit(allv)
    return mean, basis, allv.shape[0]


def train(cfg: TrainConfig) -> Path:
    """Run ``cfg``; the process-wide torch settings it changes are restored afterwards, since a
    library call (or a test) must not leave the caller's floats flushed to zero."""
    flushed, threads = denormals_flushed(), torch.get_num_threads()
    # GDN drives some activations and gradients into subnormal floats, which x86 CPUs
    # process up to 100x slower; flushing them to zero changes nothing measurable
    torch.set_flush_denormal(True)
    try:
        return _train(cfg)
    finally:
        torch.set_flush_denormal(flushed)
        torch.set_num_threads(threads)


@dataclass
class _Processes:
    """This process's place in the run (one process, or one of torchrun's)."""

    device: torch.device
    world: int
    rank: int
    local: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _start(cfg: TrainConfig, mode: str) -> _Processes:
    """Checks the modes, picks the device and joins torchrun's process group if there is one."""
    world, rank, local = dist_info()
    if cfg.decoder_only and cfg.encoder_only:
        raise CaecError("--decoder-only and --encoder-only exclude each other: a run tunes one half")
    if mode != "full" and world > 1:  # refused before a process group is joined: it would wait for peers
        raise CaecError(f"--{mode} runs as one process (it is a short fine-tune), not under torchrun")
    device = join_processes(pick_device(cfg.device), world, local)
    return _Processes(device, world, rank, local)


Checkpoint = tuple[Path, dict[str, torch.Tensor], dict[str, Any]]


def _initial_model(
    cfg: TrainConfig, mode: str, ckpt: Path, state: dict[str, Any], log: Callable[[str], None]
) -> tuple[CAE, tuple[torch.Tensor, torch.Tensor] | None, Checkpoint | None]:
    """The network to train (new, from --init, or from the checkpoint to resume), the PCA a
    fine-tune of one half keeps (the bitstreams and the decoders were made with it), and the
    checkpoint's tensors and state when resuming. Records the history of --init in ``state``."""
    if cfg.resume and not ckpt.exists() and cfg.init is None and cfg.output.exists():
        cfg.init = cfg.output  # continue from finished weights, e.g. the shipped model
    frozen_pca: tuple[torch.Tensor, torch.Tensor] | None = None
    if cfg.resume and ckpt.exists():
        tensors, ckpt_state, ckpt_config = _read_checkpoint(ckpt)
        was = _mode_of(ckpt_state)
        if was != mode:
            how = "without --decoder-only or --encoder-only" if was == "full" else f"with --{was}"
            raise CaecError(f"{ckpt} is a checkpoint of a {was} run: resume it {how}")
        if mode != "full":
            frozen_pca = tensors[PCA_MEAN], tensors[PCA_BASIS]
        # the checkpoint's own architecture, whatever --latent / --density say this time
        return CAE(CAEConfig(**ckpt_config)), frozen_pca, (ckpt, tensors, ckpt_state)
    if cfg.init is not None:
        base = load_model(cfg.init)
        model = CAE(CAEConfig(**base.config))
        model.load_state_dict(base.network.state_dict())
        if mode != "full":
            frozen_pca = base.pca_mean.clone(), base.pca_basis.clone()
        prior = base.metadata
        state["history"] = [*prior.get("history", []), run_record(prior)] if prior else []
        log(f"initialised from {cfg.init} ({prior.get('total_patch128_equivalents', 0):,} 128x128 crops seen before)")
        return model, frozen_pca, None
    if mode != "full":
        raise CaecError(f"--{mode} fine-tunes existing weights: give --init WEIGHTS")
    config = CAEConfig(
        3, cfg.hidden, cfg.latent, cfg.stages, cfg.kernel, cfg.density, decoder_hidden=cfg.decoder_hidden
    )
    return CAE(config), None, None


def _trained_parameters(cfg: TrainConfig, model: CAE) -> list[torch.nn.Parameter]:
    """The parameters the mode trains (the rest frozen): every band's decoder, if several."""
    if cfg.decoder_only:
        model.encoder.requires_grad_(False)
        model.density.requires_grad_(False)
    if cfg.encoder_only:
        for decoder in model.decoders():
            decoder.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


# (crops, quantization steps, the step's generator) -> (loss, per-crop MSE, per-crop bpp)
LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def _loss_fn(
    cfg: TrainConfig, model: CAE, frozen_pca: tuple[torch.Tensor, torch.Tensor] | None, run: _Processes
) -> LossFn:
    """The training loss of the run's mode, compiled on CUDA (or as --compile says)."""
    device = run.device
    use_compile = cfg.compile if cfg.compile is not None else device.type == "cuda"
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    )
    pixels = cfg.patch_size**2
    if cfg.decoder_only:
        assert frozen_pca is not None
        pca = frozen_pca[0].to(device).view(1, -1, 1, 1), frozen_pca[1].to(device)
        decode_fn: Callable[..., Any] = torch.compile(model.decode) if use_compile else model.decode

        def decoder_loss(x: torch.Tensor, qstep: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, ...]:
            y_hat = quantized_latent(model, x, *pca, qstep)
            with autocast:
                x_hat = decode_fn(y_hat, qstep)
            # the decoder's output is clamped to [0,1] in RGB before it becomes pixels
            mse = ((ycbcr_to_rgb(x_hat.float()).clamp(0, 1) - ycbcr_to_rgb(x)) ** 2).mean(dim=(1, 2, 3))
            bpp = torch.zeros_like(mse)  # the frozen encoder fixes the rate
            # minus the mean PSNR: every step of the range counts alike in dB, where a plain MSE
            # would let the coarsest steps (the largest errors) decide everything
            return 10 * torch.log10(mse.clamp_min(1e-10)).mean(), mse, bpp

        return decoder_loss  # type: ignore[return-value]
    step_fn: Callable[..., Any]
    if frozen_pca is not None:  # encoder-only
        tuning = _EncoderTuning(model, frozen_pca[0].to(device).view(1, -1, 1, 1), frozen_pca[1].to(device))
        step_fn = torch.compile(tuning) if use_compile else tuning
    else:
        net: torch.nn.Module = model
        if run.world > 1:
            dev_ids = [run.local] if device.type == "cuda" else None
            net = torch.nn.parallel.DistributedDataParallel(model, device_ids=dev_ids)
        step_fn = torch.compile(net) if use_compile else net

    def rate_distortion_loss(x: torch.Tensor, qstep: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, ...]:
        # full training, or the encoder for its fixed decoders: the same rate-distortion loss
        lam = cfg.lmbda / qstep.view(-1) ** 2
        side = cfg.patch_size // model.config.stride
        noise = torch.rand(cfg.batch_size, model.config.latent, side, side, device=device, generator=g) - 0.5
        with autocast:
            x_hat, bits = step_fn(x, noise, qstep)
        # distortion in RGB, the space PSNR is reported in: chroma errors weigh up to 1.77x more
        # there than in YCbCr, and a YCbCr loss would spend bits where RGB PSNR cannot see them
        rgb_hat = ycbcr_to_rgb(x_hat.float())
        if cfg.encoder_only:
            # clamped as the codec clamps: no gradient asks the encoder for pixels the codec cuts off
            rgb_hat = rgb_hat.clamp(0, 1)
        mse = ((rgb_hat - ycbcr_to_rgb(x)) ** 2).mean(dim=(1, 2, 3))
        bpp = bits / pixels
        return (lam * 255.0**2 * mse + bpp).mean(), mse, bpp

    return rate_distortion_loss  # type: ignore[return-value]


class _Progress:
    """A bar on a terminal; into a log, a plain line now and then (a bar's carriage returns
    would fill it with every redraw). Averages what the steps report over every 50 steps."""

    def __init__(self, cfg: TrainConfig, state: dict[str, Any], run: _Processes) -> None:
        self.cfg, self.state, self.is_main = cfg, state, run.is_main
        self.interactive = run.is_main and sys.stderr.isatty()
        self.bar = tqdm(
            total=cfg.steps,
            initial=state["step"],
            disable=not self.interactive,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self.t_last, self.s_last = time.perf_counter(), state["step"]
        self.patch_equiv = cfg.batch_size * run.world * cfg.patch_size**2 / 128**2
        self.recent: list[torch.Tensor] = []

    def step(self, loss: torch.Tensor, mse: torch.Tensor, bpp: torch.Tensor, qstep: torch.Tensor) -> None:
        state, cfg = self.state, self.cfg
        # kept on the device: a .item() per step would stall a GPU on a host sync every step
        fine = (qstep.view(-1) < 1.5).float()
        self.recent.append(torch.stack([loss, (mse * fine).sum() / fine.sum().clamp_min(1), bpp.mean()]).detach())
        self.bar.update(1)
        if state["step"] % 50 and state["step"] != cfg.steps:
            return
        now = time.perf_counter()
        rate = (state["step"] - self.s_last) * self.patch_equiv / max(now - self.t_last, 1e-9)
        self.t_last, self.s_last = now, state["step"]
        lo, ms, bp = torch.stack(self.recent).mean(dim=0).tolist()
        self.recent.clear()
        report = {
            "loss": f"{lo:.3f}",
            "psnr_fine": f"{10 * math.log10(1 / max(ms, 1e-12)):.2f}",
            "bpp": f"{bp:.3f}",
            "patches_s": f"{rate:.0f}",
        }
        self.bar.set_postfix(**report)
        if self.is_main and not self.interactive and (state["step"] % LOG_EVERY == 0 or state["step"] == cfg.steps):
            fields = ", ".join(f"{k} {v}" for k, v in report.items())
            print(f"caec train: step {state['step']}/{cfg.steps}, {fields}", file=sys.stderr, flush=True)
        state.setdefault("patches_per_s", []).append(round(rate, 1))
        state["patches_per_s"] = state["patches_per_s"][-20:]


def _train(cfg: TrainConfig) -> Path:
    started = time.perf_counter()  # --minutes counts from here: loading the images is part of the wait
    mode = _mode_of(cfg)
    run = _start(cfg, mode)
    device = run.device
    log = cfg.log if run.is_main else (lambda s: None)
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    files = list_images(cfg.data_dir)[: cfg.max_images]
    log(f"loading {len(files)} images from {cfg.data_dir}")
    sampler = PatchSampler([read_image_rgb8(f) for f in files], cfg.patch_size, device, rgb_to_ycbcr)

    ckpt = checkpoint_path(cfg.output)
    if run.is_main:
        cfg.output.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"step": 0, "samples": 0, "seconds": 0.0, "history": [], "run_id": uuid.uuid4().hex}
    model, frozen_pca, resumed = _initial_model(cfg, mode, ckpt, state, log)
    # the record says what was trained: --hidden / --latent / --density only shape new models
    arch = model.config
    for name in ("hidden", "decoder_hidden", "latent", "stages", "kernel", "density"):
        setattr(cfg, name, getattr(arch, name))
    model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    trained = _trained_parameters(cfg, model)
    opt = torch.optim.Adam(trained, lr=cfg.lr)
    if resumed is not None:
        path, tensors, state = resumed
        restore(path, tensors, model, opt, state["step"])
        log(f"resumed from {path} at step {state['step']}")
    if "planned_steps" in state:
        cfg.steps = int(state["planned_steps"])  # a time-budgeted run resumes to the same end

    loss_of = _loss_fn(cfg, model, frozen_pca, run)
    log_lmin, log_lmax = math.log(cfg.step_min), math.log(cfg.step_max)
    progress = _Progress(cfg, state, run)
    run_start = time.perf_counter()
    seconds_before = state["seconds"]
    budget = None
    if cfg.minutes and "planned_steps" not in state:
        budget = TimeBudget(cfg, state["step"], device, started, run.world)
    while state["step"] < cfg.steps:
        step = state["step"]
        g = step_generator(cfg.seed, run.rank, step, device)
        x = sampler.sample(cfg.batch_size, g)
        # one quantization step per sample, log-uniform: a single model learns the whole
        # rate range that the encoder later reaches by scaling the step (lambda ~ 1/step^2
        # is the slope of the rate-distortion curve at that step)
        qstep = torch.exp(torch.empty(cfg.batch_size, 1, 1, 1, device=device).uniform_(log_lmin, log_lmax, generator=g))
        if device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step)
        loss, mse, bpp = loss_of(x, qstep, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        state["step"] = step + 1
        state["samples"] += cfg.batch_size * run.world
        if budget is not None and budget.plan(state["step"]):
            progress.bar.total = cfg.steps
        if cfg.minutes and state["step"] >= cfg.steps:
            state["planned_steps"] = cfg.steps  # finished on time: a resumed run stops here too
        progress.step(loss, mse, bpp, qstep)
        if run.is_main and (state["step"] % cfg.checkpoint_every == 0 or state["step"] == cfg.steps):
            state["seconds"] = seconds_before + time.perf_counter() - run_start
            state["decoder_only"] = cfg.decoder_only
            state["encoder_only"] = cfg.encoder_only
            extra = {PCA_MEAN: frozen_pca[0], PCA_BASIS: frozen_pca[1]} if frozen_pca is not None else {}
            save_checkpoint(ckpt, model, opt, state, extra, model.config_dict())
    progress.bar.close()
    state["seconds"] = seconds_before + time.perf_counter() - run_start
    if run.is_main:
        _finish(cfg, model, sampler, frozen_pca, state, run, log)
    if run.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return cfg.output


def _finish(
    cfg: TrainConfig,
    model: CAE,
    sampler: PatchSampler,
    frozen_pca: tuple[torch.Tensor, torch.Tensor] | None,
    state: dict[str, Any],
    run: _Processes,
    log: Callable[[str], None],
) -> None:
    """Fits the PCA (a full run; a fine-tune keeps its own) and writes the weights."""
    model.eval()
    if frozen_pca is not None:
        mean, basis = frozen_pca
    else:
        pca_seconds = cfg.minutes * 60 * PCA_SHARE_OF_BUDGET if cfg.minutes else None
        within = f" (at most {pca_seconds:.3g} s of the time budget)" if pca_seconds is not None else ""
        log(f"fitting PCA on {cfg.pca_samples:,} latent vectors{within}")
        mean, basis, used = fit_pca(model, sampler, cfg.pca_samples, cfg.seed, pca_seconds)
        if used < cfg.pca_samples:
            log(f"fitted the PCA on {used:,} latent vectors: its share of the time budget was spent")
            cfg.pca_samples = used  # the record says what the PCA came from
    meta = _run_metadata(cfg, state, run.device, run.world)
    h = save_model(cfg.output, model, ARCHITECTURE, mean, basis, meta)
    log(
        f"wrote {cfg.output} (weights hash {h.hex()}), {state['samples']:,} crops seen, {state['seconds'] / 60:.1f} min"
    )


class _EncoderTuning(torch.nn.Module):
    """The encoder-only training pass: the decoder gets the latent exactly as the codec quantizes
    it (PCA rotation, dead zone, rounding), the gradient passes the rounding straight through,
    and the rate model prices the latent with additive noise as in full training (rounded
    values would give it no gradient)."""

    def __init__(self, model: CAE, mean: torch.Tensor, basis: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.mean, self.basis = mean, basis  # the stored rotation, fixed: the decoders were tuned in it

    def forward(self, x: torch.Tensor, noise: torch.Tensor, step: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.model.encode(x).float()
        z = pca.rotate(y, self.mean, self.basis)
        z_hat = z + (quant.quantize_dequantize(z.detach(), step, quant.DEADZONE) - z).detach()
        y_hat = pca.unrotate(z_hat, self.mean, self.basis)
        return self.model.decode(y_hat, step), self.model.rate_bits(y + noise * step, step)


def _run_metadata(cfg: TrainConfig, state: dict[str, Any], device: torch.device, world: int) -> dict[str, Any]:
    history = state.get("history", [])
    crops, seconds = training_totals(
        [*history, {"samples": state["samples"], "patch_size": cfg.patch_size, "seconds": state["seconds"]}]
    )
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    cfg_d = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items() if k != "log"}
    return {
        "run_id": state.setdefault("run_id", uuid.uuid4().hex),  # checkpoints from before run ids
        "steps": state["step"],
        "samples": state["samples"],
        "patch_size": cfg.patch_size,
        "seconds": round(state["seconds"], 1),
        "device": f"{dev} x{world}",
        "patches_per_s_128": state.get("patches_per_s", [])[-5:],
        "total_patch128_equivalents": round(crops, 1),
        "total_seconds": round(seconds, 1),
        "train_config": cfg_d,
        "command": command_line(),
        "torch": torch.__version__,
        "history": history,
    }
