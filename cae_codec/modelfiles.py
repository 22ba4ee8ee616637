"""Reading what a weights file declares, without importing torch (cae_codec.zoo finds the files).

Decoding a .cae file must reject a wrong model or a malformed payload fast (torch takes
seconds to import): the safetensors header is plain JSON, so its metadata (architecture,
config, recorded weights hash) is read here with the standard library alone.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
