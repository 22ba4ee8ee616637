"""`caec train rnn DATA ...`: the recurrent codec's training command (the `caec train`
dispatcher in cae_codec.cli hands this codec's arguments here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cae_codec.cli.kit import CONTEXT_SETTINGS, CaecCommand, fail
from cae_codec.errors import CaecError

train_app = typer.Typer(add_completion=False, context_settings=CONTEXT_SETTINGS, rich_markup_mode=None)


def _widths(text: str, count: int, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise fail(f"{name} takes {count} integers separated by commas, got {text!r}") from None
    if len(values) != count:
        raise fail(f"{name} takes {count} widths, got {len(values)}")
    return values


@train_app.command(cls=CaecCommand)
def train(
    data: Annotated[Path, typer.Argument(help="Folder of training images.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Weights to write, e.g. models/NAME.safetensors.")],
    cell: Annotated[str, typer.Option(help="Recurrent cell: gru or lstm.")] = "gru",
    mode: Annotated[
        str, typer.Option(help="Reconstruction: oneshot, additive, or scaled (additive with residual scaling).")
    ] = "additive",
    encoder: Annotated[
        str, typer.Option(help="Encoder widths: conv, then the three cells (the paper: 64,256,512,512).")
    ] = "8,32,64,64",
    decoder: Annotated[
        str, typer.Option(help="Decoder widths: conv, then the four cells (the paper: 512,512,512,256,128).")
    ] = "64,64,64,32,16",
    bits: Annotated[int, typer.Option(help="Bits per 16x16 block and pass (32: 1/8 bpp a pass).")] = 32,
    passes: Annotated[int, typer.Option(help="Passes unrolled in training: the most a file holds.")] = 16,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step.")] = 16,
    patch: Annotated[int, typer.Option(help="Crop size (a multiple of 16).")] = 32,
    lr: Annotated[float, typer.Option(help="Peak Adam learning rate (cosine decay to a tenth).")] = 1e-3,
    steps: Annotated[int, typer.Option(help="Training steps (with --minutes: at most this many).")] = 20000,
    minutes: Annotated[float | None, typer.Option(help="Time budget: the steps that fit, from the start.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads (default: torch's).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    max_images: Annotated[int | None, typer.Option("--max-images", help="Use only the first N images.")] = None,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")] = 200,
    entropy_crops: Annotated[
        int, typer.Option("--entropy-crops", help="64x64 crops whose bits fit the entropy model (0: none).")
    ] = 1024,
    init: Annotated[Path | None, typer.Option(help="Start from these weights (same configuration).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--restart", help="Continue from OUTPUT's checkpoint if there.")
    ] = True,
) -> None:
    """Train the recurrent progressive codec (Toderici et al. 2017) on random crops."""
    from cae_codec.rnn.network import RnnConfig

    for name, value in (("--batch-size", batch_size), ("--steps", steps + 1), ("--checkpoint-every", checkpoint_every)):
        if value < 1:
            raise fail(f"{name} must be positive")
    if patch < 16 or patch % 16:
        raise fail(f"--patch must be a multiple of 16, got {patch}")
    if minutes is not None and minutes <= 0:
        raise fail("--minutes must be positive")
    if entropy_crops < 0:
        raise fail("--entropy-crops must be 0 or more")
    try:
        net = RnnConfig(
            encoder=_widths(encoder, 4, "--encoder"),  # type: ignore[arg-type]
            decoder=_widths(decoder, 5, "--decoder"),  # type: ignore[arg-type]
            bits=bits,
            cell=cell,
            mode=mode,
            passes=passes,
        )
    except ValueError as e:
        raise fail(str(e)) from None
    from cae_codec.rnn.train import TrainConfig
    from cae_codec.rnn.train import train as run

    cfg = TrainConfig(
        data=data,
        output=output,
        network=net,
        patch=patch,
        batch=batch_size,
        lr=lr,
        steps=steps,
        minutes=minutes,
        seed=seed,
        threads=threads,
        device=device,
        max_images=max_images,
        checkpoint_every=checkpoint_every,
        entropy_crops=entropy_crops,
        init=init,
        resume=resume,
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        run(cfg, log)
    except (CaecError, ValueError) as e:
        raise fail(str(e)) from None
