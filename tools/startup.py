"""Start-up cost of `caec`, as a shell script calling it once per file pays it (`make bench`).

Each case runs in a fresh process (``python -m cae_codec ...``), the cases taking turns in every
round; wall time (process start to exit) and peak resident memory (the child's own, from
wait4) are kept per run, and the median and the fastest of --repeats rounds reported:

- ``info``: `caec info` of a small .cae file;
- ``refuse``: `caec decode` of a zero-byte file (a bad input: refused before any model loads);
- ``encode``: `caec encode` of a SIZE x SIZE photo crop at the default quality;
- ``decode``: `caec decode` of that file to PNG.

Writes its section of docs/benchmark.md and a JSON file with every run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from tools.pages import cpu_name, replace_section

CASES = ("info", "refuse", "encode", "decode")
TARGETS = {"info": (0.3, None), "refuse": (None, None), "encode": (1.0, 150.0), "decode": (1.0, 150.0)}
SECTION = "startup"


def photo_crop(size: int, source: Path | None) -> np.ndarray:
    """A size x size RGB crop from the middle of ``source``, or a seeded synthetic photo-like
    image (smooth shapes and noise) when there is none."""
    if source is not None:
        img = np.asarray(Image.open(source).convert("RGB"))
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        if y >= 0 and x >= 0:
            return np.ascontiguousarray(img[y : y + size, x : x + size])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    planes = [
        128 + 60 * np.sin(6 * xx + 2 * c) * np.cos(4 * yy - c) + 8 * rng.standard_normal((size, size)) for c in range(3)
    ]
    return np.stack(planes, -1).clip(0, 255).astype(np.uint8)


def run_once(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit status of one fresh ``python -m cae_codec`` run."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cae_codec", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return seconds, usage.ru_maxrss / 1024, proc.returncode  # ru_maxrss is in KiB on Linux


def case_args(case: str) -> list[str]:
    return {
        "info": ["info", "small.cae"],
        "refuse": ["decode", "empty.cae", "-o", "empty.png", "--force"],
        "encode": ["encode", "small.png", "-o", "again.cae", "--force"],
        "decode": ["decode", "small.cae", "-o", "small.decoded.png", "--force"],
    }[case]


def measure(size: int, source: Path | None, repeats: int, env: dict[str, str]) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory(prefix="caec-startup-") as tmp:
        work = Path(tmp)
        Image.fromarray(photo_crop(size, source)).save(work / "small.png")
        (work / "empty.cae").write_bytes(b"")
        _, _, status = run_once(["encode", "small.png", "-o", "small.cae"], work, env)
        if status != 0:
            raise RuntimeError(f"caec encode of the {size}x{size} image failed (exit status {status})")
        for _ in range(repeats):
            for case in CASES:
                seconds, mib, status = run_once(case_args(case), work, env)
                if status != (1 if case == "refuse" else 0):
                    raise RuntimeError(f"caec {case} exited with status {status}")
                runs[case].append({"seconds": seconds, "peak_mib": mib})
    return runs


def summarize(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, float]]:
    out = {}
    for case, rows in runs.items():
        secs, mibs = [r["seconds"] for r in rows], [r["peak_mib"] for r in rows]
        out[case] = {
            "median_s": statistics.median(secs),
            "min_s": min(secs),
            "median_peak_mib": statistics.median(mibs),
            "max_peak_mib": max(mibs),
        }
    return out


def verdict(case: str, stats: dict[str, float]) -> str:
    seconds, mib = TARGETS[case]
    parts = []
    if seconds is not None:
        parts.append(f"<= {seconds} s: {'yes' if stats['median_s'] <= seconds else '**no**'}")
    if mib is not None:
        parts.append(f"<= {mib:.0f} MB: {'yes' if stats['max_peak_mib'] * 1.048576 <= mib else '**no**'}")
    return ", ".join(parts) or "-"


def markdown(summary: dict[str, Any], command: str) -> list[str]:
    label = {
        "info": "`caec info` of a small file",
        "refuse": "a zero-byte input refused (`caec decode`)",
        "encode": f"`caec encode` of a {summary['size']}x{summary['size']} image",
        "decode": "`caec decode` of it to PNG",
    }
    lines = [
        "## Start-up: one process per file",
        "",
        f"Generated by `make bench` (`{command}`) on {summary['date']}: each case in a fresh process, "
        f"the cases taking turns in each of {summary['repeats']} rounds; image: {summary['image']}; "
        f"runtime {summary['runtime']}; {summary['cpu']}, {summary['cores']} cores, load average "
        f"{summary['load_before']:.1f} before and {summary['load_after']:.1f} after"
        + (" (other work shared the cores)" if max(summary["load_before"], summary["load_after"]) > 1 else "")
        + f". Raw numbers: `{summary['json']}`.",
        "",
        "| | wall, median (s) | fastest (s) | peak RSS, median (MiB) | target (issue 20) |",
        "|---|---|---|---|---|",
    ]
    for case in CASES:
        s = summary["cases"][case]
        lines.append(
            f"| {label[case]} | {s['median_s']:.2f} | {s['min_s']:.2f} | {s['median_peak_mib']:.0f} | "
            f"{verdict(case, s)} |"
        )
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64, help="side of the small image (default: %(default)s)")
    ap.add_argument("--image", type=Path, default=None, help="crop the small image from this photo")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("docs/startup.json"))
    ap.add_argument("--markdown", type=Path, default=Path("docs/benchmark.md"))
    args = ap.parse_args(argv)
    if args.size < 1 or args.repeats < 1:
        print("startup: error: --size and --repeats must be at least 1", file=sys.stderr)
        return 1
    if args.image is not None and not args.image.is_file():
        print(f"startup: error: no image {args.image}", file=sys.stderr)
        return 1
    env = dict(os.environ)
    load_before = os.getloadavg()[0]
    try:
        runs = measure(args.size, args.image, args.repeats, env)
    except RuntimeError as e:
        print(f"startup: error: {e}", file=sys.stderr)
        return 1
    summary: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "size": args.size,
        "image": f"a {args.size}x{args.size} crop of {args.image.name}" if args.image else "synthetic",
        "repeats": args.repeats,
        "runtime": env.get("CAEC_RUNTIME") or "auto",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        "json": str(args.out),
        "cases": summarize(runs),
    }
    command = f"python -m tools.startup --size {args.size} --repeats {args.repeats}"
    command += f" --image {args.image}" if args.image else ""
    args.out.write_text(json.dumps({"summary": summary, "runs": runs}, indent=1) + "\n")
    lines = markdown(summary, command)
    replace_section(args.markdown, SECTION, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
