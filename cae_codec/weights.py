"""Model weights on disk: safetensors only (never pickle), identified by a content hash.

A weights file holds the network's tensors, the PCA rotation fitted on training latents
(``pca.mean``, ``pca.basis``) and JSON metadata: the architecture name and config, and the
training record (steps, samples seen, wall time, command). The *weights hash* is a SHA-256
over the tensors alone (names, dtypes, shapes, bytes), so editing the training notes never
changes which files a model can decode.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cae_codec.errors import ModelError
from cae_codec.modelfiles import resolve_model_path
from cae_codec.nn import build_network

PCA_MEAN = "pca.mean"
PCA_BASIS = "pca.basis"
NET_PREFIX = "net."
HASH_BYTES = 16


def tensors_hash(tensors: dict[str, torch.Tensor]) -> bytes:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()[:HASH_BYTES]


@dataclass
class Model:
    """A loaded codec model: the network in eval mode plus what the codec needs around it."""

    name: str
    network: torch.nn.Module
    pca_mean: torch.Tensor  # (M,)
    pca_basis: torch.Tensor  # (M, M); column k is the k-th principal direction
    weights_hash: bytes
    architecture: str
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def stride(self) -> int:
        config: Any = getattr(self.network, "config")  # noqa: B009 (nn.Module's __getattr__ is untyped)
        return int(config.stride)

    @property
    def latent_channels(self) -> int:
        return int(self.pca_mean.numel())


def save_model(
    path: Path,
    network: torch.nn.Module,
    architecture: str,
    pca_mean: torch.Tensor,
    pca_basis: torch.Tensor,
    metadata: dict[str, Any],
) -> bytes:
    """Write atomically; returns the weights hash."""
    tensors = {NET_PREFIX + k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    tensors[PCA_MEAN] = pca_mean.detach().cpu().float().contiguous()
    tensors[PCA_BASIS] = pca_basis.detach().cpu().float().contiguous()
    meta = {
        "weights_hash": tensors_hash(tensors).hex(),
        "architecture": architecture,
        "config": json.dumps(network.config_dict()),  # type: ignore[operator]
        "training": json.dumps(metadata),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        tmp.chmod(0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return tensors_hash(tensors)


_CACHE: dict[tuple[str, float, int], Model] = {}


def load_model(
    name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu", name_only: bool = False
) -> Model:
    path = resolve_model_path(name_or_path, name_only)
    try:
        st = path.stat()
    except OSError as e:
        raise ModelError(f"cannot read weights {path}: {e.strerror}") from None
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _load_uncached(path)
        _CACHE.clear()  # one model at a time is what the CLI needs; keeps memory flat
        _CACHE[key] = cached
    cached.network.to(device)
    return cached


def _load_uncached(path: Path) -> Model:
    try:
        tensors = load_file(str(path))
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"cannot load weights {path}: {str(e).splitlines()[0]}") from None
    try:
        architecture = meta["architecture"]
        config = json.loads(meta["config"])
        training = json.loads(meta.get("training", "{}"))
        network = build_network(architecture, config)
        state = {k[len(NET_PREFIX) :]: v for k, v in tensors.items() if k.startswith(NET_PREFIX)}
        network.load_state_dict(state, strict=True)
        pca_mean, pca_basis = tensors[PCA_MEAN], tensors[PCA_BASIS]
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise ModelError(f"weights {path} are not a caec model: {str(e).splitlines()[0]}") from None
    digest = tensors_hash(tensors)
    recorded = meta.get("weights_hash")
    if recorded is not None and recorded != digest.hex():
        # the fast pre-check in api.decode trusts the recorded hash; it must never lie
        raise ModelError(f"weights {path} are corrupt: tensors do not match their recorded hash")
    network.eval()
    for p in network.parameters():
        p.requires_grad_(False)
    return Model(
        name=path.name.removesuffix(".safetensors"),
        network=network,
        pca_mean=pca_mean,
        pca_basis=pca_basis,
        weights_hash=digest,
        architecture=architecture,
        config=config,
        metadata=training,
    )
