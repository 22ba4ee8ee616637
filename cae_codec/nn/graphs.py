"""Inference graphs exported from a weights file, for the CPU runtime (cae_codec.runtime).

A network that offers ``inference_parts()`` (part name -> module and an example input shape;
the CAE's are its encoder and a decoder per rate band) is exported part by part with torch's
ONNX exporter, batch dimension free, without constant folding, so that every weight stays a
tensor of the graph under its parameter name. Each tensor that the weights file holds, byte for
byte, is then made external data pointing at its offset in that file: the graph holds the
network's structure (a few kB) and reads the weights from the one file that names the model.
The graph records the weights hash, and a re-export on the same torch gives the same bytes
(tests/test_runtime.py), so the graph is a function of the weights, not a second model.

Run as ``python -m cae_codec.nn.graphs WEIGHTS...``; `make graphs` does it for the shipped models
(tools/export_graphs.py, whose ``--check`` fails on a graph that is not its weights' export).
Needs torch and the ``onnx`` package; running the graphs needs neither.
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import warnings
from pathlib import Path

import torch

from cae_codec.errors import CaecError, ModelError
from cae_codec.fsutil import atomic_write
from cae_codec.runtime import GRAPH_FORMAT, META_FORMAT, META_PART, META_WEIGHTS_HASH, graph_path
from cae_codec.weights import load_model

# ONNX Runtime 1.16 and later run opset 17; it has every operator the exported networks use
OPSET = 17


def _tensor_spans(raw: bytes) -> dict[str, tuple[int, int]]:
    """Each tensor of a safetensors file's bytes: its (start, end) offsets in the file."""
    (size,) = struct.unpack_from("<Q", raw)
    header = json.loads(raw[8 : 8 + size])
    header.pop("__metadata__", None)
    return {name: (8 + size + e["data_offsets"][0], 8 + size + e["data_offsets"][1]) for name, e in header.items()}


def _traced(module: torch.nn.Module, shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the exporter's notes on its own deprecation and on traced shapes; the graphs are checked
        # against torch's outputs by the tests instead
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(shape),),
            buf,  # type: ignore[arg-type]  # a file object is what it writes to
            dynamo=False,  # the TorchScript exporter: parameter names kept, no onnxscript needed
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            do_constant_folding=False,  # keeps each weight a tensor named as in the weights file
            opset_version=OPSET,
        )
    return buf.getvalue()


def export_graphs(weights: Path, write: bool = True) -> dict[Path, bytes]:
    """The graphs of the model in ``weights`` (path -> bytes), written beside it unless ``write``
    is False. A network without ``inference_parts`` has no graphs (a ModelError)."""
    import onnx
    from onnx import TensorProto

    model = load_model(weights)
    parts = getattr(model.network, "inference_parts", None)
    if parts is None:
        raise ModelError(f"{weights}: the {model.architecture} network has no inference graphs")
    raw = weights.read_bytes()
    spans = _tensor_spans(raw)
    out: dict[Path, bytes] = {}
    for part, (module, shape) in parts().items():
        graph = onnx.load_from_string(_traced(module.eval(), shape))
        for init in graph.graph.initializer:
            span = spans.get(init.name)
            # a tensor of the graph's own (a buffer such as UpConv's taps), or one the file stores
            # in another dtype (float16 layers, loaded as float32), stays inside the graph
            if span is None or raw[span[0] : span[1]] != init.raw_data:
                continue
            init.ClearField("raw_data")
            init.data_location = TensorProto.EXTERNAL
            where = {"location": weights.name, "offset": str(span[0]), "length": str(span[1] - span[0])}
            for key, value in where.items():
                entry = init.external_data.add()
                entry.key, entry.value = key, value
        meta = {META_FORMAT: GRAPH_FORMAT, META_PART: part, META_WEIGHTS_HASH: model.weights_hash.hex()}
        for key, value in meta.items():
            prop = graph.metadata_props.add()
            prop.key, prop.value = key, value
        out[graph_path(weights, part)] = graph.SerializeToString()
    if write:
        for path, data in out.items():
            atomic_write(path, data, force=True)
    return out


def has_inference_parts(weights: Path) -> bool:
    """Whether the network a weights file names offers inference graphs (read from its header)."""
    from cae_codec.modelfiles import read_model_info
    from cae_codec.nn.registry import ARCHITECTURE_MODULES, ARCHITECTURES

    architecture = read_model_info(weights).architecture
    if architecture not in ARCHITECTURES and architecture in ARCHITECTURE_MODULES:
        import importlib

        importlib.import_module(ARCHITECTURE_MODULES[architecture])
    cls = ARCHITECTURES.get(architecture)
    return cls is not None and hasattr(cls, "inference_parts")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cae_codec.nn.graphs", description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", nargs="+", type=Path, help=".safetensors files: their graphs are written beside them")
    args = ap.parse_args(argv)
    for weights in args.weights:
        try:
            graphs = export_graphs(weights)
        except CaecError as e:
            print(f"graphs: error: {e}", file=sys.stderr)
            return 1
        for path, data in graphs.items():
            print(f"{path}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
