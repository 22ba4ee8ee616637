"""Issue 20: do the inference graphs (ONNX Runtime) code Kodak as torch does?

For every image and quality: the file torch's encoder writes and the one the graphs write
(are they the same bytes; if not, how many latent integers differ), and that file decoded by
torch and by the graphs (how many 8-bit samples differ, and by how much). Same weights, CPU.

    python -m research.runtime_pixels --dataset ../shared/data/kodak --qualities 1,4,8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from cae_codec import container, zoo
from cae_codec.cae import payload
from cae_codec.cae.codec import CaePcaJ2kCodec, FamilyCodec
from cae_codec.cae.family import read_family
from cae_codec.imageio import open_image
from cae_codec.weights import load_model


def latents(codec: FamilyCodec, data: bytes) -> np.ndarray:
    box = container.parse(data)
    p = payload.params(box)
    member = codec.members[codec.member_name(box)]
    s = member.facts.stride
    return payload.read_components(box, p, p.padded_height // s, p.padded_width // s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", type=Path, default=Path("../shared/data/kodak"))
    ap.add_argument("--model", default="cae-gdn-v3")
    ap.add_argument("--qualities", default="1,4,8")
    ap.add_argument("--images", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="a JSON file of every row")
    args = ap.parse_args(argv)
    family = read_family(zoo.resolve(args.model).path)
    graphs = FamilyCodec(family, "cpu")
    # the same weights in torch: the codec as it ran before issue 20
    torch_codec = FamilyCodec(
        family, "cpu", load=lambda name: CaePcaJ2kCodec(load_model(zoo.member_path(family, name)), "cpu")
    )
    rows = []
    for f in sorted(args.dataset.glob("*.png"))[: args.images]:
        img = open_image(f)[:, :, :3]
        for q in (int(x) for x in args.qualities.split(",")):
            by_torch, by_graphs = torch_codec.encode(img, quality=q), graphs.encode(img, quality=q)
            same_file = by_torch == by_graphs
            ints = 0 if same_file else int((latents(graphs, by_torch) != latents(graphs, by_graphs)).sum())
            a = torch_codec.decode(container.parse(by_torch)).astype(np.int16)
            b = graphs.decode(container.parse(by_torch)).astype(np.int16)
            diff = np.abs(a - b)
            row = {"image": f.name, "quality": q, "same_file": same_file, "latent_ints_differing": ints}
            row |= {"samples": int(diff.size), "samples_differing": int((diff > 0).sum()), "max_diff": int(diff.max())}
            rows.append(row)
            print(json.dumps(row), flush=True)
    n = sum(r["samples"] for r in rows)
    differing = sum(r["samples_differing"] for r in rows)
    print(
        f"{len(rows)} decodes: {differing} of {n} samples differ ({100 * differing / n:.4f}%), "
        f"largest difference {max(r['max_diff'] for r in rows)}; files identical: "
        f"{sum(r['same_file'] for r in rows)} of {len(rows)}, latent integers differing in the others: "
        f"{sum(r['latent_ints_differing'] for r in rows)}"
    )
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
