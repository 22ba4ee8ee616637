"""`caec encode`, `caec decode` and `caec info`: images to files of any registered codec and
back, one job per input (cae_codec.cli.kit runs the batch)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cae_codec import contract, progressive, registry
from cae_codec.api import DEFAULT_MODEL, decode_with_meta, get_codec, pick_device
from cae_codec.api import info as api_info
from cae_codec.api import standard_codestream as api_standard_codestream
from cae_codec.cli.kit import (
    FileProgress,
    Job,
    check_output,
    emit,
    fail,
    plan_outputs,
    read_stdin,
    run_batch,
    stdin_binary,
    warn,
)
from cae_codec.cli.options import (
    DeviceOpt,
    ForceOpt,
    NoPixelLimitOpt,
    OutputOpt,
    QuietOpt,
    SkipOpt,
    VerboseOpt,
    check_flag_words,
    check_force,
    verbosity_of,
)
from cae_codec.container import read_file
from cae_codec.errors import CaecError
from cae_codec.idx import is_idx_name, read_idx
from cae_codec.imageio import DEFAULT_MAX_PIXELS, OUTPUT_FORMATS, image_to_bytes, open_image_meta
from cae_codec.registry import DEFAULT_CODEC
from cae_codec.stages import quant

# decode's default output: NAME.cae -> NAME.decoded.png, never the NAME.png it was likely made from
DECODED_SUFFIX = ".decoded.png"
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "PGM": "PPM"}
# JPEG and WebP outputs re-encode a decoded image: at a quality that adds little loss of their own
OUTPUT_QUALITY = 95


def _read_cae(src: str, label: str) -> bytes:
    """A .cae file's bytes, read no further than its chunks explain (a hostile or endless
    input fails after its first bytes instead of filling the memory)."""
    return read_file(stdin_binary(label) if src == "-" else Path(src), label)


def encode(
    inputs: Annotated[list[str], typer.Argument(metavar="IMAGE...", help="Images to compress ('-' reads stdin).")],
    output: OutputOpt = None,
    codec_id: Annotated[
        str,
        typer.Option(
            "--codec",
            "-c",
            metavar="ID",
            help=f"Codec to write ({', '.join(registry.codec_ids())}; `caec models` lists their models).",
        ),
    ] = DEFAULT_CODEC,
    quality: Annotated[
        int | None,
        typer.Option(
            "--quality",
            "-q",
            metavar="Q",
            help=f"Quality, higher is better; its range is the codec's (the default codec: "
            f"{quant.QUALITY_MIN}..{quant.QUALITY_MAX}, default {quant.QUALITY_DEFAULT}). With the "
            "default model on Kodak, 1 gives 0.12 bpp at 26.6 dB PSNR and 10 gives 2.0 bpp at 38.1 dB; each "
            "step up adds 0.8-1.8 dB for 1.2-1.5x the bits (docs/design.md).",
        ),
    ] = None,
    bpp: Annotated[
        float | None,
        typer.Option("--bpp", metavar="BPP", help="Target bits per pixel; the file will not exceed it."),
    ] = None,
    size: Annotated[
        int | None,
        typer.Option("--size", metavar="BYTES", help="Target file size in bytes; the file will not exceed it."),
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
    inner: Annotated[
        str | None,
        typer.Option(
            "--inner",
            metavar="CODEC",
            help="comcnn: the standard codec of the compact image (jpeg, jpeg2000, webp, avif); the model "
            "must be trained for it, and with the default model it picks the shipped comcnn-CODEC. "
            "Default: the model's.",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME",
            help=f"Model or model family name (looked up in $CAEC_MODELS, then the shipped models; `caec "
            f"models` lists them), or a .safetensors / .family.json path. Default: the codec's "
            f"({DEFAULT_MODEL} for {DEFAULT_CODEC}).",
        ),
    ] = None,
    device: DeviceOpt = "auto",
    force: ForceOpt = False,
    skip_existing: SkipOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    no_pixel_limit: NoPixelLimitOpt = False,
) -> None:
    """Compress images to .cae files (NAME.png -> NAME.cae unless -o says otherwise)."""
    if sum(v is not None for v in (quality, bpp, size)) > 1:
        raise typer.BadParameter("give one of --quality, --bpp and --size")
    try:
        info = registry.get(codec_id)
        if quality is not None:
            info.quality.check(quality, info.id)
    except CaecError as e:
        raise typer.BadParameter(str(e)) from None
    if bpp is not None and not (0 < bpp < 64):
        raise typer.BadParameter("--bpp must be in (0, 64)", param_hint="'--bpp'")
    if size is not None and size < 1:
        raise typer.BadParameter("--size must be at least 1 byte", param_hint="'--size'")
    check_force(force, skip_existing)
    verbosity = verbosity_of(quiet, verbose)
    check_flag_words(inputs)
    jobs = plan_outputs(inputs, output, lambda src: Path(src).with_suffix(".cae"))
    for job in jobs:
        if job.dst != "-" and Path(job.dst).suffix.lower() in OUTPUT_FORMATS:
            raise typer.BadParameter(
                f"{job.dst} names an image format, but encode writes .cae data (name it .cae)", param_hint="'-o'"
            )
    codec = None  # loaded for the first file that needs it: a bad input is refused before the model loads

    def work(job: Job, progress: FileProgress) -> str:
        nonlocal codec
        label = "<stdin>" if job.src == "-" else job.src
        if info.capabilities.several_images and job.src != "-" and is_idx_name(job.src):
            return encode_stack(job)
        source: bytes | Path = read_stdin() if job.src == "-" else Path(job.src)
        img, meta = open_image_meta(source, name=label, max_pixels=None if no_pixel_limit else DEFAULT_MAX_PIXELS)
        if codec is None:
            options: dict[str, Any] = {"refine": refine} if refine else {}
            if inner is not None:
                options["inner"] = inner
            codec = get_codec(model, device, info.id, **options)
        t0 = time.perf_counter()
        data = contract.encode(codec, img, quality=quality, bpp=bpp, size=size, icc_profile=meta.icc_profile)
        seconds = time.perf_counter() - t0
        emit(job.dst, data, force, inputs)
        note = f"{len(data)} bytes, {8 * len(data) / (img.shape[0] * img.shape[1]):.4f} bpp"
        if verbosity.verbose:
            fields = api_info(data)
            note += (
                f", {info.id}, model {fields['model']}, {registry.payload(info.id).summary(fields)}, "
                f"{img.shape[1]}x{img.shape[0]}x{img.shape[2]}, encoded in {seconds:.2f} s"
            )
        return note

    def encode_stack(job: Job) -> str:
        # an IDX file is a stack of images: one file of a codec that holds several (its encode_batch)
        nonlocal codec
        stack = read_idx(Path(job.src))
        if codec is None:
            codec = get_codec(model, device, info.id)
        batch = getattr(codec, "encode_batch", None)
        if batch is None or bpp is not None or size is not None:
            raise CaecError(f"{info.id} encodes a stack of images at a --quality only")
        data = batch(stack, quality)
        emit(job.dst, data, force, inputs)
        return f"{len(stack)} images in {len(data)} bytes, {len(data) / len(stack):.2f} bytes an image"

    run_batch(jobs, work, "encoding", force=force, skip_existing=skip_existing, verbosity=verbosity)


def _output_format(dst: str, fmt: str | None) -> str:
    """The image format of a decode output: --format, or the output name's suffix (PNG for
    stdout); a name and a --format that disagree, or a suffix nobody knows, are refused."""
    named = None if dst == "-" else OUTPUT_FORMATS.get(Path(dst).suffix.lower())
    if fmt is not None:
        wanted = FORMAT_ALIASES.get(fmt.upper(), fmt.upper())
        if wanted not in OUTPUT_FORMATS.values():
            known = ", ".join(sorted(set(OUTPUT_FORMATS.values())))
            raise typer.BadParameter(f"unknown image format {fmt!r} (known: {known})", param_hint="'--format'")
        if named is not None and named != wanted:
            raise typer.BadParameter(f"--format {fmt} disagrees with the output name {dst}", param_hint="'--format'")
        return wanted
    if dst == "-":
        return "PNG"
    if named is None:
        raise typer.BadParameter(
            f"cannot tell an image format from the name {dst!r} (known suffixes: {', '.join(OUTPUT_FORMATS)}); "
            "give --format",
            param_hint="'-o'",
        )
    return named


def _numbered(path: Path, index: int, count: int) -> Path:
    """NAME-07.png: image ``index`` of ``count`` from one file, numbered from 1, zero-padded
    so that the names sort in order."""
    return path.with_name(f"{path.stem}-{index:0{len(str(count))}d}{path.suffix}")


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
    passes: Annotated[
        int | None,
        typer.Option("--passes", min=1, metavar="K", help="A progressive file: decode only its first K passes."),
    ] = None,
    bpp: Annotated[
        float | None,
        typer.Option("--bpp", metavar="B", help="A progressive file: decode the passes that fit in B bits per pixel."),
    ] = None,
) -> None:
    """Decompress .cae files to images (NAME.cae -> NAME.decoded.png unless -o says otherwise)."""
    if passes is not None and bpp is not None:
        raise typer.BadParameter("give --passes or --bpp, not both")
    check_force(force, skip_existing)
    verbosity = verbosity_of(quiet, verbose)
    check_flag_words(inputs)
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
            if fields.get("progressive") and not fields.get("complete"):
                whole, declared = progressive.passes(data)
                warn(f"{label}: the file is cut short: decoding the {whole} whole passes of {declared}")
            if passes is not None or bpp is not None:
                data, _ = progressive.cut(data, passes, bpp)
                fields = api_info(data)
            if fields.get("decode_steps"):  # the units of the codec's progress reports
                progress.total(fields["decode_steps"])
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
        # a file of several images (a codec's stack, (N, H, W, C)) gives NAME-1.png, NAME-2.png...
        stack = img if img.ndim == 4 else img[None]
        if len(stack) > 1 and job.dst == "-":
            raise CaecError(f"{label} holds {len(stack)} images: give -o NAME.png to write NAME-1.png...")
        for i, image in enumerate(stack, 1):
            dst = job.dst if len(stack) == 1 else str(_numbered(Path(job.dst), i, len(stack)))
            picture = image_to_bytes(
                image, formats[job.dst], icc_profile=meta.icc_profile, quality=output_quality, lossless=lossless
            )
            emit(dst, picture, force, inputs)
        note = f"{stack.shape[2]}x{stack.shape[1]}x{stack.shape[3]}" + (
            f", {len(stack)} images" if len(stack) > 1 else ""
        )
        if verbosity.verbose:
            note += f", {formats[job.dst]}, model {fields['model']}, decoded in {seconds:.2f} s"
        return note

    run_batch(jobs, work, "decoding", force=force, skip_existing=skip_existing, verbosity=verbosity)


def info(
    file: Annotated[str, typer.Argument(metavar="FILE.cae", help=".cae file ('-' reads stdin).")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
    extract_compact: Annotated[
        str | None,
        typer.Option(
            "--extract-compact",
            metavar="OUT",
            help="Also write the standard codestream a file carries (comcnn: its compact image, a .jpg, or "
            ".j2k/.webp/.avif for another inner codec; OUT's suffix must name that format).",
        ),
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Print the header of a .cae file: size, model, quantization, chunk sizes, bpp."""
    label = "<stdin>" if file == "-" else file
    try:
        data = _read_cae(file, label)
        fields = api_info(data)
        if extract_compact is not None:
            check_output(Job(file, extract_compact), [file], force)
            suffix = None if extract_compact == "-" else Path(extract_compact).suffix
            emit(extract_compact, api_standard_codestream(data, suffix), force, [file])
    except CaecError as e:
        raise fail(f"{label}: {e}" if not str(e).startswith(label) else str(e)) from None
    if as_json:
        typer.echo(json.dumps(fields, indent=2))
        return
    # plain lines, as a shell script or grep reads them (rich's table cost 0.02 s to import)
    rows = []
    for key, value in fields.items():
        if key == "chunks":
            value = ", ".join(f"{k} {v} B" for k, v in value.items()) or "none"
        elif isinstance(value, float):
            value = f"{value:.6g}"
        rows.append((key, str(value)))
    width = max(len(key) for key, _ in rows)
    typer.echo("\n".join([label, *(f"  {key:<{width}}  {value}" for key, value in rows)]))
