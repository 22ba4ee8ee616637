"""`caec train comcnn DATA ...`: ComCNN + RecCNN's training command (the `caec train`
dispatcher in cae_codec.cli hands this codec's arguments here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cae_codec.cli.kit import CONTEXT_SETTINGS, CaecCommand, fail
from cae_codec.errors import CaecError

ENHANCER = "comcnn-enhance"  # `caec enhance`'s default weights
train_app = typer.Typer(add_completion=False, context_settings=CONTEXT_SETTINGS, rich_markup_mode=None)


@train_app.command(cls=CaecCommand)
def train(
    data: Annotated[Path, typer.Argument(help="Folder of training photos.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Weights to write, e.g. models/NAME.safetensors.")],
    steps: Annotated[int, typer.Option(help="Training steps (--minutes plans fewer to fit).")] = 100_000,
    minutes: Annotated[float | None, typer.Option(help="Time budget from the start of the command.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step.")] = 16,
    patch_size: Annotated[int, typer.Option("--patch-size", help="Side of the square crops (even).")] = 64,
    lr: Annotated[float, typer.Option(help="Peak Adam learning rate (cosine decay to a tenth).")] = 1e-3,
    inner: Annotated[
        str, typer.Option("--inner", help="The standard codec inside: jpeg, jpeg2000, webp or avif.")
    ] = "jpeg",
    quality_min: Annotated[
        int | None,
        typer.Option("--quality-min", help="Lowest inner knob value drawn per crop (default: the codec's range)."),
    ] = None,
    quality_max: Annotated[
        int | None,
        typer.Option("--quality-max", help="Highest inner knob value drawn per crop (default: the codec's range)."),
    ] = None,
    init: Annotated[
        str | None, typer.Option("--init", help="Start from this comcnn model's weights (name or path).")
    ] = None,
    init_com_only: Annotated[
        bool, typer.Option("--init-com-only", help="With --init: take its ComCNN only, a new RecCNN.")
    ] = False,
    turn: Annotated[
        int,
        typer.Option(help="Steps per turn of each network (the paper's alternation); 0: both every step."),
    ] = 0,
    enhance: Annotated[
        bool, typer.Option("--enhance", help="Train `caec enhance`'s JPEG artifact remover (RecCNN alone) instead.")
    ] = False,
    com_lr_scale: Annotated[
        float, typer.Option("--com-lr-scale", help="ComCNN's learning rate as a share of RecCNN's.")
    ] = 0.1,
    anchor: Annotated[
        float, typer.Option(help="Weight of the penalty on the compact image's distance from a 2x2 mean.")
    ] = 1.0,
    rec_layers: Annotated[int, typer.Option("--rec-layers", help="RecCNN's conv layers (the paper: 20).")] = 10,
    rec_channels: Annotated[int, typer.Option("--rec-channels", help="RecCNN's width (the paper: 64).")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")] = 200,
    max_images: Annotated[int | None, typer.Option("--max-images", help="Use only the first N images.")] = None,
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads (default: torch's).")] = None,
    resume: Annotated[
        bool, typer.Option("--resume/--restart", help="Continue from OUTPUT's checkpoint if there.")
    ] = True,
) -> None:
    """Train ComCNN and RecCNN in turns around real coding of the compact image by the inner codec."""
    from cae_codec.comcnn.train import TrainConfig
    from cae_codec.comcnn.train import train as run

    try:
        cfg = TrainConfig(
            data_dir=data,
            output=output,
            steps=steps,
            minutes=minutes,
            batch_size=batch_size,
            patch_size=patch_size,
            lr=lr,
            inner=inner,
            quality_min=quality_min,
            quality_max=quality_max,
            init=init,
            init_com_only=init_com_only,
            turn=turn,
            enhance=enhance,
            com_lr_scale=com_lr_scale,
            anchor=anchor,
            rec_layers=rec_layers,
            rec_channels=rec_channels,
            seed=seed,
            checkpoint_every=checkpoint_every,
            resume=resume,
            max_images=max_images,
            threads=threads,
        )
        run(cfg)
    except (CaecError, ValueError) as e:
        raise fail(str(e)) from None


def enhance(
    image: Annotated[str, typer.Argument(metavar="IMAGE.jpg", help="A JPEG file ('-' reads stdin).")],
    output: Annotated[
        str, typer.Option("-o", "--output", help="The enhanced image (.png, .tif, ...; '-': PNG on stdout).")
    ],
    model: Annotated[
        str, typer.Option("-m", "--model", help="The enhancer's weights (name or path).")
    ] = "comcnn-enhance",
    force: Annotated[bool, typer.Option("--force", "-f", help="Overwrite an existing output file.")] = False,
    no_pixel_limit: Annotated[
        bool, typer.Option("--no-pixel-limit", help="Decode images of any size (no decompression-bomb check).")
    ] = False,
) -> None:
    """Remove JPEG artifacts from an ordinary JPEG file with RecCNN (trained on JPEG files)."""
    from cae_codec.cli.kit import Job, check_output, emit, read_stdin
    from cae_codec.fsutil import read_bytes
    from cae_codec.imageio import DEFAULT_MAX_PIXELS, OUTPUT_FORMATS, image_to_bytes

    label = "<stdin>" if image == "-" else image
    fmt = "PNG" if output == "-" else OUTPUT_FORMATS.get(Path(output).suffix.lower())
    try:
        if fmt is None:
            raise CaecError(f"{output}: unknown output format (one of {', '.join(sorted(OUTPUT_FORMATS))})")
        check_output(Job(image, output), [image], force)
        data = read_stdin(label) if image == "-" else read_bytes(Path(image), label)
        from cae_codec.comcnn.enhance import Enhancer

        out = Enhancer(model).enhance(data, label, None if no_pixel_limit else DEFAULT_MAX_PIXELS)
        emit(output, image_to_bytes(out, fmt), force, [image])
    except CaecError as e:
        raise fail(str(e)) from None
