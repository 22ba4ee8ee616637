"""The `caec` command line: encode, decode, info, models, train (compare and bdrate live in
cae_codec.evaluate.cli; what every subcommand shares, in cae_codec.clikit).

Diagnostics and progress go to stderr, data (``--json``, ``-`` outputs) to stdout. Every
failure the library raises is a :class:`CaecError` and becomes one ``caec: error: ...`` line
with exit status 1; usage errors are one such line too, with exit status 2.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cae_codec import __version__, quant
from cae_codec.api import DEFAULT_MODEL, decode_with_meta, get_codec, list_models, pick_device
from cae_codec.api import info as api_info
from cae_codec.clikit import (
    CONTEXT_SETTINGS,
    CaecGroup,
    FileProgress,
    Job,
    Verbosity,
    emit,
    fail,
    plan_outputs,
    read_stdin,
    run_app,
    run_batch,
    stdin_binary,
    use_plain_help,
)
from cae_codec.container import read_file
from cae_codec.errors import CaecError
from cae_codec.evaluate.cli import register_evaluation_commands
from cae_codec.imageio import DEFAULT_MAX_PIXELS, image_to_bytes, open_image_meta

app = typer.Typer(
    name="caec",
    cls=CaecGroup,
    help="caec: learned lossy image compression (CAE + PCA + JPEG2000).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings=CONTEXT_SETTINGS,
    # plain help, as cjpeg and cwebp print it: no boxes, readable in a pipe or a log
    rich_markup_mode=None,
)

# decode's default output: NAME.cae -> NAME.decoded.png, never the NAME.png it was likely made from
DECODED_SUFFIX = ".decoded.png"
# what an output's suffix says it is; Pillow writes each of these
IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".gif": "GIF",
    ".ppm": "PPM",
    ".pgm": "PPM",
}
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "PGM": "PPM"}
# JPEG and WebP outputs re-encode a decoded image: at a quality that adds little loss of their own
OUTPUT_QUALITY = 95
# a word that a user meant as the value of a flag (`--force true`), not as a file name
FLAG_WORDS = {"true", "false", "yes", "no", "on", "off"}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"caec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """caec: learned lossy image compression (CAE + PCA + JPEG2000)."""


ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        metavar="NAME",
        help="Model or model family name (looked up in $CAEC_MODELS, then the shipped models; `caec models` "
        "lists them), or a .safetensors / .family.json path.",
    ),
]
DeviceOpt = Annotated[str, typer.Option(metavar="DEVICE", help="auto, cpu or cuda (auto picks CUDA when present).")]
ForceOpt = Annotated[bool, typer.Option("--force", "-f", help="Overwrite existing output files.")]
SkipOpt = Annotated[
    bool,
    typer.Option("--skip-existing", help="Leave outputs that exist as they are and go on (re-running a batch)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="Print errors only (no status line per file).")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Say more per file: model, step, timings.")]
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
    typer.Option(
        "-o",
        "--output",
        metavar="PATH",
        help="Output file, '-' for stdout, or a directory (an existing one, or ending in '/'; "
        "needed for several inputs).",
    ),
]


def _check_flag_words(inputs: list[str]) -> None:
    for src in inputs:
        if src.lower() in FLAG_WORDS and not os.path.lexists(src):
            raise typer.BadParameter(f"no file {src!r}: flags such as --force take no value")


def _verbosity(quiet: bool, verbose: bool) -> Verbosity:
    if quiet and verbose:
        raise typer.BadParameter("give --quiet or --verbose, not both")
    return Verbosity(quiet=quiet, verbose=verbose)


def _check_force(force: bool, skip_existing: bool) -> None:
    if force and skip_existing:
        raise typer.BadParameter("give --force or --skip-existing, not both")


def _read_cae(src: str, label: str) -> bytes:
    """A .cae file's bytes, read no further than its chunks explain (a hostile or endless
    input fails after its first bytes instead of filling the memory)."""
    return read_file(stdin_binary(label) if src == "-" else Path(src), label)


@app.command(no_args_is_help=True)
def encode(
    inputs: Annotated[list[str], typer.Argument(metavar="IMAGE...", help="Images to compress ('-' reads stdin).")],
    output: OutputOpt = None,
    quality: Annotated[
        int | None,
        typer.Option(
            "--quality",
            "-q",
            min=quant.QUALITY_MIN,
            max=quant.QUALITY_MAX,
            help=f"Quality {quant.QUALITY_MIN}..{quant.QUALITY_MAX} (default {quant.QUALITY_DEFAULT}). With the "
            "default model on Kodak, 1 gives 0.12 bpp at 26.6 dB PSNR and 10 gives 2.0 bpp at 38.1 dB; each "
            "step up adds 0.8-1.8 dB for 1.2-1.5x the bits (docs/design.md).",
        ),
    ] = None,
    bpp: Annotated[
        float | None,
        typer.Option("--bpp", metavar="BPP", help="Target bits per pixel; the file will not exceed it."),
    ] = None,
    refine: Annotated[
        int,
        typer.Option(
            "--refine",
            min=0,
            max=quant.REFINE_MAX,
            metavar="N",
            help="Refine the latent for this image by N gradient steps through the decoder: smaller "
            "files at equal quality, N times a decoder pass slower to encode (20 is a good start; "
            "0, the default, is off). Decoding is unchanged.",
        ),
    ] = 0,
    model: ModelOpt = DEFAULT_MODEL,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    skip_existing: SkipOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_pixel_limit: NoPixelLimitOpt = False,
) -> None:
    """Compress images to .cae files (NAME.png -> NAME.cae unless -o says otherwise)."""
    if quality is not None and bpp is not None:
        raise typer.BadParameter("give --quality or --bpp, not both")
    if bpp is not None and not (0 < bpp < 64):
        raise typer.BadParameter("--bpp must be in (0, 64)", param_hint="'--bpp'")
    _check_force(force, skip_existing)
    verbosity = _verbosity(quiet, verbose)
    _check_flag_words(inputs)
    jobs = plan_outputs(inputs, output, lambda src: Path(src).with_suffix(".cae"))
    for job in jobs:
        if job.dst != "-" and Path(job.dst).suffix.lower() in IMAGE_FORMATS:
            raise typer.BadParameter(
                f"{job.dst} names an image format, but encode writes .cae data (name it .cae)", param_hint="'-o'"
            )
    codec = None  # loaded for the first file that needs it: a bad input is refused before the model loads

    def work(job: Job, progress: FileProgress) -> str:
        nonlocal codec
        label = "<stdin>" if job.src == "-" else job.src
        source: bytes | Path = read_stdin() if job.src == "-" else Path(job.src)
        img, meta = open_image_meta(source, name=label, max_pixels=None if no_pixel_limit else DEFAULT_MAX_PIXELS)
        if codec is None:
            codec = get_codec(model, device)
        t0 = time.perf_counter()
        data = codec.encode(img, quality=quality, bpp=bpp, refine=refine, icc_profile=meta.icc_profile)
        seconds = time.perf_counter() - t0
        emit(job.dst, data, force, inputs)
        note = f"{len(data)} bytes, {8 * len(data) / (img.shape[0] * img.shape[1]):.4f} bpp"
        if verbosity.verbose:
            fields = api_info(data)
            note += (
                f", model {fields['model']}, step {fields['step']:.4g}, {fields['components']} of "
                f"{fields['latent_channels']} components, {img.shape[1]}x{img.shape[0]}x{img.shape[2]}, "
                f"encoded in {seconds:.2f} s"
            )
        return note

    run_batch(jobs, work, "encoding", force=force, skip_existing=skip_existing, verbosity=verbosity)


def _output_format(dst: str, fmt: str | None) -> str:
    """The image format of a decode output: --format, or the output name's suffix (PNG for
    stdout); a name and a --format that disagree, or a suffix nobody knows, are refused."""
    named = None if dst == "-" else IMAGE_FORMATS.get(Path(dst).suffix.lower())
    if fmt is not None:
        wanted = FORMAT_ALIASES.get(fmt.upper(), fmt.upper())
        if wanted not in IMAGE_FORMATS.values():
            known = ", ".join(sorted(set(IMAGE_FORMATS.values())))
            raise typer.BadParameter(f"unknown image format {fmt!r} (known: {known})", param_hint="'--format'")
        if named is not None and named != wanted:
            raise typer.BadParameter(f"--format {fmt} disagrees with the output name {dst}", param_hint="'--format'")
        return wanted
    if dst == "-":
        return "PNG"
    if named is None:
        raise typer.BadParameter(
            f"cannot tell an image format from the name {dst!r} (known suffixes: {', '.join(IMAGE_FORMATS)}); "
            "give --format",
            param_hint="'-o'",
        )
    return named


@app.command(no_args_is_help=True)
def decode(
    inputs: Annotated[
        list[str], typer.Argument(metavar="FILE.cae...", help=".cae files to decompress ('-' reads stdin).")
    ],
    output: OutputOpt = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME",
            help="Weights to use instead of the model the file names (a family: its member the file names).",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    skip_existing: SkipOpt = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            metavar="FORMAT",
            help="Image format (PNG, JPEG, WEBP, TIFF, BMP, GIF, PPM); default: from the output name, PNG for stdout.",
        ),
    ] = None,
    output_quality: Annotated[
        int,
        typer.Option(
            "--output-quality",
            min=1,
            max=100,
            metavar="Q",
            help="Quality of JPEG and WebP outputs, 1..100 (the decoded image is re-encoded by them).",
        ),
    ] = OUTPUT_QUALITY,
    lossless: Annotated[bool, typer.Option("--lossless", help="Write WebP outputs losslessly.")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_pixel_limit: NoPixelLimitOpt = False,
) -> None:
    """Decompress .cae files to images (NAME.cae -> NAME.decoded.png unless -o says otherwise)."""
    _check_force(force, skip_existing)
    verbosity = _verbosity(quiet, verbose)
    _check_flag_words(inputs)
    jobs = plan_outputs(inputs, output, lambda src: Path(src).with_suffix(DECODED_SUFFIX))
    formats = {job.dst: _output_format(job.dst, fmt) for job in jobs}
    if lossless and any(f != "WEBP" for f in formats.values()):
        raise typer.BadParameter("--lossless is for WebP outputs (the other formats but JPEG are lossless)")
    if device not in ("auto", "cpu"):
        # only other names can fail: check them once, up front. "auto" and "cpu" are resolved
        # per file after the container checks, so a malformed file fails without importing torch
        try:
            pick_device(device)
        except CaecError as e:
            raise fail(str(e)) from None

    def work(job: Job, progress: FileProgress) -> str:
        label = "<stdin>" if job.src == "-" else job.src
        data = _read_cae(job.src, label)
        t0 = time.perf_counter()
        try:
            fields = api_info(data)
            progress.total((fields["padded_width"] // fields["tile"]) * (fields["padded_height"] // fields["tile"]))
            img, meta = decode_with_meta(
                data,
                model=model,
                device=device,
                max_pixels=None if no_pixel_limit else DEFAULT_MAX_PIXELS,
                progress=progress.advance,
            )
        except CaecError as e:
            raise type(e)(f"{label}: {e}") from None
        seconds = time.perf_counter() - t0
        picture = image_to_bytes(
            img, formats[job.dst], icc_profile=meta.icc_profile, quality=output_quality, lossless=lossless
        )
        emit(job.dst, picture, force, inputs)
        note = f"{img.shape[1]}x{img.shape[0]}x{img.shape[2]}"
        if verbosity.verbose:
            note += f", {formats[job.dst]}, model {fields['model']}, decoded in {seconds:.2f} s"
        return note

    run_batch(jobs, work, "decoding", force=force, skip_existing=skip_existing, verbosity=verbosity)


@app.command(no_args_is_help=True)
def info(
    file: Annotated[str, typer.Argument(metavar="FILE.cae", help=".cae file ('-' reads stdin).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Print the header of a .cae file: size, model, quantization, chunk sizes, bpp."""
    label = "<stdin>" if file == "-" else file
    try:
        data = _read_cae(file, label)
        fields = api_info(data)
    except CaecError as e:
        raise fail(f"{label}: {e}" if not str(e).startswith(label) else str(e)) from None
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
    retired: Annotated[bool, typer.Option("--retired", help="List the retired models too.")] = False,
) -> None:
    """List the models and model families that --model accepts by name ($CAEC_MODELS and the shipped ones)."""
    entries = list_models(retired)
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
        elif e["kind"] == "retired":
            what = f"retired in caec {e['retired_in']}, superseded by {e['superseded_by']}"
            digest = e["weights_hash"][:12]
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
        raise fail(str(e)) from None


register_evaluation_commands(app)
use_plain_help(app)


def main() -> None:
    run_app(app)


if __name__ == "__main__":
    main()
