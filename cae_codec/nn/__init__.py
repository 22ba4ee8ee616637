"""Neural network building blocks and the architecture registry."""

from cae_codec.nn.cae import CAE, CAEConfig
from cae_codec.nn.registry import ARCHITECTURES, build_network, register_architecture

__all__ = ["ARCHITECTURES", "CAE", "CAEConfig", "build_network", "register_architecture"]
