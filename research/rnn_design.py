"""The recurrent codec's design comparisons (issue 16), on a short common budget:

1. GRU vs LSTM cells, additive reconstruction;
2. one-shot vs additive vs residual scaling, with the better cell of 1;
3. with vs without entropy coding: the same (shipped) model, its bits raw or range-coded.

Every network of 1 and 2 is trained by `caec train rnn` with the same seed, data, widths and
number of steps (--steps; one thread), then coded at every pass on the centre 256x256 crops of
the first --images Kodak images: PSNR-RGB and MS-SSIM-RGB after 2, 4, 6, 8 and 16 passes (0.25,
0.5, 0.75, 1 and 2 bpp before entropy coding). 3 codes whole Kodak images with one model and
counts the bytes of each pass both ways. Results go to runs/rnn/design/*.json; the table is
written into docs/rnn.md between its RESULTS markers.

    python -m research.rnn_design train            # 1 and 2: trains, evaluates
    python -m research.rnn_design entropy --model M  # 3
    python -m research.rnn_design table            # docs/rnn.md from the JSON results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "runs" / "rnn" / "design"
DOC = REPO / "docs" / "rnn.md"
DATA = REPO.parent / "shared" / "data"
PASSES_SHOWN = (2, 4, 6, 8, 16)
CROP = 256
BEGIN, END = "<!-- RESULTS BEGIN (research/rnn_design.py table) -->", "<!-- RESULTS END -->"


def kodak(n: int) -> list[tuple[str, np.ndarray]]:
    from cae_codec.imageio import read_image_rgb8

    files = sorted((DATA / "kodak").glob("kodim*.png"))[:n]
    return [(f.stem, read_image_rgb8(f)) for f in files]


def centre(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    y, x = (h - CROP) // 2, (w - CROP) // 2
    return np.ascontiguousarray(img[y : y + CROP, x : x + CROP])


def train_one(name: str, args: argparse.Namespace, extra: list[str]) -> Path:
    out = OUT / f"{name}.safetensors"
    if out.exists():
        return out
    cmd = [sys.executable, "-m", "cae_codec", "train", "rnn", str(DATA / "train"), "-o", str(out)]
    cmd += ["--steps", str(args.steps), "--threads", "1", "--seed", "0", "--entropy-crops", "0", *extra]
    with (OUT / f"{name}.log").open("w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    return out


def evaluate(model: Path, images: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
    """Mean PSNR / MS-SSIM over the crops after every pass (from one decode of each file)."""
    import torch

    from cae_codec import container
    from cae_codec.evaluate.metrics import ms_ssim_rgb, psnr_rgb
    from cae_codec.rnn.codec import RnnCodec
    from cae_codec.weights import load_model

    m = load_model(model)
    codec = RnnCodec(m, torch.device("cpu"), entropy=False)
    psnr, msssim = [], []
    for _, img in images:
        crop = centre(img)
        a = codec.analyse(crop)
        steps = list(codec.decode_passes(container.parse(codec.pack(a, codec.passes))))
        psnr.append([psnr_rgb(crop, s) for s in steps])
        msssim.append([ms_ssim_rgb(crop, s) for s in steps])
    return {
        "model": str(model.relative_to(REPO)),
        "crops_seen": m.metadata.get("samples"),
        "train_seconds": m.metadata.get("seconds"),
        "config": m.config,
        "psnr": np.mean(psnr, axis=0).tolist(),
        "ms_ssim": np.mean(msssim, axis=0).tolist(),
        "bits_per_pass": m.config["bits"] / 256,
    }


def score(result: dict[str, Any]) -> float:
    """Which cell is better: mean MS-SSIM over the passes of 0.125..0.75 bpp (the target range)."""
    return float(np.mean(result["ms_ssim"][:6]))


def run_train(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    images = kodak(args.images)
    results: dict[str, Any] = {}
    path = OUT / "design.json"
    if path.exists():
        results = json.loads(path.read_text())

    def one(name: str, extra: list[str]) -> None:
        if name in results:
            return
        t0 = time.perf_counter()
        model = train_one(name, args, extra)
        results[name] = evaluate(model, images)
        results[name]["wall_seconds"] = round(time.perf_counter() - t0, 1)
        results[name]["command"] = f"caec train rnn DATA --steps {args.steps} --threads 1 --seed 0 {' '.join(extra)}"
        path.write_text(json.dumps(results, indent=1))
        print(f"{name}: MS-SSIM {[round(v, 4) for v in results[name]['ms_ssim'][:8]]}", flush=True)

    one("gru-additive", ["--cell", "gru", "--mode", "additive"])
    one("lstm-additive", ["--cell", "lstm", "--mode", "additive"])
    cell = "gru" if score(results["gru-additive"]) >= score(results["lstm-additive"]) else "lstm"
    results["better_cell"] = cell
    for mode in ("oneshot", "scaled"):
        one(f"{cell}-{mode}", ["--cell", cell, "--mode", mode])
    results["steps"], results["images"] = args.steps, args.images
    path.write_text(json.dumps(results, indent=1))


def run_entropy(args: argparse.Namespace) -> None:
    """Bytes of each pass, raw and range-coded, over whole Kodak images, for one model."""
    import torch

    from cae_codec.rnn.codec import RnnCodec
    from cae_codec.weights import load_model

    OUT.mkdir(parents=True, exist_ok=True)
    m = load_model(args.model)
    coded = RnnCodec(m, torch.device("cpu"))
    raw = RnnCodec(m, torch.device("cpu"), entropy=False)
    per_pass_raw = np.zeros(coded.passes)
    per_pass_coded = np.zeros(coded.passes)
    pixels = 0
    t_code = 0.0
    for _, img in kodak(args.images):
        a = coded.analyse(img)
        t0 = time.perf_counter()
        chunks = [raw._code_pass(a.bits, t, 0) for t in range(coded.passes)]
        t_code += time.perf_counter() - t0
        per_pass_raw += [len(c) for c in chunks]
        per_pass_coded += [len(c) for c in a.chunks]
        pixels += img.shape[0] * img.shape[1]
    result = {
        "model": str(args.model),
        "images": args.images,
        "raw_bpp": (8 * per_pass_raw / pixels).tolist(),
        "coded_bpp": (8 * per_pass_coded / pixels).tolist(),
        "saved_percent": (100 * (1 - per_pass_coded / per_pass_raw)).tolist(),
    }
    (OUT / "entropy.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


def table() -> str:
    lines = []
    design = OUT / "design.json"
    if design.exists():
        res = json.loads(design.read_text())
        lines += [
            f"Budget: {res.get('steps')} steps of 16 random 32x32 crops each (the same seed and crops for every",
            "network), one thread, widths encoder 8,32,64,64 / decoder 64,64,64,32,16 (1/8 of the paper's),",
            f"16 passes of 32 bits a 16x16 block. Measured on the centre {CROP}x{CROP} crops of the first "
            f"{res.get('images')} Kodak images, before entropy coding (0.125 bpp a pass).",
            "",
            "| network | crops | train min | "
            + " | ".join(f"PSNR / MS-SSIM @ {k / 8:g} bpp" for k in PASSES_SHOWN)
            + " |",
            "|---|---|---|" + "---|" * len(PASSES_SHOWN),
        ]
        for name in (
            "gru-additive",
            "lstm-additive",
            f"{res.get('better_cell', 'gru')}-oneshot",
            f"{res.get('better_cell', 'gru')}-scaled",
        ):
            r = res.get(name)
            if r is None:
                continue
            cells = " | ".join(f"{r['psnr'][k - 1]:.2f} / {r['ms_ssim'][k - 1]:.4f}" for k in PASSES_SHOWN)
            lines.append(f"| {name} | {r['crops_seen']:,} | {r['train_seconds'] / 60:.1f} | {cells} |")
        if "better_cell" in res:
            lines += ["", f"Better cell (mean MS-SSIM over 0.125..0.75 bpp): **{res['better_cell']}**."]
    ent = OUT / "entropy.json"
    if ent.exists():
        e = json.loads(ent.read_text())
        lines += [
            "",
            f"Entropy coding, the same model ({e['model']}), whole Kodak images (first {e['images']}): bits per",
            "pixel of each pass, raw and range-coded with the context model, and what coding saves.",
            "",
            "| pass | " + " | ".join(str(i + 1) for i in range(len(e["raw_bpp"]))) + " |",
            "|---|" + "---|" * len(e["raw_bpp"]),
            "| raw bpp | " + " | ".join(f"{v:.4f}" for v in e["raw_bpp"]) + " |",
            "| coded bpp | " + " | ".join(f"{v:.4f}" for v in e["coded_bpp"]) + " |",
            "| saved | " + " | ".join(f"{v:.1f}%" for v in e["saved_percent"]) + " |",
        ]
    return "\n".join(lines)


def write_table() -> None:
    text = DOC.read_text() if DOC.exists() else ""
    if BEGIN not in text:
        raise SystemExit(f"{DOC} has no {BEGIN} marker")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["train", "entropy", "table"])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--model", type=Path)
    args = ap.parse_args(argv)
    if args.stage == "train":
        run_train(args)
    elif args.stage == "entropy":
        if args.model is None:
            ap.error("entropy needs --model")
        run_entropy(args)
    else:
        write_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
