"""The options and checks that several `caec` commands share."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cae_codec.cli.kit import Verbosity
from cae_codec.imageio import DEFAULT_MAX_PIXELS

# a word that a user meant as the value of a flag (`--force true`), not as a file name
FLAG_WORDS = {"true", "false", "yes", "no", "on", "off"}


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


def check_flag_words(inputs: list[str]) -> None:
    for src in inputs:
        if src.lower() in FLAG_WORDS and not os.path.lexists(src):
            raise typer.BadParameter(f"no file {src!r}: flags such as --force take no value")


def verbosity_of(quiet: bool, verbose: bool) -> Verbosity:
    if quiet and verbose:
        raise typer.BadParameter("give --quiet or --verbose, not both")
    return Verbosity(quiet=quiet, verbose=verbose)


def check_force(force: bool, skip_existing: bool) -> None:
    if force and skip_existing:
        raise typer.BadParameter("give --force or --skip-existing, not both")
