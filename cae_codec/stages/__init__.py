"""Stages shared by the codecs: colour conversion, tiling, the PCA rotation, scalar
quantization, JPEG 2000 coding of integer planes. Each is written once, here."""
