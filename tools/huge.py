"""Peak memory and time of `caec encode` / `caec decode` on huge photos.

    python tools/huge.py --sizes 12 48 100 --kodak ../shared/data/kodak
    python tools/huge.py --sizes 12 --refine 20     # the encoder's slow mode

For each size (megapixels) a smooth photo-like PNG is synthesized (Kodak images upscaled 2x
and tiled side by side, 3:2 aspect), then `caec encode` and `caec decode` each run in a
fresh process, whose peak resident set size is read from os.wait4's rusage (ru_maxrss of
that one child, not of everything this script started) together with its wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

KODAK = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kodak"


@dataclass
class Run:
    megapixels: float
    width: int
    height: int
    step: str
    peak_rss_mib: float
    wall_s: float
    output_bytes: int


def synthesize(path: Path, megapixels: float, kodak: Path) -> tuple[int, int]:
    """A width x height PNG of upscaled Kodak photos; written quickly (zlib level 1)."""
    width = round(math.sqrt(megapixels * 1e6 * 1.5))
    height = round(width / 1.5)
    sources = sorted(kodak.glob("*.png"))
    if not sources:
        raise SystemExit(f"no Kodak PNGs in {kodak}")
    canvas = Image.new("RGB", (width, height))
    k = 0
    for y in range(0, height, 1024):  # a 768x512 Kodak image upscaled 2x is 1536x1024
        for x in range(0, width, 1536):
            with Image.open(sources[k % len(sources)]) as im:
                photo = im.convert("RGB")
            if photo.width < photo.height:  # the portrait ones
                photo = photo.rotate(90, expand=True)
            canvas.paste(photo.resize((1536, 1024), Image.Resampling.BICUBIC), (x, y))
            k += 1
    canvas.save(path, compress_level=1)
    return width, height


def measure(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of one child process; fails loudly if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return usage.ru_maxrss / 1024, wall  # ru_maxrss is in KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[12, 48, 100], help="megapixels")
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument("--workdir", type=Path, default=None, help="where the big files go (default: a temp dir)")
    ap.add_argument("--model", default=None, help="passed to `caec encode --model`")
    ap.add_argument("--refine", type=int, default=0, help="passed to `caec encode --refine`")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)

    caec = [sys.executable, "-m", "cae_codec"]
    model = ["--model", args.model] if args.model else []
    model += ["--refine", str(args.refine)] if args.refine else []
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        for mp in args.sizes:
            src, cae, out = work / f"{mp:g}mp.png", work / f"{mp:g}mp.cae", work / f"{mp:g}mp.out.png"
            width, height = synthesize(src, mp, args.kodak)
            real_mp = width * height / 1e6
            print(f"{real_mp:.1f} MP ({width}x{height}), source PNG {src.stat().st_size / 2**20:.0f} MiB", flush=True)
            steps = [
                ("encode", [*caec, "encode", str(src), "-o", str(cae), "--device", "cpu", *model], cae),
                ("decode", [*caec, "decode", str(cae), "-o", str(out), "--device", "cpu"], out),
            ]
            for name, cmd, product in steps:
                rss, wall = measure(cmd)
                runs.append(Run(real_mp, width, height, name, rss, wall, product.stat().st_size))
                print(f"  {name}: peak RSS {rss:.0f} MiB, {wall:.1f} s, {product.stat().st_size} bytes", flush=True)
            for f in (src, cae, out):
                f.unlink()

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\nmachine: {machine}\n")
    print("| MP | size | step | peak RSS (MiB) | wall (s) | output bytes |")
    print("|---:|---|---|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r.megapixels:.1f} | {r.width}x{r.height} | {r.step} | {r.peak_rss_mib:.0f} | {r.wall_s:.1f} "
            f"| {r.output_bytes} |"
        )
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "runs": [asdict(r) for r in runs]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
