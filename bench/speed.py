"""CPU speed of caec against OpenJPEG at the same file size, per image (`make bench`).

For every image: caec encode + decode at the given quality (wall time, model loaded once and
warmed up), then OpenJPEG (imagecodecs, irreversible 9/7, one quality layer) bisected to the
largest file not above caec's, and that encode + decode timed the same way. Both run with
the same number of threads. Writes docs/benchmark.md and a JSON file with every number.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import imagecodecs
import torch

from cae_codec import container
from cae_codec.api import DEFAULT_MODEL, get_codec
from cae_codec.evaluate.classic import Jpeg2000
from cae_codec.imageio import open_image
from cae_codec.ratecontrol import MemoEncoder, search_rate


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--quality", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (OpenJPEG runs single-threaded)")
    ap.add_argument("--repeats", type=int, default=3, help="time each step this often, keep the fastest")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/bench.json"))
    ap.add_argument("--markdown", type=Path, default=Path("docs/benchmark.md"))
    ap.add_argument(
        "--transposed-image-layer",
        action="store_true",
        help="run the decoder's image layer as the transposed convolution, not its sub-pixel form (nn/layers.py)",
    )
    args = ap.parse_args()
    if args.transposed_image_layer:
        from cae_codec.nn.layers import UpConv

        UpConv.forward = torch.nn.ConvTranspose2d.forward  # type: ignore[method-assign,assignment]
    torch.set_num_threads(args.threads)
    files = sorted(args.dataset.glob("*.png"))[: args.images]
    if not files:
        raise SystemExit(f"bench: no PNG images in {args.dataset}")
    codec = get_codec(args.model, "cpu")
    j2k = Jpeg2000()
    warm = open_image(files[0])[:, :, :3]
    codec.decode(container.unpack(codec.encode(warm, quality=args.quality)))

    rows = []
    for f in files:
        img = open_image(f)[:, :, :3]
        px = img.shape[0] * img.shape[1]
        data = codec.encode(img, quality=args.quality)
        box = container.unpack(data)
        t_enc = best_of(lambda: codec.encode(img, quality=args.quality), args.repeats)  # noqa: B023
        t_dec = best_of(lambda: codec.decode(container.unpack(data)), args.repeats)  # noqa: B023
        found = search_rate(MemoEncoder(lambda k: j2k.encode(img, k)), j2k.knob, len(data))  # noqa: B023
        if found.best is None:
            raise SystemExit(f"bench: OpenJPEG cannot go as low as {len(data)} bytes on {f.name}")
        jdata, jknob = found.best.data, found.best.knob
        j_enc = best_of(lambda: j2k.encode(img, jknob), args.repeats)  # noqa: B023
        j_dec = best_of(lambda: j2k.decode(jdata), args.repeats)  # noqa: B023
        rows.append(
            {
                "image": f.name,
                "caec_bpp": 8 * len(data) / px,
                "jpeg2000_bpp": 8 * len(jdata) / px,
                "caec_encode_s": t_enc,
                "caec_decode_s": t_dec,
                "jpeg2000_encode_s": j_enc,
                "jpeg2000_decode_s": j_dec,
                "ratio": (t_enc + t_dec) / (j_enc + j_dec),
                "components": box.header.components,
            }
        )
        r = rows[-1]
        print(
            f"{f.name}: caec {r['caec_bpp']:.3f} bpp {t_enc:.3f}+{t_dec:.3f} s | "
            f"OpenJPEG {r['jpeg2000_bpp']:.3f} bpp {j_enc:.3f}+{j_dec:.3f} s | ratio {r['ratio']:.2f}",
            flush=True,
        )

    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in rows)

    summary = {
        "model": codec.name,
        "quality": args.quality,
        "threads": args.threads,
        "images": len(rows),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "imagecodecs": imagecodecs.__version__,
        "openjpeg": imagecodecs.jpeg2k_version(),
        "mean": {k: mean(k) for k in rows[0] if k not in ("image", "components")},
        "ratio_of_means": (mean("caec_encode_s") + mean("caec_decode_s"))
        / (mean("jpeg2000_encode_s") + mean("jpeg2000_decode_s")),
    }
    args.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    m = summary["mean"]
    lines = [
        "# CPU speed: caec vs OpenJPEG at the same file size",
        "",
        f"Generated by `make bench` (`python bench/speed.py --quality {args.quality} --threads {args.threads}`); "
        f"{len(rows)} images from `{args.dataset}`, model `{codec.name}`, torch {torch.__version__}, "
        f"{summary['openjpeg']} via imagecodecs {imagecodecs.__version__}, {args.threads} thread(s) each, "
        f"fastest of {args.repeats} runs per step. Raw numbers: `{args.out}`.",
        "",
        "| | bpp | encode (s) | decode (s) | encode + decode (s) |",
        "|---|---|---|---|---|",
        f"| caec | {m['caec_bpp']:.3f} | {m['caec_encode_s']:.3f} | {m['caec_decode_s']:.3f} | "
        f"{m['caec_encode_s'] + m['caec_decode_s']:.3f} |",
        f"| OpenJPEG | {m['jpeg2000_bpp']:.3f} | {m['jpeg2000_encode_s']:.3f} | {m['jpeg2000_decode_s']:.3f} | "
        f"{m['jpeg2000_encode_s'] + m['jpeg2000_decode_s']:.3f} |",
        "",
        f"**caec / OpenJPEG time ratio: {summary['ratio_of_means']:.2f}** (mean over images; "
        f"per-image ratios {min(r['ratio'] for r in rows):.2f} .. {max(r['ratio'] for r in rows):.2f}). "
        "The seed paper's CAE was 3.9x slower than JPEG 2000 on CPU.",
        "",
    ]
    args.markdown.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
