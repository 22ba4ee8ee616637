"""The shipped models' inference graphs, exported from their weights (`make graphs`).

Every shipped model whose network has inference graphs (cae_codec/runtime.py; the CAE's) gets
them written beside its weights in cae_codec/zoo; ``--check`` writes nothing and fails when a
shipped graph is missing or not the bytes its weights export to (after a model is retrained,
say). Other weights files may be named instead of the shipped ones.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cae_codec import zoo
from cae_codec.errors import CaecError
from cae_codec.nn.graphs import export_graphs, has_inference_parts


def shipped_weights() -> list[Path]:
    """The shipped models whose networks have inference graphs, in catalogue order."""
    return [m.path for m in zoo.catalogue().models.values() if has_inference_parts(m.path)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="*", type=Path, help=".safetensors files (default: the shipped models)")
    ap.add_argument("--check", action="store_true", help="write nothing; fail when a graph is not the export")
    args = ap.parse_args(argv)
    status = 0
    for weights in args.weights or shipped_weights():
        try:
            graphs = export_graphs(weights, write=not args.check)
        except CaecError as e:
            print(f"export_graphs: error: {e}", file=sys.stderr)
            return 1
        for path, data in graphs.items():
            if args.check and (not path.is_file() or path.read_bytes() != data):
                print(f"export_graphs: {path} is not the graph {weights.name} exports to", file=sys.stderr)
                status = 1
            else:
                print(f"{path}: {len(data)} bytes{', up to date' if args.check else ''}")
    return status


if __name__ == "__main__":
    sys.exit(main())
