"""The default codec's command line: `caec train [cae-pca-j2k] DATA ...` (the `caec train`
dispatcher in cae_codec.cli hands the arguments of this codec's training here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cae_codec.cli.kit import CONTEXT_SETTINGS, CaecCommand, fail
from cae_codec.errors import CaecError

train_app = typer.Typer(add_completion=False, context_settings=CONTEXT_SETTINGS, rich_markup_mode=None)


def _parse_widths(text: str, stages: int, decoder: bool = False) -> int | tuple[int, ...]:
    """--hidden, or with ``decoder`` --decoder-hidden: one width, or one per stage boundary."""
    from cae_codec.cae.network import CAEConfig

    option = "--decoder-hidden" if decoder else "--hidden"
    try:
        widths = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{option} takes integers separated by commas, got {text!r}") from None
    hidden = widths[0] if len(widths) == 1 else widths
    try:  # the network's own bounds, as a weights file's config is checked
        CAEConfig(stages=stages, decoder_hidden=hidden) if decoder else CAEConfig(stages=stages, hidden=hidden)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=option) from None
    return hidden


@train_app.command(cls=CaecCommand)
def train(
    data_dir: Annotated[Path, typer.Argument(help="Folder of training photos (flat).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Weights to write, e.g. models/NAME.safetensors.")],
    steps: Annotated[int, typer.Option(help="Optimizer steps in total (a resumed run continues to this).")] = 20000,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per step (per process under torchrun).")] = 16,
    patch_size: Annotated[int, typer.Option("--patch-size", help="Side of the random square crops.")] = 128,
    lmbda: Annotated[float, typer.Option("--lambda", help="Rate-distortion trade-off at quantization step 1.")] = 0.013,
    lr: Annotated[float, typer.Option(help="Peak Adam learning rate (cosine decay to a tenth).")] = 3e-4,
    step_min: Annotated[float, typer.Option("--step-min", help="Smallest quantization step trained for.")] = 0.5,
    step_max: Annotated[float, typer.Option("--step-max", help="Largest quantization step trained for.")] = 4.0,
    hidden: Annotated[
        str,
        typer.Option(
            help="Channels of the hidden layers (new models only): one width, or one per stage boundary "
            "from fine to coarse, e.g. 32,64,192 with 4 stages."
        ),
    ] = "64",
    decoder_hidden: Annotated[
        str | None,
        typer.Option(
            "--decoder-hidden",
            help="The decoder's own hidden widths, given like --hidden (new models only; default: the "
            "encoder's, mirrored).",
        ),
    ] = None,
    latent: Annotated[int, typer.Option(help="Feature maps in the latent (new models only).")] = 96,
    stages: Annotated[int, typer.Option(help="Stride-2 stages; the latent is 2**stages times smaller.")] = 4,
    density: Annotated[
        str, typer.Option(help="Rate model of the training loss: laplace or factorized (new models only).")
    ] = "laplace",
    minutes: Annotated[
        float | None, typer.Option(help="Time budget: sets the step total from the measured speed (at most --steps).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for every random number of the run.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")] = 500,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from OUTPUT's checkpoint, or from OUTPUT itself if finished.")
    ] = False,
    init: Annotated[Path | None, typer.Option(help="Start from these weights (fine-tuning).")] = None,
    decoder_only: Annotated[
        bool,
        typer.Option(
            "--decoder-only",
            help="Fine-tune only the decoder of --init on truly quantized latents; the encoder, the PCA "
            "and so every bitstream stay as they were.",
        ),
    ] = False,
    encoder_only: Annotated[
        bool,
        typer.Option(
            "--encoder-only",
            help="Fine-tune only the encoder (and its rate model) of --init for its fixed decoders, on truly "
            "quantized latents; the decoders and the PCA stay, so its files decode with them.",
        ),
    ] = False,
    compile: Annotated[
        bool | None, typer.Option("--compile/--no-compile", help="torch.compile the step (default: on CUDA).")
    ] = None,
    max_images: Annotated[int | None, typer.Option("--max-images", help="Use only the first N images.")] = None,
    pca_samples: Annotated[int, typer.Option("--pca-samples", help="Latent vectors for the PCA fit.")] = 200_000,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads for torch (default: torch's choice, one per core).")
    ] = None,
) -> None:
    """Train the CAE on random crops of DATA_DIR and fit its PCA rotation (or, with --decoder-only
    or --encoder-only, fine-tune one half of existing weights)."""
    from cae_codec.cae.train import TrainConfig
    from cae_codec.cae.train import train as run_training
    from cae_codec.nn.density import DENSITIES

    if output.suffix != ".safetensors":
        output = output.with_name(output.name + ".safetensors")
    for name, value in (("--steps", steps), ("--batch-size", batch_size), ("--checkpoint-every", checkpoint_every)):
        if value < 1:
            raise typer.BadParameter(f"{name} must be at least 1")
    if patch_size < 2**stages or patch_size % 2**stages:
        raise typer.BadParameter(f"--patch-size must be a positive multiple of {2**stages}")
    if not 0 < step_min <= step_max:
        raise typer.BadParameter("need 0 < --step-min <= --step-max")
    if density not in DENSITIES:
        raise typer.BadParameter(f"--density must be one of {', '.join(DENSITIES)}")
    if minutes is not None and minutes <= 0:
        raise typer.BadParameter("--minutes must be positive")
    widths = _parse_widths(hidden, stages)
    decoder_widths = None if decoder_hidden is None else _parse_widths(decoder_hidden, stages, decoder=True)
    cfg = TrainConfig(
        data_dir=data_dir,
        output=output,
        steps=steps,
        batch_size=batch_size,
        patch_size=patch_size,
        lmbda=lmbda,
        lr=lr,
        step_min=step_min,
        step_max=step_max,
        seed=seed,
        device=device,
        checkpoint_every=checkpoint_every,
        resume=resume,
        init=init,
        compile=compile,
        hidden=widths,
        decoder_hidden=decoder_widths,
        latent=latent,
        stages=stages,
        density=density,
        minutes=minutes,
        pca_samples=pca_samples,
        max_images=max_images,
        threads=threads,
        decoder_only=decoder_only,
        encoder_only=encoder_only,
    )
    try:
        run_training(cfg)
    except CaecError as e:
        raise fail(str(e)) from None
