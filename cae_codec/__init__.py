"""caec: a learned lossy image codec (convolutional autoencoder + PCA + JPEG2000).

Library use: ``cae_codec.encode(array) -> bytes`` and ``cae_codec.decode(bytes) -> array``
(uint8 (H, W) or (H, W, C), C in 1..4); ``cae_codec.info(bytes)`` reads a header.
``encode(array, icc_profile=...)`` carries a colour profile, ``decode_with_meta(bytes)``
gives it back with the pixels.
"""

__version__ = "0.2.0"

# after __version__: modules imported below read it from here
from cae_codec.api import decode, decode_with_meta, encode, info

__all__ = ["__version__", "decode", "decode_with_meta", "encode", "info"]
