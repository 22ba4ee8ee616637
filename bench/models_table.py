"""The training levers of issue 4 as one table: each trained model's Kodak BD-rate beside
how it was trained (minutes, device, 128x128-crop equivalents seen).

Each row is one model and the JSON that ``bench/experiments.py --variants shipped --out``
wrote for it (same images, same OpenJPEG anchor):

    python bench/models_table.py --markdown docs/experiments.md \\
        "v1, CPU=runs/v1.json:models/cae-gdn-v1.safetensors" "latent 192=runs/b.json:runs/b.safetensors"
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from cae_codec.weights import load_model

START, END = "<!-- models:start -->", "<!-- models:end -->"


def row(label: str, result_json: Path, weights: Path) -> str:
    result = json.loads(result_json.read_text())["shipped"]
    meta = load_model(weights).metadata
    cfg = load_model(weights).config
    legs = [*meta.get("history", []), meta]
    devices = sorted({str(leg.get("device", "?")).replace(" x1", "") for leg in legs})
    minutes = sum(float(leg.get("seconds") or 0) for leg in legs) / 60
    arch = f"{cfg['hidden']}/{cfg['latent']} {cfg.get('density', 'laplace')}"
    return (
        f"| {label} | {arch} | {result['bd_rate_psnr']:+.1f}% | {result['bd_rate_msssim']:+.1f}% | "
        f"{np.mean(result['seconds']):.2f} | {minutes:.1f} | {'; '.join(devices)} | "
        f"{meta.get('total_patch128_equivalents', 0) / 1e6:.2f} M | "
        f"{min(result['bpp']):.3f} .. {max(result['bpp']):.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="LABEL=RESULT.json:WEIGHTS.safetensors")
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the table between markers in this file")
    args = ap.parse_args()
    lines = [
        "| change | hidden/latent, rate model | BD-rate PSNR-RGB | BD-rate MS-SSIM-RGB | CPU encode+decode "
        "(s/image) | training minutes (all legs) | device | crops seen (128x128 equiv.) | bpp range |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in args.rows:
        label, rest = spec.split("=", 1)
        result_json, weights = rest.split(":", 1)
        lines.append(row(label, Path(result_json), Path(weights)))
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        text = args.markdown.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        if not pattern.search(text):
            raise SystemExit(f"{args.markdown} has no {START} ... {END} markers")
        args.markdown.write_text(pattern.sub(lambda _: START + "\n" + table + "\n" + END, text))


if __name__ == "__main__":
    main()
