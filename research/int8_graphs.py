"""Issue 20's int8 lever: the shipped family's graphs statically quantized by ONNX Runtime (QDQ,
int8 weights per channel, uint8 activations, calibrated on training crops), their speed against
the float graphs in turns, and the files they make and the pixels they decode.

    python -m research.int8_graphs quantize --out runs/int8 --crops 48
    python -m research.int8_graphs speed --variants int8=runs/int8,int8-sub-pixel=runs/int8-subpixel --threads 1
    python -m research.int8_graphs quality --out runs/int8 --kodak ../shared/data/kodak --qualities 2,4,6
    python -m research.int8_graphs codec-time --variants sub-pixel=runs/int8-subpixel/float --threads 2
    python -m research.int8_graphs pixels --out runs/int8-subpixel/float --qualities 1,4,8
    python -m research.int8_graphs bdrate --out runs/int8 --which encoder -- --codecs caec,jpeg2000 -j 1 \
        --data-dir ../shared/data --out runs/int8/bd-encoder

``quantize`` writes NAME.PART.onnx for every member's parts into --out (self-contained: int8
weights inside), calibrated on the graph inputs the float codec gives for --crops random 128x128
crops of ../shared/data/train at qualities 1..8 (the family's steps: every band and member).
``speed`` times one Kodak image's worth of tiles (24) through the low member's encoder and
band-0 decoder, float and int8 taking turns. ``quality`` encodes and decodes Kodak with the
float graphs and with --which (encoder, decoder or both) int8, and prints bpp and PSNR (8-bit,
per image, averaged) per quality; `caec bdrate` over these needs the same substitution, which
``quality --bdrate`` runs in-process (research.int8_graphs swaps runtime.graph_path).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from cae_codec import runtime, zoo

FAMILY = ("cae-gdn-v3-low", "cae-gdn-v3-high")
TRAIN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "train"


def crops(count: int, seed: int = 0) -> list[np.ndarray]:
    """``count`` 128x128 RGB crops from random training images (seeded)."""
    rng = np.random.default_rng(seed)
    files = sorted(TRAIN.glob("*.jpg")) + sorted(TRAIN.glob("*.png"))
    out = []
    for i in rng.choice(len(files), size=count, replace=len(files) < count):
        img = np.asarray(Image.open(files[i]).convert("RGB"))
        y, x = rng.integers(0, img.shape[0] - 128), rng.integers(0, img.shape[1] - 128)
        out.append(np.ascontiguousarray(img[y : y + 128, x : x + 128]))
    return out


def recorded_inputs(images: list[np.ndarray], qualities: range) -> dict[tuple[str, str], list[np.ndarray]]:
    """Every graph's inputs (keyed by weights file name and part) while the float codec encodes
    and decodes ``images`` at ``qualities``."""
    import cae_codec

    seen: dict[tuple[str, str], list[np.ndarray]] = defaultdict(list)
    call = runtime.Graph.__call__

    def recording(self: runtime.Graph, x: np.ndarray) -> np.ndarray:
        name, part = self.path.name.split(".", 1)
        seen[name, part.removesuffix(".onnx")].append(np.array(x, dtype=np.float32))
        return call(self, x)

    runtime.Graph.__call__ = recording  # type: ignore[method-assign]
    try:
        for img in images:
            for q in qualities:
                cae_codec.decode(cae_codec.encode(img, quality=q))
    finally:
        runtime.Graph.__call__ = call  # type: ignore[method-assign]
    return seen


class _Reader:
    def __init__(self, batches: list[np.ndarray]) -> None:
        self._it: Iterator[np.ndarray] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._it, None)
        return None if x is None else {"input": x}


def quantize(out: Path, count: int, sub_pixel: bool = False, keep_float: tuple[str, ...] = ()) -> None:
    """``keep_float``: node names ending so stay float too (``encoder.6/Conv``: the latent's own layer)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out.mkdir(parents=True, exist_ok=True)
    seen = recorded_inputs(crops(count), range(1, 9))
    sources = {name: zoo.catalogue().models[name].path for name, _ in seen}
    if sub_pixel:
        # every decoder layer as a convolution and a pixel shuffle (research.runtime_speed): ONNX
        # Runtime has int8 convolutions, and ran the int8 ConvTranspose no faster than float
        from research.runtime_speed import sub_pixel_graphs

        folder = out / "float"  # the float graphs in that form, kept to time against
        folder.mkdir(exist_ok=True)
        for name in sources:
            sources[name] = sub_pixel_graphs(name, folder) / sources[name].name
    for (name, part), batches in sorted(seen.items()):
        source = runtime.graph_path(sources[name], part)
        target = out / source.name
        t0 = time.perf_counter()
        # the GDN's 1x1 convolutions (of the squared activations, whose range uint8 cannot
        # hold without losing the small values; their weights are computed from the stored
        # parameters, not stored) stay float: only the layers' own convolutions
        graph = onnx.load(str(source), load_external_data=False).graph
        stored = {t.name for t in graph.initializer}
        gdn = [n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose") and n.input[1] not in stored]
        gdn += [n.name for n in graph.node if n.name.endswith(keep_float)] if keep_float else []
        quantize_static(
            str(source),
            str(target),
            _Reader(batches),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["Conv", "ConvTranspose"],
            nodes_to_exclude=gdn,
            calibrate_method=CalibrationMethod.MinMax,
        )
        tiles = sum(len(b) for b in batches)
        print(f"{target}: {tiles} tiles of calibration, convolutions left float: {len(gdn)}, "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip


def _session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def speed(variants: dict[str, Path], threads: int, rounds: int, weights: str) -> None:
    """The shipped float graphs against each variant (label -> folder of graphs) in turns."""
    source = zoo.catalogue().models[weights].path
    rng = np.random.default_rng(0)
    inputs = {
        "encoder": rng.random((24, 3, 128, 128), dtype=np.float32),
        "decoder": rng.standard_normal((24, 192, 8, 8)).astype(np.float32),
    }
    sessions = {}
    for part in inputs:
        float_path = runtime.graph_path(source, part)
        sessions["float", part] = _session(float_path, threads)
        for label, folder in variants.items():
            sessions[label, part] = _session(folder / float_path.name, threads)
    times: dict[tuple[str, str], list[float]] = defaultdict(list)
    for sess_key, sess in sessions.items():
        sess.run(None, {"input": inputs[sess_key[1]]})  # warm-up
    for _ in range(rounds):
        for (kind, part), sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(None, {"input": inputs[part]})
            times[kind, part].append(time.perf_counter() - t0)
    print(f"{weights}, 24 tiles, {threads} thread(s), {rounds} rounds in turns; median (fastest) s")
    for (kind, part), values in times.items():
        print(f"| {part} | {kind} | {statistics.median(values):.4f} | {min(values):.4f} |")


def swap_graphs(out: Path, which: str) -> None:
    """From now on this process runs the int8 graphs of ``which`` (encoder, decoder, both)."""
    shipped = runtime.graph_path

    def graph_path(weights: Path, part: str) -> Path:
        is_decoder = part.startswith("decoder")
        if which == "both" or (which == "decoder") == is_decoder:
            return out / shipped(weights, part).name
        return shipped(weights, part)

    runtime.graph_path = graph_path  # type: ignore[assignment]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse else 99.0


def quality(out: Path, kodak: Path, qualities: list[int], which: str) -> None:
    """bpp and PSNR per quality with float graphs, then with ``which`` int8 (fresh codecs)."""
    import cae_codec
    from cae_codec import registry

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(kodak.glob("*.png"))]
    results: dict[str, dict[int, tuple[float, float, int]]] = {}
    for kind in ("float", which):
        if kind != "float":
            swap_graphs(out, which)
            runtime._GRAPHS.clear()
            registry_cache = getattr(registry, "_LOADED", None)
            if isinstance(registry_cache, dict):
                registry_cache.clear()
        results[kind] = {}
        for q in qualities:
            bpps, psnrs = [], []
            for img in images:
                data = cae_codec.encode(img, quality=q)
                bpps.append(8 * len(data) / (img.shape[0] * img.shape[1]))
                psnrs.append(psnr(img, cae_codec.decode(data)))
            results[kind][q] = (float(np.mean(bpps)), float(np.mean(psnrs)), len(images))
    print(f"| quality | float bpp | float PSNR | int8 ({which}) bpp | int8 PSNR | PSNR change (dB) |")
    print("|---|---|---|---|---|---|")
    for q in qualities:
        fb, fp, _ = results["float"][q]
        ib, ip, n = results[which][q]
        print(f"| {q} | {fb:.4f} | {fp:.3f} | {ib:.4f} | {ip:.3f} | {ip - fp:+.3f} |")
    print(f"({n} Kodak images)")


def pixels(out: Path, kodak: Path, qualities: list[int]) -> None:
    """The shipped graphs' files decoded by the shipped decoders and by ``out``'s: how many
    samples differ, and by how much (the issue's +-1 rule)."""
    import cae_codec

    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(kodak.glob("*.png"))]
    files = {q: [cae_codec.encode(img, quality=q) for img in images] for q in qualities}
    shipped = {q: [cae_codec.decode(f) for f in fs] for q, fs in files.items()}
    swap_graphs(out, "decoder")
    runtime._GRAPHS.clear()
    print(f"| quality | samples that differ (of {sum(i.size for i in images)}) | per image | largest difference |")
    print("|---|---|---|---|")
    for q, fs in files.items():
        diffs = [
            np.abs(cae_codec.decode(f).astype(np.int16) - a.astype(np.int16))
            for f, a in zip(fs, shipped[q], strict=True)
        ]
        counts = [int((d > 0).sum()) for d in diffs]
        print(f"| {q} | {sum(counts)} | {min(counts)}-{max(counts)} | {max(int(d.max()) for d in diffs)} |")


def codec_time(variants: dict[str, Path], kodak: Path, count: int, rounds: int, threads: int) -> None:
    """``cae_codec.decode`` of the first ``count`` Kodak images (quality 4, files of the shipped
    encoder) with the shipped decoder graphs and each variant's, in turns, sessions kept (the
    steady state `make bench` times): mean over the images of the fastest of ``rounds``."""
    import cae_codec

    runtime.set_threads(threads)
    shipped = runtime.graph_path
    current: list[Path | None] = [None]

    def graph_path(weights: Path, part: str) -> Path:
        path = shipped(weights, part)
        return path if current[0] is None or not part.startswith("decoder") else current[0] / path.name

    runtime.graph_path = graph_path  # type: ignore[assignment]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(kodak.glob("*.png"))[:count]]
    files = [cae_codec.encode(img, quality=4) for img in images]
    labels: dict[str, Path | None] = {"shipped": None, **variants}
    best: dict[tuple[str, int], float] = {}
    for folder in labels.values():  # warm-up: every session created and run once
        current[0] = folder
        cae_codec.decode(files[0])
    for _ in range(rounds):
        for label, folder in labels.items():
            current[0] = folder
            for i, f in enumerate(files):
                t0 = time.perf_counter()
                cae_codec.decode(f)
                best[label, i] = min(best.get((label, i), 1e9), time.perf_counter() - t0)
    print(f"decode of {count} Kodak images at quality 4, {threads} thread(s), fastest of {rounds} in turns")
    for label in labels:
        print(f"| {label} | {statistics.mean(best[label, i] for i in range(count)):.4f} s |")


def bdrate(out: Path, which: str, caec_args: list[str]) -> int:
    """`caec bdrate CAEC_ARGS` in this process (give it -j 1: spawned workers would run the
    shipped graphs) with ``which`` graphs int8 (none: the float graphs, for the same run)."""
    from cae_codec.cli import app

    if which != "none":
        swap_graphs(out, which)
    import typer

    status = typer.main.get_command(app).main(args=["bdrate", *caec_args], standalone_mode=False)
    return status if isinstance(status, int) else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["quantize", "speed", "quality", "bdrate", "pixels", "codec-time"])
    ap.add_argument("--out", type=Path, default=Path("runs/int8"))
    ap.add_argument("--crops", type=int, default=48)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--weights", default="cae-gdn-v3-low")
    ap.add_argument("--images", type=int, default=6, help="codec-time: the first N Kodak images")
    ap.add_argument("--kodak", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--qualities", default="2,4,6")
    ap.add_argument("--variants", default="", help="speed: LABEL=FOLDER,... of graphs (default: int8=--out)")
    ap.add_argument("--keep-float", default="", help="quantize: node name endings left float, comma-separated")
    ap.add_argument("--sub-pixel", action="store_true", help="quantize: decoders in their sub-pixel form")
    ap.add_argument("--which", choices=["encoder", "decoder", "both", "none"], default="both")
    argv = sys.argv[1:] if argv is None else argv
    caec_args = argv[argv.index("--") + 1 :] if "--" in argv else []  # bdrate: caec bdrate's arguments
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.step == "bdrate":
        return bdrate(args.out, args.which, caec_args)
    if args.step == "quantize":
        quantize(args.out, args.crops, args.sub_pixel, tuple(k for k in args.keep_float.split(",") if k))
    elif args.step == "speed":
        variants = dict(v.split("=", 1) for v in args.variants.split(",")) if args.variants else {"int8": args.out}
        speed({k: Path(v) for k, v in variants.items()}, args.threads, args.rounds, args.weights)
    elif args.step == "codec-time":
        variants = {k: Path(v) for k, v in (x.split("=", 1) for x in args.variants.split(","))}
        codec_time(variants, args.kodak, args.images, args.rounds, args.threads)
    elif args.step == "pixels":
        pixels(args.out, args.kodak, [int(q) for q in args.qualities.split(",")])
    else:
        quality(args.out, args.kodak, [int(q) for q in args.qualities.split(",")], args.which)
    return 0


if __name__ == "__main__":
    sys.exit(main())
