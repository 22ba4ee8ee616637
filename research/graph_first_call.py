"""Issue 20: what a one-file process pays for ONNX Runtime, under its levers. Each configuration
runs in a fresh process, the configurations taking turns in every round: the time to import
onnxruntime, to create the encoder's and the band-0 decoder's sessions, and to run each on one
Kodak image's worth of tiles (24 of 128x128, the 192 latent maps of 8x8) a first time and then
again; medians and fastest of --rounds printed.

    python -m research.graph_first_call --threads 1 --rounds 7 [--configs shipped,arena-off,...]

Configurations (all at the shipped level 'extended', threads not spinning, unless named):
- ``shipped``: cae_codec.runtime's settings;
- ``preoptimized``: graphs optimized offline by ONNX Runtime (saved once, in a temporary
  folder), loaded with optimization off;
- ``mem-pattern-off``, ``arena-off``: the memory planner, the CPU arena turned off;
- ``spinning``: idle threads spinning;
- ``level-basic``: optimization level 'basic' only;
- ``sub-pixel``: every decoder layer in its sub-pixel form (research.runtime_speed's export);
- ``calls-of-8``: the 24 tiles in three calls of 8 (smaller buffers, touched once and reused);
- ``thp``: glibc's malloc asked for transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1
  in the process's environment: fewer page faults on first touching the activations).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("shipped", "preoptimized", "mem-pattern-off", "arena-off", "spinning", "level-basic", "sub-pixel",
           "calls-of-8", "thp")  # fmt: skip
STEPS = ("import", "create encoder", "encoder run 1", "encoder run 2", "encoder run 3",
         "create decoder", "decoder run 1", "decoder run 2", "decoder run 3")  # fmt: skip


def child(config: str, threads: int, folder: Path, weights: str) -> dict[str, float]:
    """The timings of one fresh process (run as ``--child``)."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    import numpy as np
    import onnxruntime as ort

    times["import"] = time.perf_counter() - t0
    from cae_codec import runtime, zoo

    path = zoo.catalogue().models[weights].path

    def session(part: str) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if config == "spinning" else "0")
        graph = runtime.graph_path(path, part)
        if config == "preoptimized":
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            graph = folder / f"{part}.opt.onnx"
        elif config == "sub-pixel":
            graph = runtime.graph_path(folder / path.name, part)
        elif config == "mem-pattern-off":
            options.enable_mem_pattern = False
        elif config == "arena-off":
            options.enable_cpu_mem_arena = False
        elif config == "level-basic":
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])

    rng = np.random.default_rng(0)
    inputs = {
        "encoder": rng.random((24, 3, 128, 128), dtype=np.float32),
        "decoder": rng.standard_normal((24, 192, 8, 8)).astype(np.float32),
    }
    for part in ("encoder", "decoder"):
        t0 = time.perf_counter()
        sess = session(part)
        times[f"create {part}"] = time.perf_counter() - t0
        for k in (1, 2, 3):
            t0 = time.perf_counter()
            if config == "calls-of-8":
                for i in range(0, 24, 8):
                    sess.run(None, {"input": inputs[part][i : i + 8]})
            else:
                sess.run(None, {"input": inputs[part]})
            times[f"{part} run {k}"] = time.perf_counter() - t0
    return times


def prepare(folder: Path, weights: str, configs: list[str]) -> None:
    """The offline-optimized graphs and the sub-pixel export, where asked for."""
    import onnxruntime as ort

    from cae_codec import runtime, zoo

    path = zoo.catalogue().models[weights].path
    if "preoptimized" in configs:
        for part in ("encoder", "decoder"):
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            options.optimized_model_filepath = str(folder / f"{part}.opt.onnx")
            ort.InferenceSession(str(runtime.graph_path(path, part)), options, providers=["CPUExecutionProvider"])
    if "sub-pixel" in configs:
        from research.runtime_speed import sub_pixel_graphs

        sub_pixel_graphs(weights, folder)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--weights", default="cae-gdn-v3-low")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.threads, args.folder, args.weights)))
        return 0
    configs = args.configs.split(",")
    with tempfile.TemporaryDirectory(prefix="caec-first-call-") as tmp:
        folder = Path(tmp)
        prepare(folder, args.weights, configs)
        runs: dict[str, list[dict[str, float]]] = {c: [] for c in configs}
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            for config in configs:
                env = dict(os.environ)
                if config == "thp":
                    env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
                out = subprocess.run(
                    [sys.executable, "-m", "research.graph_first_call", "--child", config, "--folder", str(folder),
                     "--threads", str(args.threads), "--weights", args.weights],
                    check=True, capture_output=True, text=True, env=env,
                )  # fmt: skip
                runs[config].append(json.loads(out.stdout.splitlines()[-1]))
    print(f"threads {args.threads}, {args.rounds} rounds in turns, load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; medians (fastest) in seconds")  # fmt: skip
    print("| step | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for step in STEPS:
        cells = []
        for config in configs:
            values = [r[step] for r in runs[config]]
            cells.append(f"{statistics.median(values):.3f} ({min(values):.3f})")
        print(f"| {step} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
