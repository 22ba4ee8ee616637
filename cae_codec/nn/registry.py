"""One registry from architecture name to network class.

A weights file records its architecture name and config in its metadata; the name is
looked up here, so adding an architecture never changes what an existing name means
(the failure mode of index-based model ids).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import torch.nn as nn

T = TypeVar("T", bound=type[nn.Module])

ARCHITECTURES: dict[str, type[nn.Module]] = {}
# the module that registers each architecture, imported when a weights file names it: the
# registry knows every architecture without importing every codec
ARCHITECTURE_MODULES = {
    "cae-gdn": "cae_codec.cae.network",
    "mnist-dae": "cae_codec.mnistdae.network",
    "comcnn": "cae_codec.comcnn.network",
    "comcnn-enhance": "cae_codec.comcnn.network",
    "rnn-toderici": "cae_codec.rnn.network",
}


def register_architecture(name: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        if name in ARCHITECTURES:
            raise ValueError(f"architecture {name!r} registered twice")
        ARCHITECTURES[name] = cls
        return cls

    return deco


def build_network(name: str, config: dict[str, Any]) -> nn.Module:
    if name not in ARCHITECTURES and name in ARCHITECTURE_MODULES:
        importlib.import_module(ARCHITECTURE_MODULES[name])
    try:
        cls = ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES)) or "none"
        raise KeyError(f"unknown architecture {name!r} (known: {known})") from None
    return cls.from_config(config)  # type: ignore[attr-defined, no-any-return]
