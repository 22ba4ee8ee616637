"""The training levers of issue 4 as one table: each trained model's Kodak BD-rate beside
how it was trained (minutes, device, 128x128-crop equivalents seen).

Each row is one model and the folder that ``caec bdrate --codecs caec,jpeg2000 --out DIR
--model WEIGHTS`` wrote for it (the issue's measurement: both codecs bisected per image to
each target rate, BD-rate against OpenJPEG from the same run):

    python research/models_table.py --markdown docs/experiments.md \\
        "v1=docs/results/kodak:models/cae-gdn-v1.safetensors" "latent 192=runs/bd/b:runs/b.safetensors"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from cae_codec import zoo
from cae_codec.cae.family import FAMILY_SUFFIX, read_family
from cae_codec.evaluate.report import rewrite_marked
from cae_codec.weights import Model, load_model, run_key, training_totals

START, END = "<!-- models:start -->", "<!-- models:end -->"


def _models(weights: Path) -> list[Model]:
    """The model, or a family's members (WEIGHTS may be a NAME.family.json)."""
    if weights.name.endswith(FAMILY_SUFFIX):
        family = read_family(weights)
        return [load_model(zoo.member_path(family, m.model)) for m in family.members]
    return [load_model(weights)]


def _last_steps(meta: dict) -> str:
    last = [band["training"] for band in meta["bands"]] if "bands" in meta else [meta]
    return " / ".join(f"{leg['train_config']['step_min']:g} .. {leg['train_config']['step_max']:g}" for leg in last)


def row(label: str, bdrate_dir: Path, weights: Path) -> str:
    bd = next(r for r in json.loads((bdrate_dir / "bdrate.json").read_text())["bd_rate"] if r["name"] == "caec")
    points = [p for p in json.loads((bdrate_dir / "points.json").read_text()) if p["codec"] == "caec"]
    seconds = float(np.mean([p["encoding_time"] + p["decoding_time"] for p in points]))
    curve = json.loads((bdrate_dir / "caec.json").read_text())["results"]
    # the two ends of the sweep: low-rate quality and the high-rate ceiling
    low, high = (curve["psnr-rgb"][curve["bpp"].index(min(curve["bpp"], key=lambda b: abs(b - t)))] for t in (0.25, 2))
    models = _models(weights)
    cfg = models[0].config
    # a family's members share their first legs (the model they started from): count each run once
    legs: dict[str, dict] = {}
    for meta in (m.metadata for m in models):
        for leg in [*meta.get("history", []), meta]:
            if leg.get("samples"):  # a merge trains nothing
                legs.setdefault(run_key(leg), leg)
    devices = sorted({str(leg.get("device", "?")).replace(" x1", "") for leg in legs.values()})
    minutes = sum(float(leg.get("seconds") or 0) for leg in legs.values()) / 60
    if len(models) == 1:
        crops = float(models[0].metadata.get("total_patch128_equivalents", 0))
    else:
        crops, _ = training_totals(list(legs.values()))
    arch = f"{cfg['hidden']}/{cfg['latent']} {cfg.get('density', 'laplace')}"
    # the last leg's steps; a rate-band model's band by band, a family's member by member
    steps = "; ".join(_last_steps(m.metadata) for m in models)
    return (
        f"| {label} | {arch} | {steps} | {bd['psnr']:+.1f}% | {bd['ms_ssim']:+.1f}% | "
        f"{low:.2f} | {high:.2f} | "
        f"{seconds:.2f} | {minutes:.1f} | {'; '.join(devices)} | "
        f"{crops / 1e6:.2f} M |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rows", nargs="+", help="LABEL=BDRATE_DIR:WEIGHTS.safetensors")
    ap.add_argument("--markdown", type=Path, default=None, help="rewrite the table between markers in this file")
    args = ap.parse_args()
    lines = [
        "| model | hidden/latent, rate model | quantization steps trained (last leg) "
        "| BD-rate PSNR-RGB | BD-rate MS-SSIM-RGB | PSNR at 0.25 bpp (dB) | PSNR at 2 bpp (dB) "
        "| CPU encode+decode (s/image, 2 workers) | training minutes (all legs) | device | "
        "crops seen (128x128 equiv.) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for spec in args.rows:
        label, rest = spec.rsplit("=", 1)  # labels may hold "="
        bdrate_dir, weights = rest.split(":", 1)
        lines.append(row(label, Path(bdrate_dir), Path(weights)))
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        rewrite_marked(args.markdown, START, END, table)


if __name__ == "__main__":
    main()
