"""Training of the MNIST deep autoencoder: greedy CD-1 pre-training of the RBM stack, unrolling,
then fine-tuning of the whole autoencoder with Adam on binary cross-entropy (`caec train
mnist-dae`).

Seeded: the RBMs draw from one generator seeded with ``seed``; fine-tuning epoch ``e`` shuffles
with a generator seeded from (seed, e), so a run resumed from its checkpoint (written after
pre-training and after every fine-tuning epoch) ends with the weights an uninterrupted run makes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cae_codec import trainkit
from cae_codec.errors import CaecError
from cae_codec.mnistdae.data import PIXELS, load_split, psnr_of_error
from cae_codec.mnistdae.network import ARCHITECTURE, DaeConfig, DeepAutoencoder
from cae_codec.mnistdae.rbm import RbmSchedule, pretrain_stack, unroll
from cae_codec.weights import save_network

# the code's quantization range per unit: these quantiles of the training codes (a few outliers
# are clipped rather than coarsening every other code's levels)
RANGE_QUANTILES = (0.001, 0.999)
# the network's weights are stored as float16 (half the file); the code range stays float32
HALF_PREFIXES = ("encoder.", "decoder.")
EVAL_BATCH = 2000
Log = Callable[[str], None]


@dataclass
class TrainConfig:
    data: Path
    output: Path
    code: int = 196
    protocol: str = "design"
    hidden: tuple[int, ...] = (1000, 500)
    linear_code: bool = False
    pretrain: bool = True
    rbm: RbmSchedule = field(default_factory=RbmSchedule)
    epochs: int = 30
    batch: int = 100
    lr: float = 1e-3
    seed: int = 0
    train_images: int | None = None  # fewer than the protocol's (tests, quick looks)
    test_images: int | None = None
    resume: bool = True

    @property
    def sizes(self) -> tuple[int, ...]:
        return (PIXELS, *self.hidden, self.code)

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"], d["output"] = str(self.data), str(self.output)
        return d


def as_unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0)


@torch.no_grad()
def codes_of(net: DeepAutoencoder, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([net.encode(x[i : i + EVAL_BATCH]) for i in range(0, len(x), EVAL_BATCH)])


@torch.no_grad()
def squared_error(net: DeepAutoencoder, x: torch.Tensor) -> float:
    """The paper's measure on the real-valued code: squared error summed over the pixels,
    averaged over the images."""
    total = 0.0
    for i in range(0, len(x), EVAL_BATCH):
        b = x[i : i + EVAL_BATCH]
        total += float(((net(b) - b) ** 2).sum())
    return total / len(x)


def fit_code_range(net: DeepAutoencoder, x: torch.Tensor) -> None:
    codes = codes_of(net, x)
    lo, hi = torch.quantile(codes, torch.tensor(RANGE_QUANTILES), dim=0)
    # a unit that never varies still gets a range of non-zero width
    hi = torch.maximum(hi, lo + 1e-3)
    net.code_lo.copy_(lo)  # type: ignore[operator]
    net.code_hi.copy_(hi)  # type: ignore[operator]


def _as_stored(net: DeepAutoencoder) -> None:
    """Round the layers to float16 as the weights file stores them, so that what is measured
    and what fits the code range is the shipped network."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.startswith(HALF_PREFIXES):
                p.copy_(p.half().float())


def _config_key(cfg: TrainConfig) -> dict[str, Any]:
    # what a checkpoint must share with the run that resumes it (epochs may grow)
    d = cfg.record()
    for k in ("output", "data", "epochs", "resume"):
        d.pop(k)
    return d


def train(cfg: TrainConfig, log: Log = print, batch_progress: Callable[[int, int], None] | None = None) -> bytes:
    """Train, write ``cfg.output``; returns its weights hash."""
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    split = load_split(cfg.data, cfg.protocol)
    train_x = as_unit(split.train[: cfg.train_images])
    test_x = as_unit(split.test[: cfg.test_images])
    network = "-".join(map(str, cfg.sizes)) + (" (linear code)" if cfg.linear_code else "")
    log(f"{cfg.protocol} protocol: {len(train_x)} training, {len(test_x)} test images; network {network}")
    net = DeepAutoencoder(DaeConfig(cfg.sizes, cfg.linear_code))
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ckpt = trainkit.checkpoint_path(cfg.output)
    state: dict[str, Any] = {"epoch": 0, "pretrain_seconds": 0.0, "finetune_seconds": 0.0, "history": []}
    if cfg.resume and ckpt.is_file():
        tensors, state, saved_config = trainkit.read_checkpoint(ckpt)
        if saved_config != json.loads(json.dumps(_config_key(cfg))):
            raise CaecError(f"{ckpt} is a checkpoint of another configuration; delete it or change -o")
        trainkit.restore(ckpt, tensors, net, opt, state["epoch"] * -(-len(train_x) // cfg.batch))
        log(f"resumed from {ckpt} after fine-tuning epoch {state['epoch']}")
    elif cfg.pretrain:
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(cfg.seed)
        stack = pretrain_stack(
            train_x,
            cfg.sizes,
            cfg.linear_code,
            cfg.rbm,
            gen,
            lambda layer, epoch, err: log(
                f"RBM {layer} ({cfg.sizes[layer - 1]}-{cfg.sizes[layer]}) epoch {epoch}/{cfg.rbm.epochs}: "
                f"reconstruction error {err:.3f}"
            ),
        )
        unroll(stack, net)
        state["pretrain_seconds"] = time.perf_counter() - t0
        state["history"].append({"epoch": 0, "test_error": squared_error(net, test_x)})
        log(f"unrolled: test error {state['history'][-1]['test_error']:.3f} ({state['pretrain_seconds']:.0f} s)")
        trainkit.save_checkpoint(ckpt, net, opt, state, {}, _config_key(cfg))
    batches = -(-len(train_x) // cfg.batch)
    total = cfg.epochs * batches
    for epoch in range(state["epoch"], cfg.epochs):
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch + 1)
        order = torch.randperm(len(train_x), generator=gen)
        net.train()
        loss_sum = 0.0
        for b in range(batches):
            step = epoch * batches + b
            for group in opt.param_groups:
                group["lr"] = trainkit.cosine_lr(cfg.lr, step, total)
            x = train_x[order[b * cfg.batch : (b + 1) * cfg.batch]]
            loss = F.binary_cross_entropy_with_logits(net.decode_logits(net.encode(x)), x, reduction="sum") / len(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(x)
            if batch_progress is not None:
                batch_progress(step + 1, total)
        net.eval()
        state["epoch"] = epoch + 1
        state["finetune_seconds"] += time.perf_counter() - t0
        err = squared_error(net, test_x)
        state["history"].append({"epoch": epoch + 1, "test_error": err})
        trainkit.save_checkpoint(ckpt, net, opt, state, {}, _config_key(cfg))
        log(
            f"fine-tuning epoch {epoch + 1}/{cfg.epochs}: cross-entropy {loss_sum / len(train_x):.2f}, "
            f"test error {err:.3f} ({psnr_of_error(err):.2f} dB), {time.perf_counter() - t0:.0f} s"
        )
    net.eval()
    _as_stored(net)
    fit_code_range(net, train_x)
    err = squared_error(net, test_x)
    meta = {
        "run_id": uuid.uuid4().hex,
        "steps": cfg.epochs * batches,
        "samples": cfg.epochs * len(train_x),
        "seconds": round(time.perf_counter() - started, 1),
        "device": "cpu",
        "command": trainkit.command_line(),
        "config": cfg.record(),
        "pretrain_seconds": round(state["pretrain_seconds"], 1),
        "finetune_seconds": round(state["finetune_seconds"], 1),
        "test_error": round(err, 4),
        "test_images": len(test_x),
        "history": [{"epoch": h["epoch"], "test_error": round(h["test_error"], 4)} for h in state["history"]],
    }
    digest = save_network(cfg.output, net, ARCHITECTURE, meta, half=HALF_PREFIXES)
    ckpt.unlink(missing_ok=True)
    log(
        f"wrote {cfg.output}: test error {err:.3f} per image ({psnr_of_error(err):.2f} dB) on the real-valued code, "
        f"{meta['seconds']:.0f} s in all"
    )
    return digest
