"""`caec train mnist-dae ...`: the deep autoencoder's training command (the `caec train`
dispatcher in cae_codec.cli hands this codec's arguments here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cae_codec.cli.kit import CONTEXT_SETTINGS, CaecCommand, fail
from cae_codec.errors import CaecError

train_app = typer.Typer(add_completion=False, context_settings=CONTEXT_SETTINGS, rich_markup_mode=None)

DEFAULT_DATA = Path("../shared/data/mnist")
HIDDEN = {"design": "1000,500", "hinton": "1000,500,250"}


@train_app.command(cls=CaecCommand)
def train(
    output: Annotated[Path, typer.Option("-o", "--output", help="Weights to write, e.g. models/NAME.safetensors.")],
    code: Annotated[int, typer.Option(help="Units in the code layer (196: the design's, 30: Hinton's).")] = 196,
    protocol: Annotated[
        str, typer.Option(help="design: first 20,000 training / 1,000 test images; hinton: 60,000 / 10,000.")
    ] = "design",
    data: Annotated[Path, typer.Option(help="Folder of the MNIST IDX files (gzip).")] = DEFAULT_DATA,
    hidden: Annotated[
        str | None,
        typer.Option(
            help="Hidden layer sizes from the pixels down (default 1000,500 for design, 1000,500,250 for hinton)."
        ),
    ] = None,
    linear_code: Annotated[
        bool | None,
        typer.Option("--linear-code/--sigmoid-code", help="Code units linear (default with hinton) or logistic."),
    ] = None,
    pretrain: Annotated[bool, typer.Option("--pretrain/--no-pretrain", help="Greedy RBM pre-training first.")] = True,
    rbm_epochs: Annotated[int, typer.Option("--rbm-epochs", help="CD-1 epochs per RBM (the paper: 50).")] = 10,
    epochs: Annotated[int, typer.Option(help="Fine-tuning epochs (a resumed run continues to this).")] = 30,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per fine-tuning step.")] = 100,
    lr: Annotated[float, typer.Option(help="Peak Adam learning rate (cosine decay to a tenth).")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    train_images: Annotated[
        int | None, typer.Option("--train-images", help="Use only the first N of the protocol's training images.")
    ] = None,
    test_images: Annotated[
        int | None, typer.Option("--test-images", help="Use only the first N of the protocol's test images.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads (default: torch's).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--restart", help="Continue from OUTPUT's checkpoint if there.")
    ] = True,
) -> None:
    """Pre-train the RBM stack, unroll it and fine-tune the deep autoencoder on MNIST."""
    from cae_codec.mnistdae.data import PROTOCOLS
    from cae_codec.mnistdae.rbm import RbmSchedule

    if protocol not in PROTOCOLS:
        raise fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    try:
        sizes = tuple(int(v) for v in (hidden or HIDDEN[protocol]).split(","))
    except ValueError:
        raise fail(f"--hidden takes integers separated by commas, got {hidden!r}") from None
    for name, value in (
        ("--code", code),
        ("--epochs", epochs + 1),
        ("--rbm-epochs", rbm_epochs + 1),
        ("--batch-size", batch_size),
    ):
        if value < 1:
            raise fail(f"{name} must be positive")
    import torch

    from cae_codec.mnistdae.train import TrainConfig
    from cae_codec.mnistdae.train import train as run

    if threads:
        torch.set_num_threads(threads)
    cfg = TrainConfig(
        data=data,
        output=output,
        code=code,
        protocol=protocol,
        hidden=sizes,
        linear_code=protocol == "hinton" if linear_code is None else linear_code,
        pretrain=pretrain,
        rbm=RbmSchedule(epochs=rbm_epochs),
        epochs=epochs,
        batch=batch_size,
        lr=lr,
        seed=seed,
        train_images=train_images,
        test_images=test_images,
        resume=resume,
    )

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    from cae_codec.progress import progress_bar

    try:
        with progress_bar() as bar:
            task = bar.add_task("fine-tuning", total=None)
            run(
                cfg,
                log=bar.console.print if sys.stderr.isatty() else log,
                batch_progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (CaecError, ValueError) as e:
        raise fail(str(e)) from None
