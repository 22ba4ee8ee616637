"""caec: a learned lossy image codec (convolutional autoencoder + PCA + JPEG2000)."""

__version__ = "0.1.0"
