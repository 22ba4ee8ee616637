"""Evaluation image sets: a named set (``kodak``) found locally or downloaded once, or a folder."""

from __future__ import annotations

import hashlib
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cae_codec.errors import CaecError
from cae_codec.fsutil import atomic_write
from cae_codec.imageio import IMAGE_SUFFIXES

# SHA-256 of each Kodak image as the canonical copy serves it (computed from shared/data/kodak,
# byte-identical to it): the download is plain http, so every file is checked against these
KODAK_SHA256 = {
    "kodim01.png": "a56e27cbf5f843c048b6af1d6e090760e9c92fadba88b7dee0205918a37523bd",
    "kodim02.png": "133d50ad0f2cda48fef30e251f433fa1a98ee08c0f2d07cdab9462e876ccae5d",
    "kodim03.png": "e25ca1ff2f0c0cb5fdfd5f9b0a0bb21ac4c3de3c84a67f35b09a85d3306249db",
    "kodim04.png": "1e079e4adc03524e53f1394a2a8e1c5995f0f70a5aec125b12fa3fdbe33cba37",
    "kodim05.png": "10349e963c5c813d327852f82c1795fa4148d69fedffc4c589bee458e3ac3d53",
    "kodim06.png": "363510303b715d4cbc384e1ce227e466b613a09e1b71ae985882bf8e7fbd9b18",
    "kodim07.png": "a74d606cef80e70a04fb983364f79fb954ad46665edf2a8b7355ce81adfa7998",
    "kodim08.png": "e3cfc1371a5643c7f8cdf1bd565c172abce6aa26e3f2fdce74cbf7c32364089d",
    "kodim09.png": "a0c72eb70826619305388ed9c0f8aa8f491b234155d62673cda270d7021149a2",
    "kodim10.png": "28fb615837dc8e66fc92c40158cac80b57f07d0ce77d22576aa85ac9e2787336",
    "kodim11.png": "7936814b58b5387fce2e4e2488b4ec830dadd95fa9520f358ddb30990b50f2b6",
    "kodim12.png": "d78c37c2f04f23761ed2367dd77e2db584ddd4c3950833fecf89f199a8126980",
    "kodim13.png": "bc34a3ce58dea09dce1704c997171602de90cb34d0c8503a988b77f473d39b08",
    "kodim14.png": "55a94550ff18f3246c4074fd32b77b0c74447c26b6ad274d564d999c0450ba6e",
    "kodim15.png": "d36d884e29bce92adea11de456be4e9a5815e79c112d47453a34a6f6edc84e63",
    "kodim16.png": "a89c7268ccd4718ba424a99fc4643c572cf692ca6eae887185ceb4e9f11d2e54",
    "kodim17.png": "37afcc89fbdcb76d9518e04b2fc011027e2f4cd14b3b2f83cefd721641a47c5b",
    "kodim18.png": "5deb2d91e347cbdcc0d8a595daa8877de0772c9cdbce4956a2f45a0f97648a47",
    "kodim19.png": "8f12d577f9ca36f384f82dec11ed8a4e12a27bd5a32ef117b9bcaf4fe4d0606f",
    "kodim20.png": "3b46c71e3b92a563820ba32936be8330c586c41f938efd94be938386aae4328a",
    "kodim21.png": "ac958597c82073f6bb65129c68f72b651db5b9efd82e11547d07350214bc268b",
    "kodim22.png": "37782d92a1cfb36ff586047d5c0a2fa75e042fd0b58f90f866b4ab91349c4e03",
    "kodim23.png": "2ed596d7de74cc43d23add4c116763f49d7b5a78b21444fe84caece531ee933b",
    "kodim24.png": "ac96f39dacff2ec303ddb8a7eb72d59f77af2b491144926335938338ee63473d",
}
KODAK_FILES = list(KODAK_SHA256)
# the canonical copy; $CAEC_KODAK_URL (a template with {name}) points at a mirror instead
KODAK_URL = "http://r0k.us/graphics/kodak/kodak/{name}"
KODAK_URL_ENV = "CAEC_KODAK_URL"
DOWNLOAD_TIMEOUT_S = 10.0
DATA_ENV = "CAEC_DATA"


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    images: list[Path]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "caec"


def _kodak_in(folder: Path, names: list[str]) -> Path | None:
    """``folder`` itself or ``folder/kodak`` when it holds the Kodak images ``names``."""
    for cand in (folder / "kodak", folder):
        if all((cand / n).is_file() for n in names):
            return cand
    return None


def _sha256_ok(data: bytes, name: str) -> bool:
    return hashlib.sha256(data).hexdigest() == KODAK_SHA256[name]


def _cached_ok(path: Path) -> bool:
    """A cached image that is the canonical file (an older caec kept anything that began
    like a PNG, and a copy may have been damaged since)."""
    try:
        return _sha256_ok(path.read_bytes(), path.name)
    except OSError:
        return False


def _download_kodak(dest: Path, names: list[str]) -> None:
    """Fetch into ``dest`` those of ``names`` it does not hold intact, each checked against its
    SHA-256 before it is kept."""
    missing = [n for n in names if not _cached_ok(dest / n)]
    if not missing:
        return
    template = os.environ.get(KODAK_URL_ENV) or KODAK_URL
    if "{name}" not in template:
        raise CaecError(f"${KODAK_URL_ENV} must contain {{name}} where the file name goes, got {template!r}")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CaecError(f"cannot create the cache folder {dest}: {e.strerror or e}") from None
    for n, name in enumerate(missing, 1):
        url = template.replace("{name}", name)
        print(f"caec: downloading {url} ({n}/{len(missing)})", file=sys.stderr)
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                data = resp.read()
        except (TimeoutError, urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise CaecError(
                f"Kodak is not on this machine and {url} cannot be fetched ({reason}); "
                f"put kodim01.png..kodim24.png in {dest}, or pass --data-dir or set ${DATA_ENV}"
            ) from None
        if not _sha256_ok(data, name):
            raise CaecError(
                f"{url} is not the Kodak image {name} (SHA-256 {hashlib.sha256(data).hexdigest()[:16]}..., "
                f"expected {KODAK_SHA256[name][:16]}...); the download was not kept"
            )
        atomic_write(dest / name, data, force=True)


def resolve_dataset(
    spec: str, data_dir: Path | None = None, download: bool = True, limit: int | None = None
) -> Dataset:
    """``kodak`` (from --data-dir, $CAEC_DATA, the cache, else downloaded) or a folder of images.

    ``limit``: only the first that many images are used, so only they are looked for (and
    fetched: ``--limit 1`` downloads one file, not 24).
    """
    if limit is not None and limit < 1:
        raise CaecError(f"--limit must be at least 1, got {limit}")
    if spec.lower() == "kodak":
        names = KODAK_FILES[:limit]
        if data_dir is not None:
            found = _kodak_in(data_dir, names)
            if found is None:
                raise CaecError(
                    f"--data-dir {data_dir}: no complete Kodak set ({names[0]}..{names[-1]}) in it or in its kodak/"
                )
        else:
            env = os.environ.get(DATA_ENV)
            found = _kodak_in(Path(env), names) if env else None
            if found is None:
                cached = cache_dir() / "kodak"
                if download:
                    _download_kodak(cached, names)
                elif _kodak_in(cached, names) is None:
                    raise CaecError(f"Kodak not found in ${DATA_ENV} or {cached}")
                found = cached
        return Dataset("kodak", found, [found / n for n in names])
    folder = Path(spec)
    if not folder.is_dir():
        raise CaecError(f"--dataset {spec}: neither a known dataset (kodak) nor a folder")
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise CaecError(f"--dataset {spec}: no images in this folder ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return Dataset(folder.name or str(folder), folder, images[:limit])
