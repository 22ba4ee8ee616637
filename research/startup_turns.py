"""Start-up of `caec` from two source trees in turns (issue 20's levers, judged on a loaded
machine by medians of runs taken in turns rather than by absolute times).

    python -m research.startup_turns --tree before=/tmp/caec-before --tree after=. --rounds 15

Each tree is put first on PYTHONPATH (a `git archive` of an older commit, or `.` for the working
tree), its bytecode compiled first as an installed package has it; then every round runs each
case once from each tree (tools.startup's cases, fresh processes), and the median and fastest
wall time and the median peak RSS are printed per tree and case.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import tempfile
from pathlib import Path

from PIL import Image

from tools.startup import CASES, case_args, photo_crop, run_once


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", required=True, help="LABEL=PATH of a source tree (repeatable)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {','.join(CASES)}")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--image", type=Path, default=None, help="a photo to crop 64x64 from")
    args = ap.parse_args(argv)
    trees = dict(t.split("=", 1) for t in args.tree)
    cases = args.cases.split(",")
    envs = {}
    for label, path in trees.items():
        root = Path(path).resolve()
        compileall.compile_dir(root / "cae_codec", quiet=1)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        envs[label] = env
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {(t, c): [] for t in trees for c in cases}
    with tempfile.TemporaryDirectory(prefix="caec-turns-") as tmp:
        work = Path(tmp)
        Image.fromarray(photo_crop(64, args.image)).save(work / "small.png")
        (work / "empty.cae").write_bytes(b"")
        run_once(["encode", "small.png", "-o", "small.cae"], work, envs[next(iter(trees))])
        for _ in range(args.rounds):
            for case in cases:
                for label in trees:
                    seconds, mib, _status = run_once(case_args(case), work, envs[label])
                    runs[label, case].append((seconds, mib))
    print(f"load average after: {os.getloadavg()[0]:.2f}; {args.rounds} rounds in turns")
    print("| case | tree | wall, median (s) | fastest (s) | peak RSS, median (MiB) |")
    print("|---|---|---|---|---|")
    for case in cases:
        for label in trees:
            secs = [s for s, _ in runs[label, case]]
            mibs = [m for _, m in runs[label, case]]
            median, fastest, mib = statistics.median(secs), min(secs), statistics.median(mibs)
            print(f"| {case} | {label} | {median:.3f} | {fastest:.3f} | {mib:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
