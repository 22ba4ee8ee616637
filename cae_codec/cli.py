"""The `caec` command line: encode, decode, info, train (compare and bdrate live in cae_codec.evaluate).

Diagnostics and progress go to stderr, data (``--json``, ``-`` outputs) to stdout. Every
failure the library raises is a :class:`CaecError` and becomes one ``caec: error: ...`` line
with exit status 1; usage errors exit with 2 (Typer's convention).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cae_codec import __version__, quant
from cae_codec.api import DEFAULT_MODEL, get_codec, list_models, pick_device
from cae_codec.api import decode as api_decode
from cae_codec.api import info as api_info
from cae_codec.errors import CaecError
from cae_codec.evaluate.cli import register_evaluation_commands
from cae_codec.fsutil import atomic_write, read_bytes
from cae_codec.imageio import DEFAULT_MAX_PIXELS, format_for_path, image_to_bytes, open_image
from cae_codec.progress import progress_bar

app = typer.Typer(
    name="caec",
    help="caec: learned lossy image compression (CAE + PCA + JPEG2000).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

EXIT_FAILED = 1


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"caec: error: {msg}", err=True)
    return typer.Exit(EXIT_FAILED)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"caec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """caec: learned lossy image compression (CAE + PCA + JPEG2000)."""


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model or model family name (looked up in models/ and $CAEC_MODELS), "
        "or a .safetensors / .family.json path.",
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda (auto picks CUDA when present).")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
NoPixelLimitOpt = Annotated[
    bool,
    typer.Option(
        "--no-pixel-limit",
        help=f"Accept images of more than {DEFAULT_MAX_PIXELS} pixels (refused by default as possible "
        "decompression bombs, as Pillow does).",
    ),
]
# a str, not a Path: Path("out/") drops the trailing slash that marks a directory to create
OutputOpt = Annotated[
    str | None,
    typer.Option("-o", "--output", help="Output file, '-' for stdout, or a directory (several inputs)."),
]


def _read_input(src: str) -> tuple[str, bytes | Path]:
    if src == "-":
        return "<stdin>", sys.stdin.buffer.read()
    return src, Path(src)


def _read_input_bytes(src: str) -> tuple[str, bytes]:
    label, source = _read_input(src)
    return label, source if isinstance(source, bytes) else read_bytes(source, label)


def _beside(src: str, suffix: str) -> Path:
    """The default output for ``src``: the same name with ``suffix``."""
    path = Path(src)
    if not path.name:  # '.', '/': nothing to name an output after
        raise typer.BadParameter(f"{src!r} has no file name to name the output after; give -o")
    return path.with_suffix(suffix)


def _plan_outputs(inputs: list[str], output: str | None, suffix: str) -> list[str]:
    """Output name per input: beside it by default, inside ``output`` if it is a directory.

    ``output`` is a directory when it exists as one, ends with a path separator, or when
    there are several inputs; a missing directory is created.
    """
    if output == "-":
        if len(inputs) != 1:
            raise typer.BadParameter("'-o -' (stdout) takes exactly one input", param_hint="-o")
        return ["-"]
    out_dir = Path(output) if output is not None else None
    as_dir = output is not None and (Path(output).is_dir() or output.endswith(("/", os.sep)))
    if len(inputs) > 1 or as_dir:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        outs = []
        for src in inputs:
            if src == "-":
                raise typer.BadParameter("'-' (stdin) cannot be mixed with other inputs")
            target = _beside(src, suffix)
            outs.append(str(out_dir / target.name if out_dir is not None else target))
        if len(set(outs)) != len(outs):
            raise typer.BadParameter("two inputs would write the same output file")
        return outs
    if output is not None:
        return [output]
    if inputs[0] == "-":
        return ["-"]
    return [str(_beside(inputs[0], suffix))]


def _emit(dest: str, data: bytes, force: bool) -> None:
    if dest == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        atomic_write(Path(dest), data, force=force)


def _run_batch(pairs: list[tuple[str, str]], work: Callable[[str, str], str], what: str) -> None:
    """Run ``work(src, dst)`` per file; a failure is reported and the rest still run."""
    failed: list[tuple[str, str]] = []
    with progress_bar(enabled=len(pairs) > 1) as bar:
        task = bar.add_task(what, total=len(pairs))
        for src, dst in pairs:
            try:
                note = work(src, dst)
                if len(pairs) > 1 or dst != "-":
                    typer.echo(f"{src} -> {dst}: {note}", err=True)
            except CaecError as e:
                failed.append((src, str(e)))
                typer.echo(f"caec: error: {e}", err=True)
            bar.advance(task)
    if failed:
        if len(pairs) > 1:
            typer.echo(f"caec: {len(failed)} of {len(pairs)} files failed: {', '.join(s for s, _ in failed)}", err=True)
        raise typer.Exit(EXIT_FAILED)


@app.command()
def encode(
    inputs: Annotated[list[str], typer.Argument(help="Images to compress ('-' reads stdin).")],
    output: OutputOpt = None,
    quality: Annotated[
        int | None,
        typer.Option(
            "--quality",
            "-q",
            min=quant.QUALITY_MIN,
            max=quant.QUALITY_MAX,
            help=f"Quality {quant.QUALITY_MIN}..{quant.QUALITY_MAX} (default {quant.QUALITY_DEFAULT}); "
            "each step up halves the quantization noise power.",
        ),
    ] = None,
    bpp: Annotated[
        float | None, typer.Option("--bpp", help="Target bits per pixel; the file will not exceed it.")
    ] = None,
    refine: Annotated[
        int,
        typer.Option(
            "--refine",
            min=0,
            max=quant.REFINE_MAX,
            help="Refine the latent for this image by N gradient steps through the decoder: smaller "
            "files at equal quality, N times a decoder pass slower to encode (20 is a good start; "
            "0, the default, is off). Decoding is unchanged.",
        ),
    ] = 0,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    no_pixel_limit: NoPixelLimitOpt = False,
) -> None:
    """Compress images to .cae files."""
    if quality is not None and bpp is not None:
        raise typer.BadParameter("give --quality or --bpp, not both")
    if bpp is not None and not (0 < bpp < 64):
        raise typer.BadParameter("--bpp must be in (0, 64)", param_hint="--bpp")
    outs = _plan_outputs(inputs, output, ".cae")
    try:
        codec = get_codec(model, device)
    except CaecError as e:
        raise _fail(str(e)) from None

    def work(src: str, dst: str) -> str:
        label, source = _read_input(src)
        img = open_image(source, name=label, max_pixels=None if no_pixel_limit else DEFAULT_MAX_PIXELS)
        data = codec.encode(img, quality=quality, bpp=bpp, refine=refine)
        _emit(dst, data, force)
        return f"{len(data)} bytes, {8 * len(data) / (img.shape[0] * img.shape[1]):.4f} bpp"

    _run_batch(list(zip(inputs, outs, strict=True)), work, "encoding")


@app.command()
def decode(
    inputs: Annotated[list[str], typer.Argument(help=".cae files to decompress ('-' reads stdin).")],
    output: OutputOpt = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Weights to use instead of the model the file names (a family: its member the file names).",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Image format for stdout or unknown suffixes (default PNG).")
    ] = None,
    no_pixel_limit: NoPixelLimitOpt = False,
) -> None:
    """Decompress .cae files to images (PNG unless the output name says otherwise)."""
    outs = _plan_outputs(inputs, output, ".png")
    if device not in ("auto", "cpu"):
        # only other names can fail: check them once, up front. "auto" and "cpu" are resolved
        # per file after the container checks, so a malformed file fails without importing torch
        try:
            pick_device(device)
        except CaecError as e:
            raise _fail(str(e)) from None

    def work(src: str, dst: str) -> str:
        label, data = _read_input_bytes(src)
        try:
            img = api_decode(
                data, model=model, device=device, max_pixels=None if no_pixel_limit else DEFAULT_MAX_PIXELS
            )
        except CaecError as e:
            raise type(e)(f"{label}: {e}") from None
        out_fmt = fmt or ("PNG" if dst == "-" else format_for_path(Path(dst)))
        _emit(dst, image_to_bytes(img, out_fmt), force)
        return f"{img.shape[1]}x{img.shape[0]}x{img.shape[2]}"

    _run_batch(list(zip(inputs, outs, strict=True)), work, "decoding")


@app.command()
def info(
    file: Annotated[str, typer.Argument(help=".cae file ('-' reads stdin).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Print the header of a .cae file: size, model, quantization, chunk sizes, bpp."""
    try:
        label, data = _read_input_bytes(file)
    except CaecError as e:
        raise _fail(str(e)) from None
    try:
        fields = api_info(data)
    except CaecError as e:
        raise _fail(f"{label}: {e}") from None
    if as_json:
        typer.echo(json.dumps(fields, indent=2))
        return
    table = Table(title=label, show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for key, value in fields.items():
        if key == "chunks":
            value = ", ".join(f"{k} {v} B" for k, v in value.items()) or "none"
        elif isinstance(value, float):
            value = f"{value:.6g}"
        table.add_row(key, str(value))
    Console().print(table)


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """List the models and model families that --model accepts by name (models/ and $CAEC_MODELS)."""
    entries = list_models()
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table(box=None)
    for column in ("name", "kind", "what", "weights hash"):
        table.add_column(column, style="bold" if column == "name" else None)
    for e in entries:
        if "error" in e:
            what, digest = f"[red]{e['error']}[/red]", ""
        elif e["kind"] == "family":
            what, digest = " + ".join(m["model"] for m in e["members"]), ""
        else:
            cfg = e["config"]
            bands = len(cfg.get("decoder_bands", [])) + 1
            decoder = f", decoder {cfg['decoder_hidden']}" if cfg.get("decoder_hidden") is not None else ""
            what = f"{e['architecture']} {cfg.get('hidden')}/{cfg.get('latent')}{decoder}" + (
                f", {bands} decoders" if bands > 1 else ""
            )
            digest = (e["weights_hash"] or "")[:12]  # as error messages show it; --json has all
        name = f"{e['name']} (default)" if e["name"] == DEFAULT_MODEL else e["name"]
        table.add_row(name, e["kind"], what, digest)
    Console().print(table)


def _parse_widths(text: str, stages: int, decoder: bool = False) -> int | tuple[int, ...]:
    """--hidden, or with ``decoder`` --decoder-hidden: one width, or one per stage boundary."""
    from cae_codec.nn.cae import CAEConfig

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


@app.command()
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
    from cae_codec.nn.density import DENSITIES
    from cae_codec.train import TrainConfig
    from cae_codec.train import train as run_training

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
        raise _fail(str(e)) from None


register_evaluation_commands(app)


def _terminated(signum: int, frame: object) -> None:
    # Raised in the main thread, so every finally block on the stack (the temporary file of
    # an output being written) runs on the way out instead of the process just vanishing.
    typer.echo("caec: terminated", err=True)
    raise SystemExit(128 + signum)


def main() -> None:
    signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("caec: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
