"""Model weights on disk: safetensors only (never pickle), identified by a content hash.

A weights file holds the network's tensors, the codec's own tensors (the CAE's: the PCA
rotation fitted on training latents, ``pca.mean`` and ``pca.basis``) and JSON metadata: the
architecture name and config, and the training record (steps, samples seen, wall time,
command). The *weights hash* is a SHA-256 over the tensors alone (names, dtypes, shapes,
bytes), so editing the training notes never changes which files a model can decode.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from cae_codec.errors import ModelError
from cae_codec.modelfiles import file_key
from cae_codec.nn import build_network
from cae_codec.zoo import resolve_model

PCA_MEAN = "pca.mean"
PCA_BASIS = "pca.basis"
NET_PREFIX = "net."
HASH_BYTES = 16
# what a model's training history keeps of each earlier run; run_id tells apart runs that look alike
RUN_RECORD_KEYS = ("run_id", "steps", "samples", "patch_size", "seconds", "device", "command")


def run_record(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: meta.get(k) for k in RUN_RECORD_KEYS}


def run_key(meta: dict[str, Any]) -> str:
    return json.dumps(run_record(meta), sort_keys=True)


def training_totals(records: list[dict[str, Any]]) -> tuple[float, float]:
    """Samples (in 128x128-crop equivalents) and seconds of these training runs together."""
    crops = sum((r.get("samples") or 0) * (r.get("patch_size") or 128) ** 2 / 128**2 for r in records)
    return crops, sum(r.get("seconds") or 0 for r in records)


def tensors_hash(tensors: dict[str, torch.Tensor]) -> bytes:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # reshape: a 0-d tensor (batch norm's num_batches_tracked) has no byte view of its own
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()[:HASH_BYTES]


@dataclass
class Model:
    """A loaded codec model: the network in eval mode plus what the codec needs around it."""

    name: str
    network: torch.nn.Module
    weights_hash: bytes
    architecture: str
    config: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    # the file's tensors besides the network's: what the codec keeps beside it (the CAE's PCA)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)

    def _tensor(self, name: str) -> torch.Tensor:
        # every codec's weights share this loader; only the CAE's carry a PCA, and it asks here
        if name not in self.tensors:
            raise ModelError(f"weights {self.name!r} hold no {name}: not a model of the CAE + PCA codec")
        return self.tensors[name]

    @property
    def pca_mean(self) -> torch.Tensor:  # (M,)
        return self._tensor(PCA_MEAN)

    @property
    def pca_basis(self) -> torch.Tensor:  # (M, M); column k is the k-th principal direction
        return self._tensor(PCA_BASIS)

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
    extra = {PCA_MEAN: pca_mean.detach().cpu().float(), PCA_BASIS: pca_basis.detach().cpu().float()}
    return save_network(path, network, architecture, metadata, extra)


def save_network(
    path: Path,
    network: torch.nn.Module,
    architecture: str,
    metadata: dict[str, Any],
    extra: dict[str, torch.Tensor] | None = None,
    half: tuple[str, ...] = (),
) -> bytes:
    """Any registered network (``network.config_dict()`` its config) with the codec's ``extra``
    tensors, written atomically; the network's tensors whose names start with one of ``half``
    are stored as float16 (they load back into the float32 network). Returns the weights hash."""
    tensors = {
        NET_PREFIX + k: (v.half() if k.startswith(half) and half else v).detach().cpu().contiguous()
        for k, v in network.state_dict().items()
    }
    tensors.update({k: v.detach().cpu().contiguous() for k, v in (extra or {}).items()})
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


_CACHE: dict[tuple[str, int, int], Model] = {}
_CACHE_SIZE = 4


def load_model(
    name_or_path: str | os.PathLike[str], device: str | torch.device = "cpu", name_only: bool = False
) -> Model:
    path = resolve_model(name_or_path, name_only)
    key = file_key(path)
    cached = _CACHE.get(key)
    if cached is None:
        cached = _load_uncached(path)
        if len(_CACHE) >= _CACHE_SIZE:  # a family's members, not every model ever loaded
            _CACHE.pop(next(iter(_CACHE)))
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
        weights_hash=digest,
        architecture=architecture,
        config=config,
        metadata=training,
        tensors={k: v for k, v in tensors.items() if not k.startswith(NET_PREFIX)},
    )


def merge_band_decoders(parts: list[Path], boundaries: list[float], out: Path, command: str = "") -> bytes:
    """One model with a decoder per rate band, from single-decoder weights that share everything
    else (``--decoder-only`` fine-tunes of one model, each for its band of steps).

    ``parts`` go from the finest steps to the coarsest; ``boundaries`` (ascending) are the steps
    where each next part takes over. Returns the weights hash of ``out``.
    """
    if len(parts) < 2 or len(boundaries) != len(parts) - 1:
        raise ModelError("give two or more parts and one boundary step fewer than parts")
    models = [_load_uncached(resolve_model(p)) for p in parts]
    first = models[0]
    if first.architecture != "cae-gdn" or first.config.get("decoder_bands"):
        raise ModelError(f"{parts[0]} is not a single-decoder CAE")
    shared = {k: v for k, v in first.network.state_dict().items() if not k.startswith("decoder.")}
    for path, m in zip(parts[1:], models[1:], strict=True):
        state = m.network.state_dict()
        same = m.config == first.config and all(torch.equal(state[k], v) for k, v in shared.items())
        if not same or not (torch.equal(m.pca_mean, first.pca_mean) and torch.equal(m.pca_basis, first.pca_basis)):
            raise ModelError(f"{path} does not share the encoder and PCA of {parts[0]}: its bitstreams would differ")
    network = build_network(first.architecture, {**first.config, "decoder_bands": list(boundaries)})
    state = dict(shared)
    for i, m in enumerate(models):
        prefix = "decoder." if i == 0 else f"band_decoders.{i - 1}."
        state.update({prefix + k[8:]: v for k, v in m.network.state_dict().items() if k.startswith("decoder.")})
    network.load_state_dict(state, strict=True)
    edges = [0.0, *boundaries, float("inf")]
    bands = [{"steps": [edges[i], edges[i + 1]], "from": m.name, "training": m.metadata} for i, m in enumerate(models)]
    # every training run behind the parts once: each part's own run, plus the earlier runs its
    # history lists, which parts fine-tuned from one base share
    earlier = {run_key(r): r for m in models for r in m.metadata.get("history", [])}
    runs = [*earlier.values(), *(m.metadata for m in models if run_key(m.metadata) not in earlier)]
    crops, seconds = training_totals(runs)
    meta = {
        # merging trains nothing: its own record is empty and the runs behind it are its history
        "run_id": uuid.uuid4().hex,
        "steps": 0,
        "samples": 0,
        "seconds": 0.0,
        "command": command,
        "history": [run_record(r) for r in runs],
        "bands": bands,
        "total_patch128_equivalents": round(crops, 1),
        "total_seconds": round(seconds, 1),
    }
    return save_model(out, network, first.architecture, first.pca_mean, first.pca_basis, meta)
