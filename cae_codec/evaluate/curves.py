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
        raw = read_bytes(path)
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise CaecError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json(obj, str(path))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"


def _num(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None
