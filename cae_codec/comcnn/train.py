"""`caec train comcnn`: ComCNN and RecCNN trained in turns on random crops of a folder of photos.

The standard codec has no gradient, so (after Jiang et al. 2017):

- RecCNN learns from real codec outputs of the current ComCNN: each crop's compact image is
  rounded to 8 bits and really coded by the inner codec (``--inner``, JPEG by default;
  cae_codec.comcnn.inner) at a knob value drawn per crop over ``--quality-min..--quality-max``
  (the inner codec's own knob: JPEG/WebP/AVIF quality, JPEG 2000's target PSNR in dB; by default
  its range in cae_codec.comcnn.frames), so that one model serves the whole rate knob;
- ComCNN learns with RecCNN's weights fixed, the codec being the identity in the backward pass
  (a straight-through gradient: the forward pass carries the real decoded compact image).

``--turn N`` alternates the two every N steps as the paper does (RecCNN first). ``--turn 0``
(the default) takes both turns on every step from one forward and one backward pass: the
gradient RecCNN gets is its loss on the real JPEG output of the current ComCNN, and the
gradient ComCNN gets is through the current RecCNN, fixed for that step, so each network gets
an update every step for the cost of one pass (turns of N steps give each half the updates).

``--init MODEL`` starts from a trained model's weights (both networks, or ComCNN alone with
``--init-com-only``: a RecCNN of another size learns from the same compact images); a
``--com-lr-scale`` of 0 keeps ComCNN as it starts.

Seeded and resumable as the CAE's training (cae_codec.trainkit): the crops, the JPEG qualities
and so the whole run follow from (seed, step); checkpoints every ``--checkpoint-every`` steps;
``--minutes`` plans the step total to end within the budget. Under ``torchrun`` the processes
(CPU, gloo) each draw their own crops and average their gradients every step
(trainkit.average_gradients: DistributedDataParallel's wrapper needs the step to be one forward
call, and this one has the inner codec between the two networks).
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

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from cae_codec import trainkit
from cae_codec.comcnn import inner
from cae_codec.comcnn.network import (
    ARCHITECTURE,
    ENHANCE_ARCHITECTURE,
    ComCnnConfig,
    ComRecPair,
    EnhanceConfig,
    JpegEnhancer,
)
from cae_codec.errors import CaecError
from cae_codec.imageio import read_image_rgb8
from cae_codec.weights import save_network

LOG_EVERY = 50
Log = Callable[[str], None]


@dataclass
class TrainConfig:
    data_dir: Path
    output: Path
    steps: int = 100_000
    minutes: float | None = None
    batch_size: int = 16
    # 64, not the paper's 40: the compact crop (32x32) is then whole 16x16 MCUs of a 4:2:0
    # JPEG, whose block grid starts at the crop's corner as it starts at the image's
    patch_size: int = 64
    lr: float = 1e-3
    inner: str = "jpeg"
    # None: the inner codec's training range (cae_codec.comcnn.frames)
    quality_min: int | None = None
    quality_max: int | None = None
    init: str | None = None
    init_com_only: bool = False
    turn: int = 0
    # ComCNN's learning rate as a share of RecCNN's, and the weight of the penalty on its compact
    # image's distance from the 2x2 mean of the input: trained freely on distortion alone,
    # ComCNN moved its compact image far from a downscale (JPEG + bicubic of it fell from 24 to
    # 20 dB while the output gained nothing), which costs JPEG bits that the loss never sees
    # the `caec enhance` network instead: RecCNN alone on full-resolution JPEG crops
    enhance: bool = False
    com_lr_scale: float = 0.1
    anchor: float = 1.0
    rec_layers: int = 10
    rec_channels: int = 32
    seed: int = 0
    checkpoint_every: int = 200
    resume: bool = True
    max_images: int | None = None
    threads: int | None = None
    log: Log = field(default=lambda s: print(s, file=sys.stderr, flush=True))

    def __post_init__(self) -> None:
        lo, hi = inner.info(self.inner).train_range
        self.quality_min = lo if self.quality_min is None else self.quality_min
        self.quality_max = hi if self.quality_max is None else self.quality_max
        if not 0 <= self.quality_min <= self.quality_max <= 100:
            raise CaecError(
                f"{self.inner} knob values must be 0 <= min <= max <= 100, got {self.quality_min}..{self.quality_max}"
            )
        if self.enhance and self.inner != "jpeg":
            raise CaecError("--enhance trains the JPEG artifact remover: it takes no --inner")
        if self.init_com_only and self.init is None:
            raise CaecError("--init-com-only needs --init MODEL")
        if self.patch_size < 4 or self.patch_size % 2:
            raise CaecError(f"--patch-size must be even and at least 4, got {self.patch_size}")
        for name in ("batch_size", "steps", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise CaecError(f"--{name.replace('_', '-')} must be positive")
        if self.turn < 0:
            raise CaecError("--turn must be 0 or more")
        if self.com_lr_scale < 0 or self.anchor < 0:
            raise CaecError("--com-lr-scale and --anchor must be 0 or more")

    def record(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items() if k != "log"}


def _config_key(cfg: TrainConfig) -> dict[str, Any]:
    # what a checkpoint must share with the run that resumes it (steps and the budget may change)
    d = cfg.record()
    for k in ("data_dir", "output", "steps", "minutes", "resume", "threads", "checkpoint_every", "max_images"):
        d.pop(k)
    return d


def to_uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    """(N, C, h, w) floats in [0, 1] -> (N, h, w, C) uint8, as the codec rounds its compact image."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def from_uint8_nhwc(a: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(a).to(device).permute(0, 3, 1, 2).float() / 255.0


def turn_of(cfg: TrainConfig, step: int) -> str:
    """'both', 'rec' or 'com': which network step ``step`` trains."""
    if cfg.turn == 0:
        return "both"
    return "rec" if (step // cfg.turn) % 2 == 0 else "com"


def updates_before(cfg: TrainConfig, part: str, step: int) -> int:
    """How many of steps 0..step-1 updated ``part`` ('rec' or 'com')."""
    if cfg.turn == 0:
        return step
    full, rest = divmod(step, 2 * cfg.turn)
    first = part == "rec"  # RecCNN takes the first turn of each pair
    return full * cfg.turn + (min(rest, cfg.turn) if first else max(rest - cfg.turn, 0))


def _restore_update_counts(cfg: TrainConfig, net: ComRecPair, opt: torch.optim.Optimizer, step: int) -> None:
    """Adam's bias correction counts each parameter's own updates: in turns, each network's
    are fewer than the steps (trainkit.restore sets the steps)."""
    for part, module in (("rec", net.rec), ("com", net.com)):
        n = updates_before(cfg, part, step)
        for p in module.parameters():
            if p in opt.state:
                opt.state[p]["step"] = torch.tensor(float(n))


def train_step(
    net: ComRecPair,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    qualities: np.ndarray,
    which: str,
    anchor: float = 1.0,
    inner_codec: str = "jpeg",
    world: int = 1,
) -> tuple[float, float]:
    """One step on RGB crops ``x``; returns (MSE of the output, MSE of the plain upscale)."""
    for p in net.rec.parameters():
        p.requires_grad_(which != "com")
    with torch.set_grad_enabled(which != "rec"):
        compact = net.compact(x)
    decoded = from_uint8_nhwc(inner.roundtrip(to_uint8_nhwc(compact), qualities, inner_codec), x.device)
    # the codec as the identity backwards: forward the real decoded image, pass the gradient to
    # ComCNN through the clipping to [0, 1] that the 8-bit compact image makes (an identity that
    # ignored it let values outside, which JPEG never sees, run off to hundreds); a penalty on
    # what lies outside brings such values back
    inside = compact.clamp(0, 1)
    through = decoded if which == "rec" else inside + (decoded - inside).detach()
    out = net.reconstruct(through)
    loss = F.mse_loss(out, x)
    if which == "rec":
        opt_loss = loss
    else:
        outside = (compact - inside).square().mean()
        drift = (compact - F.avg_pool2d(x, 2)).square().mean()
        opt_loss = loss + outside + anchor * drift
    opt.zero_grad(set_to_none=True)
    opt_loss.backward()
    trainkit.average_gradients(net, world)
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    for p in net.rec.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        plain = F.mse_loss(F.interpolate(decoded, scale_factor=2, mode="bicubic", align_corners=False), x)
    return float(loss.detach()), float(plain)


def enhance_step(
    net: JpegEnhancer, opt: torch.optim.Optimizer, x: torch.Tensor, qualities: np.ndarray, world: int = 1
) -> tuple[float, float]:
    """One step of the JPEG enhancer on RGB crops ``x``: (MSE of its output, MSE of the JPEG)."""
    decoded = from_uint8_nhwc(inner.roundtrip(to_uint8_nhwc(x), qualities), x.device)
    loss = F.mse_loss(net(decoded), x)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    trainkit.average_gradients(net, world)
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return float(loss.detach()), float(F.mse_loss(decoded, x))


def _init_from(net: ComRecPair, model: str, com_only: bool) -> None:
    """``net`` starts from a trained model's ComCNN (and RecCNN unless ``com_only``)."""
    from cae_codec.weights import load_model

    start = load_model(model).network
    if not isinstance(start, ComRecPair):
        raise CaecError(f"--init {model}: not a comcnn model")
    try:
        net.com.load_state_dict(start.com.state_dict())
        if not com_only:
            net.rec.load_state_dict(start.rec.state_dict())
    except RuntimeError as e:
        raise CaecError(f"--init {model}: its networks are of another size ({str(e).splitlines()[0]})") from None


def psnr(mse: float) -> float:
    return 10 * math.log10(1 / max(mse, 1e-12))


def train(cfg: TrainConfig) -> bytes:
    """Train, write ``cfg.output``; returns its weights hash."""
    started = time.perf_counter()  # --minutes counts from here: loading the images is part of the wait
    # under torchrun, processes on the CPU (gloo): the inner codec runs on the host every step,
    # and the networks are small enough for it; each process draws its own crops (seed, rank, step)
    world, rank, local = trainkit.dist_info()
    device = trainkit.join_processes(torch.device("cpu"), world, local)
    main = rank == 0
    log = cfg.log if main else (lambda s: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)  # the same initial weights in every process
    files = trainkit.list_images(cfg.data_dir)[: cfg.max_images]
    log(f"loading {len(files)} images from {cfg.data_dir}")
    sampler = trainkit.PatchSampler([read_image_rgb8(f) for f in files], cfg.patch_size, device)
    net: ComRecPair | JpegEnhancer
    if cfg.enhance:
        net = JpegEnhancer(EnhanceConfig(3, cfg.rec_layers, cfg.rec_channels)).to(device)
        groups = [{"params": net.parameters(), "scale": 1.0}]
    else:
        net = ComRecPair(ComCnnConfig(3, cfg.rec_layers, cfg.rec_channels, cfg.inner)).to(device)
        if cfg.init is not None:
            _init_from(net, cfg.init, cfg.init_com_only)
        groups = [
            {"params": net.rec.parameters(), "scale": 1.0},
            {"params": net.com.parameters(), "scale": cfg.com_lr_scale},
        ]
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    ckpt = trainkit.checkpoint_path(cfg.output)
    if main:
        cfg.output.parent.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"step": 0, "samples": 0, "seconds": 0.0, "run_id": uuid.uuid4().hex, "history": []}
    if cfg.resume and ckpt.is_file():
        tensors, saved, config = trainkit.read_checkpoint(ckpt)
        if config != json.loads(json.dumps(_config_key(cfg))):
            raise CaecError(f"{ckpt} is a checkpoint of another configuration; delete it or change -o")
        state = saved
        trainkit.restore(ckpt, tensors, net, opt, state["step"])
        if isinstance(net, ComRecPair):
            _restore_update_counts(cfg, net, opt, state["step"])
        log(f"resumed from {ckpt} at step {state['step']}")
    if "planned_steps" in state:
        cfg.steps = int(state["planned_steps"])  # a time-budgeted run resumes to the same end
    budget = None
    if cfg.minutes and "planned_steps" not in state:
        budget = trainkit.TimeBudget(cfg, state["step"], device, started, world)
    run_start, seconds_before = time.perf_counter(), state["seconds"]
    t_last, s_last = run_start, state["step"]
    recent: list[tuple[float, float]] = []
    net.train()
    if isinstance(net, ComRecPair) and cfg.com_lr_scale == 0:
        # ComCNN held exactly as it starts: its batch norm's running statistics too (which train
        # mode would move even at a learning rate of 0), and no gradient is computed for it
        net.com.eval()
        net.com.requires_grad_(False)
    while state["step"] < cfg.steps:
        step = state["step"]
        g = trainkit.step_generator(cfg.seed, rank, step, device)
        x = sampler.sample(cfg.batch_size, g)
        assert cfg.quality_min is not None and cfg.quality_max is not None  # set by __post_init__
        qualities = torch.randint(cfg.quality_min, cfg.quality_max + 1, (cfg.batch_size,), generator=g).numpy()
        for group in opt.param_groups:
            group["lr"] = group["scale"] * trainkit.cosine_lr(cfg.lr, step, cfg.steps)
        if isinstance(net, JpegEnhancer):
            recent.append(enhance_step(net, opt, x, qualities, world))
        else:
            recent.append(train_step(net, opt, x, qualities, turn_of(cfg, step), cfg.anchor, cfg.inner, world))
        state["step"] = step + 1
        state["samples"] += cfg.batch_size * world
        if budget is not None:
            budget.plan(state["step"])
        if cfg.minutes and state["step"] >= cfg.steps:
            state["planned_steps"] = cfg.steps  # finished on time: a resumed run stops here too
        done = state["step"] == cfg.steps
        if main and (state["step"] % LOG_EVERY == 0 or done):
            now = time.perf_counter()
            out, plain = (float(np.mean(v)) for v in zip(*recent, strict=True))
            rate = (state["step"] - s_last) * cfg.batch_size * world / max(now - t_last, 1e-9)
            t_last, s_last, recent = now, state["step"], []
            state["history"].append(
                {"step": state["step"], "psnr": round(psnr(out), 3), "upscale": round(psnr(plain), 3)}
            )
            log(
                f"caec train comcnn: step {state['step']}/{cfg.steps}, PSNR {psnr(out):.2f} dB "
                f"({'JPEG' if cfg.enhance else inner.info(cfg.inner).label + ' + bicubic'} alone "
                f"{psnr(plain):.2f}), {rate:.1f} crops/s"
            )
        if main and (state["step"] % cfg.checkpoint_every == 0 or done):
            state["seconds"] = seconds_before + time.perf_counter() - run_start
            trainkit.save_checkpoint(ckpt, net, opt, state, {}, _config_key(cfg))
    state["seconds"] = seconds_before + time.perf_counter() - run_start
    net.eval()
    digest = _save(cfg, net, state, world) if main else b""
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return digest


def _save(cfg: TrainConfig, net: ComRecPair | JpegEnhancer, state: dict[str, Any], world: int) -> bytes:
    meta = {
        "run_id": state["run_id"],
        "steps": state["step"],
        "samples": state["samples"],
        "patch_size": cfg.patch_size,
        "seconds": round(state["seconds"], 1),
        "device": f"cpu ({torch.get_num_threads()} threads)" + (f" x{world}" if world > 1 else ""),
        "command": trainkit.command_line(),
        "train_config": cfg.record(),
        "inner_codec": cfg.inner,
        "torch": torch.__version__,
        "history": state["history"][-50:],
    }
    digest = save_network(cfg.output, net, ENHANCE_ARCHITECTURE if cfg.enhance else ARCHITECTURE, meta)
    trainkit.checkpoint_path(cfg.output).unlink(missing_ok=True)
    cfg.log(
        f"wrote {cfg.output} (weights hash {digest.hex()}), {state['samples']:,} crops of "
        f"{cfg.patch_size}x{cfg.patch_size} seen, {state['seconds'] / 60:.1f} min"
    )
    return digest
