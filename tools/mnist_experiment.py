"""The MNIST deep-autoencoder experiment (issue 17): the paper's measure for the trained models
and PCA, what quantizing and coding the code costs, and the codec against PNG, WebP and JPEG.
Writes docs/mnist.md (--out) with the command lines that made each number.

The measure is Hinton & Salakhutdinov's: the squared error summed over an image's 784 pixels
(intensities in [0, 1]), averaged over the test images; PSNR is 10 log10(784 / error).

    python tools/mnist_experiment.py --data ../shared/data/mnist \\
        --model "deep AE 30, pre-trained=cae_codec/zoo/mnist-dae-30.safetensors" ... --out docs/mnist.md

Each --model is LABEL=WEIGHTS; a model is measured on the test images of the protocol it was
trained under (its weights record it). --codec-model (a LABEL given to --model) is the model
whose files are compared with PNG, WebP and JPEG, on its protocol's test images.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
import torch

from cae_codec import container
from cae_codec.errors import CaecError
from cae_codec.mnistdae.codec import MnistDaeCodec, dequantize
from cae_codec.mnistdae.data import PIXELS, SIDE, Split, load_split, psnr_of_error, squared_error_per_image
from cae_codec.weights import load_model

PCA_SIZES = (30, 196)
BITS = tuple(range(1, 9))
JPEG_QUALITIES = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
WEBP_QUALITIES = (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)


@dataclass(frozen=True)
class Row:
    method: str
    protocol: str
    error: float

    def cells(self) -> list[str]:
        return [self.method, self.protocol, f"{self.error:.2f}", f"{psnr_of_error(self.error):.2f}"]


@dataclass(frozen=True)
class RatePoint:
    method: str
    setting: str
    bytes_single: float  # mean bytes of a file holding one digit
    bytes_batch: float | None  # bytes per digit inside one file of all test digits
    error: float


def pca_error(split: Split, k: int) -> float:
    """PCA with ``k`` components fitted on the training images, on the test images (the
    reconstruction unclipped, as the paper's PCA)."""
    mean, basis = pca_basis(split.train, k)
    t = split.test.astype(np.float64) / 255.0
    rec = (t - mean) @ basis @ basis.T + mean
    return squared_error_per_image(t, rec)


def pca_basis(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    x = train.astype(np.float64) / 255.0
    mean = x.mean(0)
    _, vecs = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    return mean, vecs[:, ::-1][:, :k]


def pca_coded_points(split: Split, digits: np.ndarray, k: int) -> list[RatePoint]:
    """PCA with ``k`` components coded as the codec codes a code: each coefficient quantized at
    B bits over its range on the training images (the same quantiles), packed into the same
    file framing, so that at equal B the files have the same bytes as a k-value autoencoder's."""
    from cae_codec.container import v2
    from cae_codec.mnistdae import payload
    from cae_codec.mnistdae.codec import quantize
    from cae_codec.mnistdae.train import RANGE_QUANTILES

    mean, basis = pca_basis(split.train, k)
    coef_train = (split.train.astype(np.float64) / 255.0 - mean) @ basis
    lo, hi = np.quantile(coef_train, RANGE_QUANTILES, axis=0)
    x = digits.reshape(len(digits), -1).astype(np.float64) / 255.0
    coef = (x - mean) @ basis
    points = []
    for bits in BITS:
        levels = quantize(coef, lo, hi, bits)
        rec = np.clip(dequantize(levels, lo.astype(np.float32), hi.astype(np.float32), bits) @ basis.T + mean, 0, 1)
        header = v2.HeaderV2(payload.CODEC, SIDE, SIDE, 1)
        single = len(v2.pack(header, [(payload.CODE, payload.pack_levels(levels[:1], bits))]))
        batch = v2.HeaderV2(payload.CODEC, SIDE, SIDE, 1, flags=v2.FLAG_STACK, images=len(levels))
        in_batch = len(v2.pack(batch, [(payload.CODE, payload.pack_levels(levels, bits))])) / len(levels)
        decoded = np.round(rec * 255).astype(np.uint8)
        points.append(
            RatePoint(f"PCA {k}", f"{bits} bits", float(single), in_batch, squared_error_per_image(digits, decoded))
        )
    return points


def ae_points(label: str, codec: MnistDaeCodec, digits: np.ndarray) -> tuple[float, list[RatePoint]]:
    """The real-valued code's error, and per bits-per-value the coded error and bytes."""
    codes = codec.codes(digits)
    real = squared_error_per_image(digits, codec.reconstruct(codes))
    points = []
    for bits in BITS:
        levels = codec.levels(codes, bits)
        decoded = codec.reconstruct(dequantize(levels, codec.lo, codec.hi, bits))
        single = np.mean([len(codec.file(levels[i : i + 1], bits)) for i in range(len(levels))])
        batch = codec.file(levels, bits)
        # what the decoder reads back from the batch file is what was measured
        box = container.parse(batch)
        assert np.array_equal(codec.decode(box), decoded)
        points.append(
            RatePoint(
                label, f"{bits} bits", float(single), len(batch) / len(digits), squared_error_per_image(digits, decoded)
            )
        )
    return real, points


def classic_points(digits: np.ndarray) -> list[RatePoint]:
    """PNG (lossless), WebP and JPEG of each digit through imagecodecs, per quality setting, each
    at its smallest: WebP lossy at its slowest method (it takes RGB only: the grey digit goes in
    as R = G = B and its G plane comes back), JPEG with optimized Huffman tables."""
    points = []
    png = [len(imagecodecs.png_encode(d, level=9)) for d in digits]
    points.append(RatePoint("PNG", "level 9", float(np.mean(png)), None, 0.0))
    for q in WEBP_QUALITIES:
        sizes, out = [], []
        for d in digits:
            data = imagecodecs.webp_encode(np.repeat(d[:, :, None], 3, axis=2), level=q, lossless=False, method=6)
            sizes.append(len(data))
            out.append(imagecodecs.webp_decode(data)[:, :, 1])
        points.append(
            RatePoint(
                "WebP", f"quality {q}", float(np.mean(sizes)), None, squared_error_per_image(digits, np.stack(out))
            )
        )
    for q in JPEG_QUALITIES:
        sizes, out = [], []
        for d in digits:
            data = imagecodecs.jpeg8_encode(d, level=q, optimize=True)
            sizes.append(len(data))
            out.append(imagecodecs.jpeg8_decode(data))
        points.append(
            RatePoint(
                "JPEG", f"quality {q}", float(np.mean(sizes)), None, squared_error_per_image(digits, np.stack(out))
            )
        )
    return points


def save_grid(path: Path, rows: list[tuple[str, np.ndarray]]) -> None:
    """One row of digits per method, labelled, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 0.9 + 2.6, len(rows) * 0.95))
    for r, (label, digits) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(digits[c].reshape(SIDE, SIDE), cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save_codes_2d(path: Path, codes: np.ndarray, components: np.ndarray, labels: np.ndarray, title: str) -> None:
    """Hinton & Salakhutdinov's Fig. 3: the test digits' 2-D codes beside their first two
    principal components, coloured by label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for ax, points, name in ((axes[0], components, "first two principal components"), (axes[1], codes, title)):
        sc = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sc, ax=axes, ticks=range(10), label="digit")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def bytes_to_reach(points: list[RatePoint], method: str, error: float) -> str:
    """The mean bytes ``method`` needs for ``error``, by linear interpolation between its
    settings; "<= N" when its smallest files (N bytes) are already better, "-" when no setting
    reaches it."""
    curve = sorted((p.bytes_single, p.error) for p in points if p.method == method)
    if curve and curve[0][1] <= error:
        return f"<= {curve[0][0]:.1f}"
    for (b0, e0), (b1, e1) in itertools.pairwise(curve):
        if e0 >= error >= e1:
            return f"{b0 if e0 == e1 else b0 + (b1 - b0) * (e0 - error) / (e0 - e1):.1f}"
    return "-"


def train_minutes(meta: dict[str, object]) -> str:
    """RBM pre-training + fine-tuning minutes (accumulated over a resumed run's legs)."""
    pre, fine = meta.get("pretrain_seconds"), meta.get("finetune_seconds")
    if isinstance(pre, (int, float)) and isinstance(fine, (int, float)):
        return f"{pre / 60:.1f} + {fine / 60:.1f}"
    return "-"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def codes_2d_section(
    spec: str, data: Path, splits: dict[str, Split], test_digits: Callable[[str], np.ndarray], out: Path | None
) -> list[str]:
    """The 2-value code of the model ``spec`` (LABEL=WEIGHTS) on the test digits beside PCA's
    first two components: the picture (mnist_codes_2d.png beside ``out``) and its lines."""
    label, _, path = spec.partition("=")
    two = MnistDaeCodec(load_model(path), torch.device("cpu"))
    if two.units != 2:
        raise CaecError(f"--codes-2d takes a model of a 2-value code, {path} has {two.units}")
    protocol = two.model.metadata.get("config", {}).get("protocol", "design")
    split = splits.get(protocol) or load_split(data, protocol)
    digits = test_digits(protocol)
    flat = digits.reshape(len(digits), -1)
    codes = two.codes(digits)
    real = squared_error_per_image(digits, two.reconstruct(codes))
    mean, basis = pca_basis(split.train, 2)
    png = out.with_name("mnist_codes_2d.png") if out else Path("mnist_codes_2d.png")
    save_codes_2d(png, codes, (flat / 255.0 - mean) @ basis, split.test_labels[: len(digits)], f"{label}: 2-value code")
    pca2 = pca_error(Split(split.train, flat, split.train_labels, split.test_labels), 2)
    return [
        "",
        f"## Two-value codes ({len(digits)} test digits of the {protocol} protocol; Hinton & Salakhutdinov's Fig. 3)",
        "",
        f"{label}, made by `{two.model.metadata.get('command', '')}`: error {real:.2f} per digit on its "
        f"real-valued code; PCA with 2 components: {pca2:.2f}.",
        "",
        f"![the 2-D codes beside the first two principal components]({png.name})",
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True, help="folder of the MNIST IDX files")
    ap.add_argument("--model", action="append", default=[], help="LABEL=WEIGHTS (repeat)")
    ap.add_argument("--codec-model", help="the LABEL whose files are compared with PNG, WebP and JPEG")
    ap.add_argument("--protocols", default="design,hinton", help="protocols PCA is measured at")
    ap.add_argument("--test-images", type=int, default=None, help="only the first N test images")
    ap.add_argument("--out", type=Path, help="the Markdown report to write (default: print it)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--codes-2d", help="LABEL=WEIGHTS of a 2-value code: its test codes beside PCA's (Fig. 3)")
    ap.add_argument(
        "--grid", type=Path, help="a PNG of the first test digits: original, the codec model, PCA, WebP, JPEG"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python tools/mnist_experiment.py " + " ".join(
        f'"{a}"' if " " in a else a for a in (argv if argv is not None else sys.argv[1:])
    )
    try:
        splits = {p: load_split(args.data, p) for p in args.protocols.split(",")}
        models = {}
        for spec in args.model:
            label, _, path = spec.partition("=")
            if not path:
                raise CaecError(f"--model takes LABEL=WEIGHTS, got {spec!r}")
            models[label] = MnistDaeCodec(load_model(path), torch.device("cpu"))
    except (CaecError, KeyError) as e:
        print(f"mnist_experiment: error: {e}", file=sys.stderr)
        return 1

    def test_digits(protocol: str) -> np.ndarray:
        split = splits.get(protocol) or load_split(args.data, protocol)
        return split.test[: args.test_images].reshape(-1, SIDE, SIDE)

    rows: list[Row] = []
    rate: list[RatePoint] = []
    for label, codec in models.items():
        protocol = codec.model.metadata.get("config", {}).get("protocol", "design")
        real, points = ae_points(label, codec, test_digits(protocol))
        rows.append(Row(label, protocol, real))
        rate += [RatePoint(p.method, p.setting, p.bytes_single, p.bytes_batch, p.error) for p in points]
    if args.codec_model and args.codec_model in models:
        coded = models[args.codec_model]
        protocol = coded.model.metadata.get("config", {}).get("protocol", "design")
        split = splits.get(protocol) or load_split(args.data, protocol)
        rate += pca_coded_points(split, test_digits(protocol), coded.units)
    for protocol, split in splits.items():
        cut = Split(split.train, split.test[: args.test_images], split.train_labels, split.test_labels)
        rows += [Row(f"PCA {k}", protocol, pca_error(cut, k)) for k in PCA_SIZES]
    lines = [
        "# MNIST: the deep autoencoder against PCA, PNG, WebP and JPEG",
        "",
        "Written by `tools/mnist_experiment.py` (issue 17); every number below comes from this command:",
        "",
        f"    {command}",
        "",
        "Error: the squared error summed over a digit's 784 pixels in [0, 1], averaged over the test "
        "images of the model's protocol (design: the first 1,000 test images; hinton: all 10,000); "
        f"PSNR = 10 log10({PIXELS} / error).",
        "",
        "## The real-valued code (the paper's measure)",
        "",
        *table(["method", "protocol", "error per image", "PSNR (dB)"], [r.cells() for r in rows]),
    ]
    if models:
        lines += [
            "",
            "The models, as their weights record them (the command that trained each; pre-training or not, the "
            "same fine-tuning epochs and schedule):",
            "",
            *table(
                [
                    "model",
                    "trained by",
                    "minutes: RBMs + fine-tuning",
                    "test error after fine-tuning epochs 1 / 5 / 10 / last",
                ],
                [
                    [
                        label,
                        f"`{c.model.metadata.get('command', '')}`",
                        train_minutes(c.model.metadata),
                        " / ".join(
                            f"{h['test_error']:.2f}"
                            for h in c.model.metadata.get("history", [])
                            if h["epoch"] in (1, 5, 10) or h is c.model.metadata["history"][-1]
                        ),
                    ]
                    for label, c in models.items()
                ],
            ),
        ]
    if rate:
        lines += [
            "",
            "## Quantized and coded: the codec's files",
            "",
            "Bytes per digit of a file holding one digit (all of it: header, framing, code) and inside one "
            "file holding all the test digits.",
            "",
            *table(
                ["model", "bits per value", "bytes, single file", "bytes per digit, batch", "error", "PSNR (dB)"],
                [
                    [
                        p.method,
                        p.setting.split()[0],
                        f"{p.bytes_single:.1f}",
                        f"{p.bytes_batch:.2f}",
                        f"{p.error:.2f}",
                        f"{psnr_of_error(p.error):.2f}",
                    ]
                    for p in rate
                ],
            ),
        ]
    if args.codec_model:
        codec = models[args.codec_model]
        protocol = codec.model.metadata.get("config", {}).get("protocol", "design")
        digits = test_digits(protocol)
        classic = classic_points(digits)
        lines += [
            "",
            f"## Against PNG, WebP and JPEG ({len(digits)} test digits of the {protocol} protocol)",
            "",
            "Each digit a file of its own (imagecodecs: WebP lossy at method 6, given the grey digit as RGB; "
            "JPEG with optimized Huffman tables; PNG at level 9).",
            "",
            *table(
                ["codec", "setting", "bytes", "error", "PSNR (dB)"],
                [
                    [
                        p.method,
                        p.setting,
                        f"{p.bytes_single:.1f}",
                        f"{p.error:.2f}",
                        "lossless" if p.error == 0 else f"{psnr_of_error(p.error):.2f}",
                    ]
                    for p in classic
                ],
            ),
            "",
            f"Bytes WebP and JPEG need for the error of each setting of {args.codec_model} (interpolated "
            "between their qualities; - where no quality reaches it):",
            "",
        ]
        mine = [p for p in rate if p.method == args.codec_model]
        from cae_codec import registry

        bits = registry.get("mnist-dae").quality.default
        default = next(p for p in mine if p.setting == f"{bits} bits")
        real = next(r.error for r in rows if r.method == args.codec_model)
        summary = [
            "",
            f"At the codec's default quality ({bits} bits a value), {args.codec_model} makes files of "
            f"{default.bytes_single:.1f} bytes a digit ({default.bytes_batch:.2f} a digit inside one file of all "
            f"{len(digits)}) at error {default.error:.2f}, {100 * (default.error / real - 1):+.1f}% over its "
            f"real-valued code's {real:.2f}; WebP needs {bytes_to_reach(classic, 'WebP', default.error)} bytes "
            f"and JPEG {bytes_to_reach(classic, 'JPEG', default.error)} for that error. PCA with "
            f"{codec.units} components coded the same way in the same bytes: error "
            f"{next(p.error for p in rate if p.method == f'PCA {codec.units}' and p.setting == default.setting):.2f}.",
            "",
        ]
        cells = []
        for p in mine:
            need = [bytes_to_reach(classic, m, p.error) for m in ("WebP", "JPEG")]
            cells.append(
                [
                    p.setting,
                    f"{p.error:.2f}",
                    f"{p.bytes_single:.1f}",
                    f"{p.bytes_batch:.2f}",
                    *need,
                ]
            )
        lines += table(["setting", "error", "bytes, single", "bytes, batch", "WebP bytes", "JPEG bytes"], cells)
        lines += summary
        if args.grid:
            first = digits[:12]
            levels = codec.levels(codec.codes(first), bits)
            ae = codec.reconstruct(dequantize(levels, codec.lo, codec.hi, bits))[..., 0]
            webp = [
                imagecodecs.webp_encode(np.repeat(d[:, :, None], 3, axis=2), level=0, lossless=False, method=6)
                for d in first
            ]
            jpeg = [imagecodecs.jpeg8_encode(d, level=5, optimize=True) for d in first]
            split = splits.get(protocol) or load_split(args.data, protocol)
            mean, basis = pca_basis(split.train, codec.units)
            pca = np.clip(((first.reshape(len(first), -1) / 255.0 - mean) @ basis) @ basis.T + mean, 0, 1) * 255
            save_grid(
                args.grid,
                [
                    ("original", first),
                    (f"{args.codec_model}\n{bits} bits, {default.bytes_single:.0f} B", ae),
                    (f"PCA {codec.units}\n(real-valued)", pca.round().astype(np.uint8)),
                    (
                        f"WebP q0\n{np.mean([len(w) for w in webp]):.0f} B",
                        np.stack([imagecodecs.webp_decode(w)[:, :, 1] for w in webp]),
                    ),
                    (
                        f"JPEG q5\n{np.mean([len(j) for j in jpeg]):.0f} B",
                        np.stack([imagecodecs.jpeg8_decode(j) for j in jpeg]),
                    ),
                ],
            )
            lines += [f"![original, {args.codec_model}, PCA, WebP and JPEG]({args.grid.name})", ""]
    if args.codes_2d:
        try:
            lines += codes_2d_section(args.codes_2d, args.data, splits, test_digits, args.out)
        except CaecError as e:
            print(f"mnist_experiment: error: {e}", file=sys.stderr)
            return 1
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
