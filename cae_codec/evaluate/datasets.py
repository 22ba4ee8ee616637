"""Evaluation image sets: a named set (``kodak``) found locally or downloaded once, or a folder."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cae_codec.errors import CaecError
from cae_codec.fsutil import atomic_write
from cae_codec.imageio import IMAGE_SUFFIXES

KODAK_FILES = [f"kodim{i:02d}.png" for i in range(1, 25)]
# the canonical copy; the files are byte-identical to those under shared/data/kodak
KODAK_URL = "http://r0k.us/graphics/kodak/kodak/{name}"
DOWNLOAD_TIMEOUT_S = 10.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DATA_ENV = "CAEC_DATA"


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    images: list[Path]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "caec"


def _kodak_in(folder: Path) -> Path | None:
    """``folder`` itself or ``folder/kodak`` when it holds all 24 Kodak images."""
    for cand in (folder / "kodak", folder):
        if all((cand / n).is_file() for n in KODAK_FILES):
            return cand
    return None


def _download_kodak(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CaecError(f"cannot create the cache folder {dest}: {e.strerror or e}") from None
    for n, name in enumerate(KODAK_FILES, 1):
        if (dest / name).is_file():
            continue
        url = KODAK_URL.format(name=name)
        print(f"caec: downloading {url} ({n}/{len(KODAK_FILES)})", file=sys.stderr)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                data = resp.read()
        except (TimeoutError, urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise CaecError(
                f"Kodak is not on this machine and {url} cannot be fetched ({reason}); "
                f"put kodim01.png..kodim24.png in {dest}, or pass --data-dir or set ${DATA_ENV}"
            ) from None
        if not data.startswith(PNG_MAGIC):
            raise CaecError(f"{url} did not return a PNG image; the download was not kept")
        atomic_write(dest / name, data, force=True)


def resolve_dataset(spec: str, data_dir: Path | None = None, download: bool = True) -> Dataset:
    """``kodak`` (from --data-dir, $CAEC_DATA, the cache, else downloaded) or a folder of images."""
    if spec.lower() == "kodak":
        if data_dir is not None:
            found = _kodak_in(data_dir)
            if found is None:
                raise CaecError(
                    f"--data-dir {data_dir}: no complete Kodak set (kodim01..24.png) in it or in its kodak/"
                )
        else:
            env = os.environ.get(DATA_ENV)
            found = _kodak_in(Path(env)) if env else None
            if found is None:
                cached = cache_dir() / "kodak"
                found = _kodak_in(cached)
                if found is None:
                    if not download:
                        raise CaecError(f"Kodak not found in ${DATA_ENV} or {cached}")
                    _download_kodak(cached)
                    found = cached
        return Dataset("kodak", found, [found / n for n in KODAK_FILES])
    folder = Path(spec)
    if not folder.is_dir():
        raise CaecError(f"--dataset {spec}: neither a known dataset (kodak) nor a folder")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise CaecError(f"--dataset {spec}: no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return Dataset(folder.name or str(folder), folder, images)
