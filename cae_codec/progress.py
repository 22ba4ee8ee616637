"""The one progress bar style of the CLI: on stderr, only when stderr is a terminal, gone when done."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def progress_bar(enabled: bool = True) -> Progress:
    """A bar for counted work; data on stdout (pipes, --json) is never mixed with it."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not (enabled and sys.stderr.isatty()),
        transient=True,
    )
