"""Training of the recurrent codec (`caec train rnn DATA`): random 32x32 crops, every pass
unrolled, L1 on the residual after each pass summed over the passes (Toderici et al. 2017),
the binarizer's sign drawn at random in training. Seeded per step (trainkit), checkpointed,
resumable, time-boxed by ``--minutes``, and under torchrun one process per device (DDP).

After the network, the entropy model's context tables are fitted on the bits the trained
network makes of training crops (cae_codec.rnn.entropy) and stored in the same weights file.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from cae_codec import trainkit
from cae_codec.errors import CaecError
from cae_codec.imageio import read_image_rgb8
from cae_codec.rnn.network import ARCHITECTURE, RecurrentCodec, RnnConfig
from cae_codec.weights import load_model, run_record, save_network

Log = Callable[[str], None]
LOG_EVERY = 100
# the entropy model is fitted on larger crops than the network: their bits have neighbours
ENTROPY_PATCH = 64


@dataclass
class TrainConfig:
    data: Path
    output: Path
    network: RnnConfig
    patch: int = 32
    batch: int = 16
    lr: float = 1e-3
    steps: int = 20000
    minutes: float | None = None
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    max_images: int | None = None
    checkpoint_every: int = 200
    entropy_crops: int = 4096  # crops whose bits fit the entropy model after training (0: none)
    init: Path | None = None  # start from these weights (same architecture)
    resume: bool = True

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("data", "output", "init"):
            d[k] = None if d[k] is None else str(d[k])
        return d


def _config_key(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must share with the run that resumes it (the budget may change)."""
    d = cfg.record()
    for k in ("output", "data", "steps", "minutes", "resume", "threads", "device", "checkpoint_every", "entropy_crops"):
        d.pop(k)
    return json.loads(json.dumps(d))  # tuples as lists, as read back


def loss_of(residuals: list[torch.Tensor]) -> torch.Tensor:
    """L1 of the residual after each pass, summed over the passes (mean over pixels)."""
    return torch.stack([r.abs().mean() for r in residuals]).sum()


def train(cfg: TrainConfig, log: Log = print) -> bytes:
    """Train, write ``cfg.output`` (network and entropy tables); returns its weights hash."""
    threads = torch.get_num_threads()
    try:
        return _train(cfg, log)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: TrainConfig, log: Log) -> bytes:
    from cae_codec.api import pick_device

    started = time.perf_counter()
    world, rank, local = trainkit.dist_info()
    device = trainkit.join_processes(pick_device(cfg.device), world, local)
    main = rank == 0
    say = log if main else (lambda s: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    files = trainkit.list_images(cfg.data)[: cfg.max_images]
    say(f"loading {len(files)} images from {cfg.data}")
    images = [read_image_rgb8(f) for f in files]
    sampler = trainkit.PatchSampler(images, cfg.patch, device)

    ckpt = trainkit.checkpoint_path(cfg.output)
    state: dict[str, Any] = {"step": 0, "samples": 0, "seconds": 0.0, "history": [], "run_id": uuid.uuid4().hex}
    resumed = None
    if cfg.resume and ckpt.exists():
        tensors, ckpt_state, ckpt_config = trainkit.read_checkpoint(ckpt)
        if ckpt_config != _config_key(cfg):
            raise CaecError(f"{ckpt} is a checkpoint of another configuration; delete it or change -o")
        resumed, state = tensors, ckpt_state
    net = RecurrentCodec(cfg.network)
    if resumed is None and cfg.init is not None:
        base = load_model(cfg.init)
        if base.architecture != ARCHITECTURE or base.config != net.config_dict():
            raise CaecError(f"--init {cfg.init} is not a {ARCHITECTURE} network of this configuration")
        net.load_state_dict(base.network.state_dict())
        prior = base.metadata
        state["history"] = [*prior.get("history", []), run_record(prior)] if prior else []
        say(f"initialised from {cfg.init}")
    net.to(device)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    if resumed is not None:
        trainkit.restore(ckpt, resumed, net, opt, state["step"])
        say(f"resumed from {ckpt} at step {state['step']}")
    if "planned_steps" in state:
        cfg.steps = int(state["planned_steps"])
    model: torch.nn.Module = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[local] if device.type == "cuda" else None)
    if main:
        cfg.output.parent.mkdir(parents=True, exist_ok=True)
    c = cfg.network
    say(
        f"network: {c.cell} cells, {c.mode}, encoder {c.encoder}, decoder {c.decoder}, {c.bits} bits per 16x16 "
        f"block ({c.bits / 256:g} bpp) x {c.passes} passes; {sum(p.numel() for p in net.parameters()):,} parameters"
    )
    budget = None
    if cfg.minutes and "planned_steps" not in state:
        budget = trainkit.TimeBudget(cfg, state["step"], device, started, world)  # type: ignore[arg-type]
    run_start, seconds_before = time.perf_counter(), state["seconds"]
    t_log, s_log = run_start, state["step"]
    recent: list[torch.Tensor] = []
    net.train()
    while state["step"] < cfg.steps:
        step = state["step"]
        g = trainkit.step_generator(cfg.seed, rank, step, device)
        x = sampler.sample(cfg.batch, g)
        for group in opt.param_groups:
            group["lr"] = trainkit.cosine_lr(cfg.lr, step, cfg.steps)
        residuals = model(x, None, g)
        loss = loss_of(residuals)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        recent.append(torch.stack([r.detach().abs().mean() for r in residuals]))
        state["step"] = step + 1
        state["samples"] += cfg.batch * world
        if budget is not None:
            budget.plan(state["step"])
        if cfg.minutes and state["step"] >= cfg.steps:
            state["planned_steps"] = cfg.steps  # a resumed run stops here too
        done = state["step"]
        if main and (done % LOG_EVERY == 0 or done == cfg.steps):
            now = time.perf_counter()
            per_pass = torch.stack(recent).mean(0) * 255
            recent.clear()
            show = ", ".join(f"{v:.2f}" for v in per_pass[:: max(1, len(per_pass) // 8)].tolist())
            speed = (done - s_log) * cfg.batch * world / (now - t_log)
            say(
                f"caec train rnn: step {done}/{cfg.steps}, loss {float(per_pass.sum()) / 255:.4f}, "
                f"L1 after passes 1,3,..: {show} (of 255), {speed:.1f} crops/s"
            )
            t_log, s_log = now, done
        if main and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            state["seconds"] = seconds_before + time.perf_counter() - run_start
            trainkit.save_checkpoint(ckpt, net, opt, state, {}, _config_key(cfg))
    state["seconds"] = seconds_before + time.perf_counter() - run_start
    digest = b""
    if main:
        digest = _finish(cfg, net, images, state, device, world, say)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return digest


def _finish(
    cfg: TrainConfig,
    net: RecurrentCodec,
    images: list[np.ndarray],
    state: dict[str, Any],
    device: torch.device,
    world: int,
    log: Log,
) -> bytes:
    from cae_codec.rnn.entropy import fit_tables

    net.eval()
    t0 = time.perf_counter()
    extra: dict[str, torch.Tensor] = {}
    if cfg.entropy_crops > 0:
        sampler = trainkit.PatchSampler(images, ENTROPY_PATCH, device)
        extra = fit_tables(net, sampler, cfg.entropy_crops, cfg.seed)
        crops = f"{cfg.entropy_crops} {ENTROPY_PATCH}x{ENTROPY_PATCH} crops"
        log(f"entropy model fitted on the bits of {crops} ({time.perf_counter() - t0:.0f} s)")
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    meta = {
        "run_id": state["run_id"],
        "steps": state["step"],
        "samples": state["samples"],
        "patch_size": cfg.patch,
        "seconds": round(state["seconds"], 1),
        "entropy_seconds": round(time.perf_counter() - t0, 1),
        "device": f"{dev} x{world}",
        "train_config": cfg.record(),
        "command": trainkit.command_line(),
        "torch": torch.__version__,
        "history": state.get("history", []),
    }
    digest = save_network(cfg.output, net, ARCHITECTURE, meta, extra)
    trainkit.checkpoint_path(cfg.output).unlink(missing_ok=True)
    log(f"wrote {cfg.output} ({state['samples']:,} crops, {state['seconds'] / 60:.1f} min)")
    print(f"weights hash {digest.hex()[:16]}", file=sys.stderr)
    return digest
