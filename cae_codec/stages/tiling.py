"""Padding an image to whole tiles, and moving between the tile batch and the full plane."""

from __future__ import annotations

import numpy as np

TILE = 128


def padded_size(height: int, width: int, tile: int = TILE) -> tuple[int, int]:
    return -(-height // tile) * tile, -(-width // tile) * tile


def pad_edge(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, H, W) -> (C, height, width) by repeating the last row and column.

    Replicating the edge (rather than zeros) gives the encoder flat content to code, which
    costs almost nothing and is cropped away on decode.
    """
    _, h, w = img.shape
    return np.pad(img, ((0, 0), (0, height - h), (0, width - w)), mode="edge")


def tile_origins(height: int, width: int, tile: int = TILE) -> list[tuple[int, int]]:
    """Top-left corners of the tiles of a padded plane, row-major."""
    return [(y, x) for y in range(0, height, tile) for x in range(0, width, tile)]
