"""The CPU inference runtime of every codec: a model's networks run by ONNX Runtime, from graphs
exported from its weights (cae_codec.nn.onnx); torch stays for training, for GPUs, for
gradient work such as ``--refine``, and for weights without graphs.

Why: on the shipped CAE, ONNX Runtime ran the encoder 1.6x and the decoder 1.4x faster than
torch on 2 CPU threads, and ``import onnxruntime`` takes 0.1 s where ``import torch`` takes
2 s, which a script calling caec once per file pays every time (docs/benchmark.md).

One identity for a model: a graph holds no weights of its own. Its tensors are ONNX external
data pointing into the model's own .safetensors file, at the byte offsets where the tensors
lie there, so a graph can only run the weights it lies beside. It records their weights hash,
which is compared at load with the hash the weights file records, and that one with the
file's tensors (cae_codec.modelfiles.verified_hash). A model NAME's graphs are
``NAME.PART.onnx`` beside ``NAME.safetensors`` (the parts are the codec's: the CAE's are
``encoder``, ``decoder`` and ``decoder-1``... one per rate band).

Which runtime runs: ``$CAEC_RUNTIME`` = ``auto`` (default: ONNX Runtime on the CPU when the
graphs are there, torch otherwise), ``onnx`` (graphs required on the CPU) or ``torch``.
Nothing here imports torch.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cae_codec.errors import CaecError, ModelError
from cae_codec.modelfiles import file_key

if TYPE_CHECKING:
    import onnxruntime

RUNTIME_ENV = "CAEC_RUNTIME"
RUNTIMES = ("auto", "onnx", "torch")
GRAPH_SUFFIX = ".onnx"
WEIGHTS_SUFFIX = ".safetensors"
# what a graph's metadata records (ONNX metadata_props)
GRAPH_FORMAT = "caec-graph-1"
META_FORMAT = "caec.graph_format"
META_WEIGHTS_HASH = "caec.weights_hash"
META_PART = "caec.part"

_threads: int | None = None
_AGAIN = "export it again (python -m cae_codec.nn.graphs WEIGHTS), or delete it to run the weights in torch"


def set_threads(count: int | None) -> None:
    """Threads of every graph loaded from now on (None: the default, see :func:`threads`)."""
    global _threads
    if count is not None and count < 0:
        raise ValueError(f"threads must be 0 (the runtime's choice) or more, got {count}")
    _threads = count


def threads() -> int:
    """Intra-op threads of a graph: :func:`set_threads`'s, else ``$OMP_NUM_THREADS`` (which torch
    obeys too, so one setting limits either runtime), else 0: ONNX Runtime's default, one per
    physical core."""
    if _threads is not None:
        return _threads
    raw = os.environ.get("OMP_NUM_THREADS", "")
    return int(raw) if raw.isdigit() else 0


def choice() -> str:
    """The runtime ``$CAEC_RUNTIME`` asks for: auto, onnx or torch."""
    value = os.environ.get(RUNTIME_ENV, "") or "auto"
    if value not in RUNTIMES:
        raise CaecError(f"${RUNTIME_ENV}={value!r} is not one of {', '.join(RUNTIMES)}")
    return value


def available() -> bool:
    """Whether ONNX Runtime is installed (found without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def cuda_possible() -> bool:
    """False where no CUDA device can exist (a Linux machine without the NVIDIA driver), so
    that ``--device auto`` can answer 'cpu' without importing torch; True when unsure."""
    if sys.platform.startswith("linux"):
        return Path("/proc/driver/nvidia").exists()
    return sys.platform != "darwin"  # no CUDA on a Mac


def device_name(device: str) -> str:
    """``--device`` (auto, cpu, cuda, cuda:N) as the device that will run: 'cpu' or a CUDA
    device's name. torch is imported only where it has to tell (a CUDA device may exist)."""
    if device == "cpu" or (device == "auto" and not cuda_possible()):
        return "cpu"
    from cae_codec.api import pick_device

    return str(pick_device(device))


def use_graphs(device: str) -> bool:
    """Whether a model on ``device`` (as :func:`device_name` gives it) runs its graphs."""
    wanted = choice()
    if wanted == "onnx" and device != "cpu":
        raise CaecError(f"${RUNTIME_ENV}=onnx runs on the CPU only, not on {device}")
    if wanted == "onnx" and not available():
        raise CaecError(f"${RUNTIME_ENV}=onnx, but onnxruntime is not installed")
    return device == "cpu" and wanted != "torch" and available()


def graph_path(weights: Path, part: str) -> Path:
    """Where the graph ``part`` of the weights file ``weights`` lies: NAME.PART.onnx beside it."""
    return weights.with_name(f"{weights.name.removesuffix(WEIGHTS_SUFFIX)}.{part}{GRAPH_SUFFIX}")


class Graph:
    """One exported network run by ONNX Runtime on the CPU: one float32 input, one output."""

    def __init__(self, path: Path, weights_hash: bytes, part: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads()
        options.inter_op_num_threads = 1  # the graphs are chains: nothing runs beside a node
        options.log_severity_level = 3  # errors only: its warnings are about its own internals
        # Without the NCHWc layout (level 'all'): every GDN between two convolutions made it
        # reorder the tensor twice, and the graphs ran 1.2-1.4x faster without it, on one thread
        # as on two (research/runtime_speed.py, docs/benchmark.md)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        # idle threads sleep instead of spinning: on a machine shared with other work spinning
        # threads took the cores from the working ones (1.19 s against 1.41 s on the loaded machine)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session: onnxruntime.InferenceSession = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own exception types, none exported stably
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"graph {path} cannot be loaded ({first}): {_AGAIN}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(META_FORMAT) != GRAPH_FORMAT or meta.get(META_PART) != part:
            raise ModelError(f"graph {path} is not a caec graph of part {part!r}")
        if meta.get(META_WEIGHTS_HASH) != weights_hash.hex():
            raise ModelError(
                f"graph {path} was exported from weights {meta.get(META_WEIGHTS_HASH, '?')[:12]}, not the "
                f"{weights_hash.hex()[:12]} beside it: {_AGAIN}"
            )
        self.path = path
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out: Any = self.session.run(None, {self.input: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return np.asarray(out)


# Loaded graphs, kept for the process: a new session runs its first few calls ~1.4x slower than
# later ones (kodim01's decoder: 0.20 s against 0.14 s), so decoding file after file in one
# process (a CLI batch, the library, the web server) reuses the session. ONNX Runtime allows
# concurrent run() calls on one session.
_GRAPHS: dict[tuple[str, int, int, str, bytes, int], Graph] = {}


def load_graph(weights: Path, part: str, weights_hash: bytes) -> Graph | None:
    """The graph ``part`` of ``weights`` (whose tensors hash to ``weights_hash``), or None when
    it has none; a graph that is there but broken or stale is a ModelError."""
    path = graph_path(weights, part)
    if not path.is_file():
        return None
    key = (*file_key(path, "graph"), part, weights_hash, threads())
    graph = _GRAPHS.get(key)
    if graph is None:
        graph = _GRAPHS[key] = Graph(path, weights_hash, part)
    return graph


def has_graphs(weights: Path, parts: list[str]) -> bool:
    return all(graph_path(weights, part).is_file() for part in parts)
