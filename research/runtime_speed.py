"""Issue 20: the shipped member's networks on one Kodak image's worth of tiles (24 of 128x128),
encoder then decoder, in torch as the codec ran them before (channels_last, the image layer
sub-pixel) and in ONNX Runtime under its settings; the configurations take turns in every
round, the median and the fastest of --rounds reported.

    python -m research.runtime_speed --threads 2 --rounds 11
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cae_codec import runtime, zoo
from cae_codec.cae import network
from cae_codec.nn.graphs import export_graphs
from cae_codec.nn.layers import UpConv
from cae_codec.weights import load_model

LEVELS = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED}


def ort_pair(
    weights: str, level: str, spin: bool, threads: int, folder: Path | None = None
) -> Callable[[np.ndarray, np.ndarray], None]:
    """The shipped graphs under these settings (``folder``: graphs exported there instead)."""
    path = zoo.catalogue().models[weights].path
    if folder is not None:
        path = folder / path.name

    def session(part: str) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = LEVELS[level]
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        return ort.InferenceSession(str(runtime.graph_path(path, part)), options, providers=["CPUExecutionProvider"])

    enc, dec = session("encoder"), session("decoder")
    return lambda x, y: (enc.run(None, {"input": x}), dec.run(None, {"input": y}))  # type: ignore[return-value]


def torch_pair(weights: str) -> Callable[[np.ndarray, np.ndarray], None]:
    net = load_model(zoo.catalogue().models[weights].path).network.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def run(x: np.ndarray, y: np.ndarray) -> None:
        with torch.inference_mode():
            net.encode(torch.from_numpy(x).contiguous(memory_format=torch.channels_last))
            net.decode(torch.from_numpy(y).contiguous(memory_format=torch.channels_last), 1.0)  # band 0

    return run


def sub_pixel_graphs(weights: str, folder: Path) -> Path:
    """The graphs with every decoder layer in its sub-pixel form (nn/layers.py), the export
    tried and measured 15% faster at level 'all' (where ConvTranspose ran in NCHWc), slower at
    'extended'; the shipped graphs run the image layer alone so, as torch does."""
    source = zoo.catalogue().models[weights].path
    shutil.copy(source, folder / source.name)
    shipped_forward = network._DecoderPart.forward

    def all_sub_pixel(self: network._DecoderPart, y: torch.Tensor) -> torch.Tensor:
        x = y
        for layer in self.net.decoders()[self.band]:  # type: ignore[attr-defined]
            x = layer.subpixel_forward(x) if isinstance(layer, UpConv) else layer(x)
        return x + 0.5

    network._DecoderPart.forward = all_sub_pixel  # type: ignore[method-assign]
    try:
        export_graphs(folder / source.name)
    finally:
        network._DecoderPart.forward = shipped_forward  # type: ignore[method-assign]
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="cae-gdn-v3-low")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = {"torch (before issue 20)": torch_pair(args.weights)}
    folder = sub_pixel_graphs(args.weights, Path(tempfile.mkdtemp(prefix="caec-graphs-")))
    for level in LEVELS:
        configs[f"onnxruntime, optimization {level}, spinning off, every decoder layer sub-pixel"] = ort_pair(
            args.weights, level, False, args.threads, folder
        )
    for level in LEVELS:
        for spin in (True, False):
            name = f"onnxruntime, optimization {level}, spinning {'on' if spin else 'off'}"
            configs[name] = ort_pair(args.weights, level, spin, args.threads)
    shutil.rmtree(folder)
    rng = np.random.default_rng(0)
    x = rng.random((24, 3, 128, 128), dtype=np.float32)
    y = rng.standard_normal((24, 192, 8, 8)).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in configs}
    for run in configs.values():
        run(x, y)  # warm-up
    for _ in range(args.rounds):
        for name, run in configs.items():
            t0 = time.perf_counter()
            run(x, y)
            times[name].append(time.perf_counter() - t0)
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
