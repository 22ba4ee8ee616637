"""`caec enhance photo.jpg -o photo.png`: an ordinary JPEG file decoded, then its block and ringing
artifacts removed by a RecCNN trained on full-resolution JPEG (`caec train comcnn --enhance`):
the paper's "RecCNN only" row as a user feature.

The file is checked as the comcnn decoder checks its JPEG chunk (cae_codec.comcnn.payload: the
frame header read from the markers, 8-bit Huffman DCT, a bounded number of scans) and against
the pixel limit before anything is decoded. The network runs in tiles with margins wider than
its receptive field (memory bounded on any size, each tile's centre what a whole pass computes).
"""

from __future__ import annotations

import numpy as np
import torch

from cae_codec.comcnn import inner, payload
from cae_codec.comcnn.codec import fused_rec
from cae_codec.comcnn.network import ENHANCE_ARCHITECTURE, JpegEnhancer
from cae_codec.errors import CaecError, FormatError, ModelError
from cae_codec.imageio import check_pixel_limit
from cae_codec.weights import load_model

TILE = 768  # output pixels a side per network pass


class Enhancer:
    def __init__(self, model: str, device: str = "cpu") -> None:
        loaded = load_model(model)
        if loaded.architecture != ENHANCE_ARCHITECTURE:
            raise ModelError(f"weights {loaded.name!r} are a {loaded.architecture} network, not a JPEG enhancer")
        net: JpegEnhancer = loaded.network  # type: ignore[assignment]
        self.name = loaded.name
        self.device = torch.device(device)
        self.rec = fused_rec(net.eval().rec).to(self.device)
        self.margin = net.config.layers + 2

    @torch.inference_mode()
    def run(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 decoded JPEG -> (H, W, 3) float in [0, 1]."""
        h, w = rgb.shape[:2]
        out = np.empty((h, w, 3), dtype=np.float32)
        m = self.margin
        for y0 in range(0, h, TILE):
            for x0 in range(0, w, TILE):
                y1, x1 = min(y0 + TILE, h), min(x0 + TILE, w)
                ya, yb, xa, xb = max(y0 - m, 0), min(y1 + m, h), max(x0 - m, 0), min(x1 + m, w)
                x = torch.from_numpy(np.ascontiguousarray(rgb[ya:yb, xa:xb].transpose(2, 0, 1))).float().div(255)
                r = self.rec(x[None].to(self.device))[0].permute(1, 2, 0).cpu().numpy()
                out[y0:y1, x0:x1] = r[y0 - ya : y1 - ya, x0 - xa : x1 - xa]
        return np.clip(out, 0, 1)

    def enhance(self, data: bytes, label: str, max_pixels: int | None) -> np.ndarray:
        """A JPEG file's bytes -> the enhanced image, (H, W, 3) uint8 (grey: (H, W, 1))."""
        try:
            frame = payload.read_frame(data)
        except FormatError as e:
            raise CaecError(f"{label}: not a JPEG caec can enhance ({e})") from None
        if frame.precision != 8 or frame.components not in (1, 3):
            raise CaecError(
                f"{label}: a {frame.precision}-bit JPEG of {frame.components} components; "
                "enhance takes 8-bit grey or colour"
            )
        check_pixel_limit(frame.width, frame.height, max_pixels, label)
        try:
            rgb = inner.decode(data, 3)
        except CaecError as e:
            raise CaecError(f"{label}: {e}") from None
        out = self.run(rgb)
        if frame.components == 1:
            luma = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            return np.round(luma * 255).astype(np.uint8)[:, :, None]
        return np.round(out * 255).astype(np.uint8)
