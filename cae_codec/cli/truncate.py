"""`caec truncate`: a progressive file cut to fewer passes or to a smaller rate, without
re-encoding (its first passes, written as a complete file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cae_codec import progressive
from cae_codec.cli.kit import FileProgress, Job, emit, run_batch, stdin_binary
from cae_codec.cli.options import ForceOpt, QuietOpt, check_flag_words, verbosity_of
from cae_codec.container import read_file
from cae_codec.errors import CaecError


def truncate(
    file: Annotated[str, typer.Argument(metavar="FILE.cae", help="Progressive .cae file ('-' reads stdin).")],
    output: Annotated[str, typer.Option("-o", "--output", metavar="PATH", help="Output .cae file ('-': stdout).")],
    passes: Annotated[int | None, typer.Option("--passes", min=1, metavar="K", help="Keep the first K passes.")] = None,
    bpp: Annotated[
        float | None,
        typer.Option("--bpp", metavar="B", help="Keep the passes that fit in B bits per pixel (header included)."),
    ] = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Cut a progressive .cae file to its first passes: a smaller rate without re-encoding."""
    if (passes is None) == (bpp is None):
        raise typer.BadParameter("give --passes or --bpp (one of them)")
    check_flag_words([file])
    verbosity = verbosity_of(quiet, False)

    def work(job: Job, progress: FileProgress) -> str:
        label = "<stdin>" if job.src == "-" else job.src
        data = read_file(stdin_binary(label) if job.src == "-" else Path(job.src), label)
        try:
            whole, declared = progressive.passes(data)
            out, kept = progressive.cut(data, passes, bpp)
        except CaecError as e:
            raise type(e)(f"{label}: {e}") from None
        emit(job.dst, out, force, [file])
        of = f"{whole} whole of {declared}" if whole < declared else f"{whole}"
        return f"{kept} of {of} passes, {len(data)} -> {len(out)} bytes"

    run_batch([Job(file, output)], work, "truncating", force=force, verbosity=verbosity)
