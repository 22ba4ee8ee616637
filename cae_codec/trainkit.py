"""The training kit every codec's training shares: the images as one tensor on the device with
random crops by one gather, seeding (every random number of step ``s`` from a generator seeded
with (seed, rank, s), so a resumed run continues exactly as an uninterrupted one), the
learning-rate schedule, checkpoints, the ``--minutes`` budget, processes under ``torchrun``
(DistributedDataParallel: the environment variables it sets are all this reads) and the
command line a weights file records. Each codec brings its own training step.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from cae_codec.errors import CaecError, ModelError
from cae_codec.imageio import IMAGE_SUFFIXES


class Budgeted(Protocol):
    """What a time budget reads and sets of a training configuration."""

    steps: int
    minutes: float | None


class PatchSampler:
    """All training images in one padded (N, 3, H, W) uint8 tensor; batches by one gather."""

    def __init__(
        self,
        images: list[np.ndarray],
        patch: int,
        device: torch.device,
        convert: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
    ) -> None:
        usable = [im for im in images if min(im.shape[:2]) >= patch]
        if not usable:
            raise CaecError(f"no training image is at least {patch}x{patch} pixels")
        hmax = max(im.shape[0] for im in usable)
        wmax = max(im.shape[1] for im in usable)
        data = torch.zeros(len(usable), 3, hmax, wmax, dtype=torch.uint8)
        for i, im in enumerate(usable):
            data[i, :, : im.shape[0], : im.shape[1]] = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)
        self.data = data.to(device)
        self.sizes = torch.tensor([im.shape[:2] for im in usable], device=device)
        self.patch = patch
        self.device = device
        self.convert = convert  # RGB in [0,1] to what the codec's network takes (the CAE: YCbCr)
        # larger images hold more distinct crops: sample them proportionally to crop positions
        room = (self.sizes - patch + 1).prod(dim=1).double()
        self.weights = room / room.sum()

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def sample(self, batch: int, gen: torch.Generator) -> torch.Tensor:
        """(batch, 3, P, P) float crops, RGB in [0,1] through ``convert``."""
        p, dev = self.patch, self.device
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=gen)
        room = (self.sizes[idx] - p + 1).double()
        oy = (torch.rand(batch, device=dev, generator=gen, dtype=torch.float64) * room[:, 0]).long()
        ox = (torch.rand(batch, device=dev, generator=gen, dtype=torch.float64) * room[:, 1]).long()
        flip = torch.rand(batch, device=dev, generator=gen) < 0.5
        ar = torch.arange(p, device=dev)
        cols = torch.where(flip[:, None], p - 1 - ar[None, :], ar[None, :]) + ox[:, None]
        rows = ar[None, :] + oy[:, None]
        ch = torch.arange(3, device=dev)
        crops = self.data[
            idx[:, None, None, None], ch[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]
        ]
        return self.convert(crops.float() / 255.0)


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise CaecError(f"training data folder {folder} does not exist")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CaecError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return files


def dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def join_processes(device: torch.device, world: int, local: int) -> torch.device:
    """Under torchrun (``world`` > 1, from :func:`dist_info`): this process's GPU of its node,
    and the process group joined; the device to train on."""
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def average_gradients(module: torch.nn.Module, world: int) -> None:
    """Data parallelism by hand, after ``backward`` under torchrun: each gradient averaged over
    the processes, and the buffers (batch norm's running statistics) taken from the first, as
    DistributedDataParallel does. For a training step that is not one forward call, which DDP's
    wrapper needs (comcnn's has a standard codec between its two networks, and its turns train
    one network or the other); with the same initial weights on every process (the same seed),
    the weights stay the same everywhere."""
    if world <= 1:
        return
    for p in module.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)
    for b in module.buffers():
        dist.broadcast(b, 0)


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63))
    return g


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """Cosine decay from lr to lr/10 over the run: fast early progress, a calm finish."""
    t = min(step / max(steps, 1), 1.0)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def checkpoint_path(output: Path) -> Path:
    return output.with_name(output.name + ".ckpt.safetensors")


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    state: dict[str, Any],
    extra: dict[str, torch.Tensor],
    config: dict[str, Any],
) -> None:
    """Weights, Adam moments, the training state and the network's config, written atomically."""
    tensors = {"model." + k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({k: v.detach().cpu().contiguous() for k, v in extra.items()})
    names = [n for n, _ in model.named_parameters()]
    for i, p in enumerate(model.parameters()):
        s = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in s:
                tensors[f"adam.{names[i]}.{key}"] = s[key].detach().cpu().contiguous()
    meta = {"state": json.dumps(state), "config": json.dumps(config)}
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """The tensors, training state and config that :func:`save_checkpoint` wrote, from one read
    of the file; an unreadable one is one CaecError line."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        return tensors, json.loads(meta["state"]), json.loads(meta["config"])
    except (SafetensorError, OSError, KeyError, ValueError) as e:
        raise CaecError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None


def restore(
    path: Path, tensors: dict[str, torch.Tensor], model: torch.nn.Module, opt: torch.optim.Optimizer, step: int
) -> None:
    """Model weights and Adam moments from a checkpoint's tensors."""
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    except RuntimeError as e:
        raise ModelError(f"cannot resume from {path}: {str(e).splitlines()[0]}") from None
    dev = next(model.parameters()).device
    for name, p in model.named_parameters():
        if f"adam.{name}.exp_avg" in tensors:
            opt.state[p] = {
                "step": torch.tensor(float(step)),
                "exp_avg": tensors[f"adam.{name}.exp_avg"].to(dev),
                "exp_avg_sq": tensors[f"adam.{name}.exp_avg_sq"].to(dev),
            }


def denormals_flushed() -> bool:
    return bool((torch.tensor(1e-40) * 1.0).item() == 0.0)  # 1e-40 is a float32 subnormal


class TimeBudget:
    """Turns ``--minutes`` into a step total, so the learning-rate schedule still ends cleanly,
    and keeps the run within it from the first step.

    The budget counts from the start of the command. The total is planned from the speed since
    the first step (which carries the start-up) after steps 2, 4, 8... of the run (torch.compile's
    first steps make these err short), from the speed over steps 20..120 once there, then every
    ``REPLAN`` steps over everything since (a GPU shared with other jobs slows down or speeds up
    as they come and go), and again whenever the run reaches its planned total: a plan that
    erred short costs no time, and the run stops when no step is left before the deadline. A
    single process also stops at the first step that ends past the deadline; the processes of a
    torchrun run take the first one's plans, so that all stop at the same step. The total never
    exceeds ``--steps``; it is final once the run reaches it. What a codec does after the loop
    (the CAE's PCA fit) is bounded by the codec.
    """

    WARMUP, TIMED, REPLAN = 20, 100, 500

    def __init__(
        self,
        cfg: Budgeted,
        first_step: int,
        device: torch.device,
        started: float,
        world: int,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.cfg, self.first, self.device, self.world, self.clock = cfg, first_step, device, world, clock
        self.limit = cfg.steps
        self.deadline = started + cfg.minutes * 60  # type: ignore[operator]
        self.t1 = self.t0 = 0.0  # the clock after the first step, and after WARMUP steps

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # rarely: the GPU's queue must drain to be timed
        return self.clock()

    def plan(self, step: int) -> bool:
        """Sets ``cfg.steps`` when it is time to (re)plan; True then."""
        done = step - self.first
        if done == 1:
            self.t1 = self._now()
        if done == self.WARMUP:
            self.t0 = self._now()
        timed = done - self.WARMUP
        steady = timed >= self.TIMED
        due = (timed == self.TIMED or timed % self.REPLAN == 0) if steady else done & (done - 1) == 0
        late = self.world == 1 and self.clock() >= self.deadline  # the host's clock: no wait for a GPU
        # the first step alone says nothing of the speed (it carries the start-up): plans begin after the second
        if not (late or (done >= 2 and (due or step >= self.cfg.steps))):
            return False
        now = self._now()
        if late:
            steps = step
        else:
            per_step = (now - self.t0) / timed if steady else (now - self.t1) / (done - 1)
            steps = max(step, min(self.limit, step + int((self.deadline - now) / per_step)))
        if self.world > 1:
            total = torch.tensor([steps], dtype=torch.int64, device=self.device)
            dist.broadcast(total, 0)
            steps = int(total.item())
        self.cfg.steps = steps
        return True


def command_line() -> str:
    """The `caec train ...` line that made the weights, from the entry point or `python -m cae_codec`."""
    entry = Path(sys.argv[0]).name if sys.argv else ""
    if entry in ("caec", "__main__.py"):
        return " ".join(["caec", *sys.argv[1:]])
    return ""
