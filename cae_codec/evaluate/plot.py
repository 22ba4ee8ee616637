"""Pictures for people: the RD plot (matplotlib, Agg) and side-by-side crop sheets (Pillow)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from cae_codec.evaluate.curves import RDCurve
from cae_codec.evaluate.metrics import ms_ssim_db


def rd_plot_png(measured: list[RDCurve], references: list[RDCurve], title: str) -> bytes:
    """PSNR-RGB and MS-SSIM-RGB (in dB) against bpp; references dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_p, ax_m) = plt.subplots(1, 2, figsize=(13, 5.2))
    # published curves often run to 4-5 bpp: show them over the measured range (plus one point beyond)
    x_max = 1.1 * max((max(c.bpp) for c in measured), default=math.inf)
    for curves, style in ((measured, "-o"), (references, "--^")):
        for c in curves:
            order = np.argsort(c.bpp)
            bpp = np.asarray(c.bpp)[order]
            order = order[: int(np.searchsorted(bpp, x_max)) + 1]
            bpp = bpp[: len(order)]
            ax_p.plot(bpp, np.asarray(c.psnr)[order], style, label=c.name, markersize=4)
            if c.has_ms_ssim:
                ms = np.asarray([ms_ssim_db(v) if math.isfinite(v) else math.nan for v in c.ms_ssim])[order]
                ax_m.plot(bpp, ms, style, label=c.name, markersize=4)
    ax_p.set_ylabel("PSNR-RGB (dB)")
    ax_m.set_ylabel("MS-SSIM-RGB (dB, -10 log10(1 - MS-SSIM))")
    for ax in (ax_p, ax_m):
        if math.isfinite(x_max):
            ax.set_xlim(0, x_max)
        ax.set_xlabel("bits per pixel")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def detail_window(img: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` square with the most local contrast (where codecs differ most)."""
    h, w = img.shape[:2]
    if h <= size and w <= size:
        return 0, 0
    grey = img.astype(np.float64).mean(axis=2)
    energy = np.zeros_like(grey)
    energy[:, 1:] += np.abs(np.diff(grey, axis=1))
    energy[1:, :] += np.abs(np.diff(grey, axis=0))
    integral = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sh, sw = min(size, h), min(size, w)
    step = max(1, size // 8)
    best, best_yx = -1.0, (0, 0)
    for y in range(0, h - sh + 1, step):
        for x in range(0, w - sw + 1, step):
            s = integral[y + sh, x + sw] - integral[y, x + sw] - integral[y + sh, x] + integral[y, x]
            if s > best:
                best, best_yx = s, (y, x)
    return best_yx


def crop_sheet(original: np.ndarray, panels: list[tuple[str, np.ndarray]], size: int = 160, zoom: int = 2) -> bytes:
    """PNG: the same crop of the original and of each reconstruction, enlarged without smoothing, labelled."""
    y, x = detail_window(original, size)
    tiles = [("original", original), *panels]
    cols = min(4, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    crop_h, crop_w = min(size, original.shape[0]), min(size, original.shape[1])
    cell_w, cell_h, label_h = crop_w * zoom, crop_h * zoom, 18
    sheet = Image.new("RGB", (cols * (cell_w + 4) + 4, rows * (cell_h + label_h + 4) + 4), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(tiles):
        r, c = divmod(i, cols)
        left, top = 4 + c * (cell_w + 4), 4 + r * (cell_h + label_h + 4)
        crop = Image.fromarray(np.ascontiguousarray(img[y : y + crop_h, x : x + crop_w, :3]))
        sheet.paste(crop.resize((cell_w, cell_h), Image.Resampling.NEAREST), (left, top + label_h))
        draw.text((left + 2, top + 3), label, fill="black")
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()
