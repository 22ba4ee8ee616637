"""A bounded load test of `caec serve` (docs/web.md, "Load test").

    python tools/web_load.py --requests 50 --workers 2 --queue 8 --json docs/web_load.json

Starts its own `caec serve` on 127.0.0.1 (a free port; nothing else is ever targeted), with
its temporary folder ($TMPDIR) pointed at a fresh empty one, warms it up with a few requests,
then sends ``--requests`` compress requests at once (a synthesized photo-like PNG, coded by
``--codecs`` at their default settings), ``--rounds`` times. Every request must complete
(status 200, its stream ending without an error event) or be refused with 503; afterwards
the server's temporary folder must hold what it held before the load, and its resident
memory (VmRSS from /proc, sampled throughout) must come back within ``--rss-tolerance-mib``
of its level after the warm-up. Exit status 0 when all holds, 1 otherwise; the numbers are
printed (and written as JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

HOST = "127.0.0.1"  # the only host this tool sends anything to
MAX_REQUESTS = 200  # bounded: a load test, not a flood
WARM_UP = 3


@dataclass
class Outcome:
    status: str  # "ok", "busy" (503) or "failed"
    seconds: float
    detail: str = ""


@dataclass
class Round:
    requests: int
    ok: int
    busy: int
    failed: int
    wall_s: float
    latency_ok_p50_s: float | None
    latency_ok_max_s: float | None
    rss_peak_mib: float
    rss_after_mib: float
    temp_entries_after: int
    failures: list[str] = field(default_factory=list)


def photo_png(side: int) -> bytes:
    """A smooth photo-like image (gradients and mild noise), seeded: the same bytes each run."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64)
    chans = [128 + 90 * np.sin(xx / (9.0 + 4 * k) + k) * np.cos(yy / (13.0 + 3 * k)) for k in range(3)]
    pixels = np.clip(np.stack(chans, axis=2) + rng.normal(0, 4, (side, side, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def rss_mib(pid: int) -> float:
    """The resident set size of process ``pid`` (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def temp_entries(folder: Path) -> int:
    return sum(len(dirs) + len(files) for _, dirs, files in os.walk(folder))


def one_request(url: str, body: bytes, timeout: float) -> Outcome:
    t0 = time.perf_counter()
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            lines = [json.loads(line) for line in resp.read().splitlines() if line]
    except urllib.error.HTTPError as e:
        seconds = time.perf_counter() - t0
        if e.code == 503:
            return Outcome("busy", seconds)
        return Outcome("failed", seconds, f"HTTP {e.code}: {e.read()[:200]!r}")
    except OSError as e:
        return Outcome("failed", time.perf_counter() - t0, f"{type(e).__name__}: {e}")
    seconds = time.perf_counter() - t0
    errors = [e["message"] for e in lines if e.get("event") == "error"]
    if errors:
        return Outcome("failed", seconds, errors[0])
    if not lines or lines[-1] != {"event": "end"} or not any(e.get("event") == "result" for e in lines):
        return Outcome("failed", seconds, "the stream ended early")
    return Outcome("ok", seconds)


class Sampler:
    """The server's RSS every 50 ms while a round runs: its peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_mib(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def settle(pid: int, seconds: float = 2.0) -> float:
    """The server's RSS once the round's last responses are out (the lowest over a short wait)."""
    end = time.monotonic() + seconds
    low = rss_mib(pid)
    while time.monotonic() < end:
        time.sleep(0.1)
        low = min(low, rss_mib(pid))
    return low


def start_server(args: argparse.Namespace, tmp: Path) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-m", "cae_codec", "serve", "--host", HOST, "--port", "0"]
    cmd += ["--workers", str(args.workers), "--queue", str(args.queue), "--timeout", str(args.timeout)]
    cmd += ["--threads", str(args.threads)]
    env = {**os.environ, "TMPDIR": str(tmp)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if f"serving on http://{HOST}:" not in line:
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise SystemExit(f"web_load: caec serve did not start: {line.strip()} {err.strip()}")
    return proc, line.split("serving on ")[1].split()[0]


def check(rounds: list[Round], rss_base: float, temp_base: int, tolerance: float) -> list[str]:
    """What went wrong, one line each (empty: the server held)."""
    problems = []
    for i, r in enumerate(rounds, start=1):
        if r.failed:
            problems.append(f"round {i}: {r.failed} requests neither completed nor got 503: {r.failures[:3]}")
        if not r.ok:
            problems.append(f"round {i}: no request completed")
        if r.temp_entries_after != temp_base:
            problems.append(f"round {i}: {r.temp_entries_after} temporary entries after, {temp_base} before")
        if r.rss_after_mib > rss_base + tolerance:
            problems.append(
                f"round {i}: resident memory {r.rss_after_mib:.0f} MiB after, {rss_base:.0f} MiB before "
                f"(more than {tolerance:g} MiB above)"
            )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help=f"concurrent requests a round (1..{MAX_REQUESTS})")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="caec serve --workers")
    parser.add_argument("--queue", type=int, default=8, help="caec serve --queue")
    parser.add_argument("--threads", type=int, default=1, help="caec serve --threads")
    parser.add_argument("--codecs", default="cae-pca-j2k,jpeg")
    parser.add_argument("--side", type=int, default=256, help="side of the square test image, pixels")
    parser.add_argument("--timeout", type=float, default=300.0, help="caec serve --timeout, and each request's")
    parser.add_argument("--rss-tolerance-mib", type=float, default=64.0)
    parser.add_argument("--json", type=Path, help="write the numbers here too")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS:
        parser.error(f"--requests must be 1..{MAX_REQUESTS}")
    if args.rounds < 1 or args.side < 8:
        parser.error("--rounds must be at least 1 and --side at least 8")

    body = photo_png(args.side)
    tmp = Path(tempfile.mkdtemp(prefix="caec-web-load-"))
    proc, base_url = start_server(args, tmp)
    url = f"{base_url}api/compress?codecs={args.codecs}&mode=quality"
    try:
        for _ in range(WARM_UP):  # models loaded, first-call costs paid: the baseline is a server at rest
            warm = one_request(url, body, args.timeout)
            if warm.status != "ok":
                raise SystemExit(f"web_load: the warm-up request failed: {warm.detail}")
        rss_base = settle(proc.pid)
        temp_base = temp_entries(tmp)
        rounds = []
        for _ in range(args.rounds):
            with Sampler(proc.pid) as sampler, ThreadPoolExecutor(args.requests) as pool:
                t0 = time.perf_counter()
                outcomes = list(pool.map(lambda _: one_request(url, body, args.timeout), range(args.requests)))
                wall = time.perf_counter() - t0
            ok = [o.seconds for o in outcomes if o.status == "ok"]
            rounds.append(
                Round(
                    requests=args.requests,
                    ok=len(ok),
                    busy=sum(o.status == "busy" for o in outcomes),
                    failed=sum(o.status == "failed" for o in outcomes),
                    wall_s=round(wall, 3),
                    latency_ok_p50_s=round(statistics.median(ok), 3) if ok else None,
                    latency_ok_max_s=round(max(ok), 3) if ok else None,
                    rss_peak_mib=round(sampler.peak, 1),
                    rss_after_mib=round(settle(proc.pid), 1),
                    temp_entries_after=temp_entries(tmp),
                    failures=[o.detail for o in outcomes if o.status == "failed"],
                )
            )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    problems = check(rounds, rss_base, temp_base, args.rss_tolerance_mib)
    report = {
        "command": "python tools/web_load.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "server": {
            "workers": args.workers,
            "queue": args.queue,
            "threads": args.threads,
            "codecs": args.codecs,
            "image": f"{args.side}x{args.side}",
        },
        "rss_baseline_mib": round(rss_base, 1),
        "temp_entries_baseline": temp_base,
        "rounds": [asdict(r) for r in rounds],
        "held": not problems,
        "problems": problems,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    for p in problems:
        print(f"web_load: {p}", file=sys.stderr)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
