"""Rate-distortion curves in CompressAI's JSON schema.

``{"name", "description", "results": {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time",
"decoding_time"}}``, one value per rate point (for us: per target rate, averaged over the
images). Files we write add a ``"caec"`` object (target rates, library versions, images),
which readers of the schema ignore. NaN is written as null, so the files are strict JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cae_codec.errors import CaecError
from cae_codec.fsutil import read_bytes

RESULT_KEYS = {
    "bpp": "bpp",
    "psnr": "psnr-rgb",
    "ms_ssim": "ms-ssim-rgb",
    "encoding_time": "encoding_time",
    "decoding_time": "decoding_time",
}


@dataclass
class RDCurve:
    name: str
    description: str
    bpp: list[float]
    psnr: list[float]
    ms_ssim: list[float] = field(default_factory=list)  # empty when the source has none
    encoding_time: list[float] = field(default_factory=list)
    decoding_time: list[float] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("psnr", "ms_ssim", "encoding_time", "decoding_time"):
            values = getattr(self, attr)
            if values and len(values) != len(self.bpp):
                raise CaecError(f"curve {self.name!r}: {len(values)} {attr} values for {len(self.bpp)} rates")

    @property
    def has_ms_ssim(self) -> bool:
        return any(math.isfinite(v) for v in self.ms_ssim)

    def to_json(self) -> dict[str, Any]:
        results = {key: [_num(v) for v in getattr(self, attr)] for attr, key in RESULT_KEYS.items()}
        out: dict[str, Any] = {"name": self.name, "description": self.description, "results": results}
        if self.meta:
            out["caec"] = self.meta
        return out

    @classmethod
    def from_json(cls, obj: Any, source: str = "<json>") -> RDCurve:
        if not isinstance(obj, dict) or not isinstance(obj.get("results"), dict):
            raise CaecError(f"{source}: not a CompressAI results file (no 'results' object)")
        res = obj["results"]
        values: dict[str, list[float]] = {}
        for attr, key in RESULT_KEYS.items():
            raw = res.get(key, [])
            if not isinstance(raw, list) or not all(v is None or isinstance(v, (int, float)) for v in raw):
                raise CaecError(f"{source}: results.{key} is not a list of numbers")
            values[attr] = [math.nan if v is None else float(v) for v in raw]
        if not values["bpp"] or not values["psnr"]:
            raise CaecError(f"{source}: needs results.bpp and results.psnr-rgb")
        name = obj.get("name")
        try:
            return cls(
                name=str(name) if name else Path(source).stem,
                description=str(obj.get("description", "")),
                meta=obj.get("caec", {}) if isinstance(obj.get("caec"), dict) else {},
                **values,
            )
        except CaecError as e:
            raise CaecError(f"{source}: {e}") from None

    @classmethod
    def load(cls, path: Path) -> RDCurve:
        if path.suffix.lower() == ".txt":
            return cls.load_tfc(path)
        raw = read_bytes(path)
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CaecError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json(obj, str(path))

    @classmethod
    def load_tfc(cls, path: Path) -> RDCurve:
        """A published curve in tensorflow-compression's results layout (``bpp, value`` lines
        under ``#`` comments, one folder per metric: PSNR_sRGB_RGB/NAME.txt and
        MS-SSIM_sRGB_RGB/NAME.txt); given either file, the other metric comes from its sibling
        folder when there, at the PSNR file's rates (the MS-SSIM values interpolated in bpp)."""
        folders = {"PSNR_sRGB_RGB": "psnr", "MS-SSIM_sRGB_RGB": "ms_ssim"}
        if path.parent.name not in folders:
            raise CaecError(f"{path}: a .txt curve must be in a PSNR_sRGB_RGB or MS-SSIM_sRGB_RGB folder")
        series: dict[str, tuple[list[float], list[float]]] = {}
        title = path.stem
        for folder, metric in folders.items():
            source = path.parent.parent / folder / path.name
            if source != path and not source.is_file():
                continue
            text = read_bytes(source).decode("utf-8", "replace")
            rows = []
            for line in text.splitlines():
                if line.startswith("#"):
                    if "data for" in line and '"' in line:
                        title = line.split('"')[1]
                    continue
                if line.strip():
                    try:
                        rows.append(tuple(float(v) for v in line.split(",")))
                    except ValueError:
                        raise CaecError(f"{source}: not a 'bpp, value' line: {line[:40]!r}") from None
            if not rows or any(len(r) != 2 for r in rows):
                raise CaecError(f"{source}: no 'bpp, value' lines")
            series[metric] = ([r[0] for r in rows], [r[1] for r in rows])
        if "psnr" not in series:
            raise CaecError(f"{path}: needs its PSNR_sRGB_RGB curve beside it")
        bpp, psnr = series["psnr"]
        ms_ssim = [math.nan] * len(bpp)
        if "ms_ssim" in series:
            mb, mv = series["ms_ssim"]
            ms_ssim = [float(np.interp(b, mb, mv)) if min(mb) <= b <= max(mb) else math.nan for b in bpp]
        return cls(name=title, description=f"published ({path.name})", bpp=bpp, psnr=psnr, ms_ssim=ms_ssim)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
