"""Reading what a weights file declares, without importing torch (cae_codec.zoo finds the files).

Decoding a .cae file must reject a wrong model or a malformed payload fast (torch takes
seconds to import): the safetensors header is plain JSON, so its metadata (architecture,
config, recorded weights hash) is read here with the standard library alone.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cae_codec.errors import ModelError

# a safetensors header beyond this is not one of ours (ours are a few kB)
MAX_HEADER_BYTES = 1 << 24


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    architecture: str
    config: dict[str, Any]
    weights_hash: bytes | None  # as recorded at save time; None in files that predate the record


def read_model_info(path: Path) -> ModelInfo:
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ModelError(f"cannot load weights {path}: file too short for safetensors")
            (size,) = struct.unpack("<Q", head)
            if size > MAX_HEADER_BYTES:
                raise ModelError(f"cannot load weights {path}: not a safetensors file (header of {size} bytes)")
            raw = f.read(size)
    except OSError as e:
        raise ModelError(f"cannot read weights {path}: {e.strerror}") from None
    try:
        meta = json.loads(raw).get("__metadata__") or {}
        recorded = meta.get("weights_hash")
        return ModelInfo(
            path=path,
            architecture=meta["architecture"],
            config=json.loads(meta["config"]),
            weights_hash=bytes.fromhex(recorded) if recorded else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelError(f"weights {path} are not a caec model: {e}") from None


def check_weights_hash(file_model: str | None, file_hash: bytes, loaded_name: str, loaded_hash: bytes) -> None:
    """A file decodes only with the exact weights it was encoded with (``file_model`` None: a
    version-2 file that names its weights by their hash alone)."""
    if file_hash != loaded_hash:
        made_by = (
            f"model {file_model!r} (weights {file_hash.hex()[:12]})"
            if file_model
            else f"weights {file_hash.hex()[:12]}"
        )
        raise ModelError(
            f"file was encoded with {made_by}, but the loaded weights {loaded_name!r} are {loaded_hash.hex()[:12]}"
        )


def file_key(path: Path, what: str = "weights") -> tuple[str, int, int]:
    """What a per-process cache of a file's contents is keyed by: its resolved path, mtime and
    size, so that a file rewritten in place (retrained, re-exported) is read and checked again;
    a file that cannot be stat'ed is one ModelError line."""
    try:
        st = path.stat()
    except OSError as e:
        raise ModelError(f"cannot read {what} {path}: {e.strerror}") from None
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def precheck_weights(file_model: str | None, file_hash: bytes, model: ModelInfo) -> None:
    """check_weights_hash against the hash a model file records in its header, before the model
    loads (nothing to check when it records none): every codec's payload precheck starts here."""
    if model.weights_hash is not None:
        check_weights_hash(
            file_model, file_hash, model.path.name.removesuffix(".safetensors"), model.weights_hash[: len(file_hash)]
        )


# safetensors' dtype names -> torch's names of them, which weights.tensors_hash writes into the
# hash, and numpy's where numpy has the type
_TORCH_DTYPES = {
    "F64": "torch.float64",
    "F32": "torch.float32",
    "F16": "torch.float16",
    "BF16": "torch.bfloat16",
    "I64": "torch.int64",
    "I32": "torch.int32",
    "I16": "torch.int16",
    "I8": "torch.int8",
    "U8": "torch.uint8",
    "BOOL": "torch.bool",
}
_NUMPY_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1"}
HASH_BYTES = 16


@dataclass(frozen=True)
class CheckedWeights:
    """A weights file read without torch: its header, the hash of its tensors (equal to the one
    it records) and the tensors asked for, as numpy arrays."""

    info: ModelInfo
    weights_hash: bytes
    tensors: dict[str, np.ndarray]


def read_checked(path: Path, names: tuple[str, ...] = ()) -> CheckedWeights:
    """Read ``path`` whole, hash its tensors as weights.tensors_hash does (the same digest, no
    torch) and give back the tensors named ``names``. A file whose tensors do not match the
    hash it records, or that records none, is a ModelError: the inference graphs read the
    file's bytes directly (cae_codec.runtime), so they must be the ones the hash names."""
    info = read_model_info(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ModelError(f"cannot read weights {path}: {e.strerror}") from None
    try:
        (size,) = struct.unpack_from("<Q", raw)
        header = json.loads(raw[8 : 8 + size])
        header.pop("__metadata__", None)
        base = 8 + size
        h = hashlib.sha256()
        spans: dict[str, tuple[str, list[int], int, int]] = {}
        for name in sorted(header):
            entry = header[name]
            start, end = (base + int(o) for o in entry["data_offsets"])
            shape = [int(d) for d in entry["shape"]]
            if not base <= start <= end <= len(raw):
                raise ValueError(f"tensor {name} lies outside the file")
            h.update(f"{name}|{_TORCH_DTYPES[entry['dtype']]}|{tuple(shape)}|".encode())
            h.update(raw[start:end])
            spans[name] = (entry["dtype"], shape, start, end)
        tensors = {}
        for name in names:
            dtype, shape, start, end = spans[name]
            tensors[name] = np.frombuffer(
                raw, _NUMPY_DTYPES[dtype], (end - start) // np.dtype(_NUMPY_DTYPES[dtype]).itemsize, start
            ).reshape(shape)
    except (ValueError, KeyError, TypeError, AttributeError, struct.error) as e:
        raise ModelError(f"weights {path} are not a caec model: {e}") from None
    digest = h.digest()[:HASH_BYTES]
    if info.weights_hash is None:
        raise ModelError(f"weights {path} record no weights hash (saved by an old caec): load them with torch")
    if info.weights_hash != digest:
        raise ModelError(f"weights {path} are corrupt: tensors do not match their recorded hash")
    return CheckedWeights(info, digest, tensors)
