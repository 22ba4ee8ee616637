"""What the benchmark tools share: the processor's name, and writing one section of a page
(docs/benchmark.md holds tools/speed.py's section, tools/startup.py's and notes by hand)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The processor's model name where Linux gives it (machines of one kind may differ), else its architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def replace_section(path: Path, name: str, lines: list[str]) -> None:
    """Write ``lines`` into ``path`` as its section ``name`` (between two HTML comments that
    name it), keeping the rest of the page: several tools, and notes by hand, share a page."""
    begin, end = f"<!-- {name}: generated, do not edit -->", f"<!-- {name}: end -->"
    block = "\n".join([begin, *lines, end])
    text = path.read_text() if path.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text)
