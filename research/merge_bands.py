"""Assemble a model with one decoder per rate band from `caec train --decoder-only` runs.

    python research/merge_bands.py runs/v2-dec-high.safetensors runs/v2-dec-low.safetensors \\
        --boundary 1.19 -o runs/cae-gdn-v2.1.safetensors

Parts go from the finest steps to the coarsest; each must share the encoder and PCA of the
first (so every band decodes the same bitstream). docs/models.md has the commands that made the shipped members.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cae_codec.errors import CaecError
from cae_codec.weights import merge_band_decoders


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="+", type=Path, help="single-decoder weights, finest band first")
    ap.add_argument("--boundary", type=float, action="append", required=True, help="step where the next band starts")
    ap.add_argument("-o", "--output", type=Path, required=True)
    args = ap.parse_args()
    try:
        h = merge_band_decoders(args.parts, sorted(args.boundary), args.output, " ".join(["python", *sys.argv]))
    except CaecError as e:
        sys.exit(f"merge_bands: error: {e}")
    print(f"wrote {args.output} (weights hash {h.hex()})")


if __name__ == "__main__":
    main()
