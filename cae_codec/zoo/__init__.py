"""The model zoo: the catalogue of every model caec knows, and the one place a model name resolves.

The default weights ship inside the package (this folder, as package data), so an installed
wheel encodes and decodes offline. ``catalogue.json`` lists them with their weights hash and
a small stable number (what a compact container header can write instead of the name), the
shipped families with their members, the default model of each codec, and the retired
models: their weights no longer ship, and a file naming one fails saying so.

A user's models and families (``NAME.safetensors``, ``NAME.family.json``) lie in the folders
named by ``$CAEC_MODELS`` (os.pathsep-separated), searched in order before the shipped ones.

Nothing here imports torch (it takes seconds): resolving a name, listing the models and
finding weights by hash read JSON and safetensors headers only.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cae_codec.cae.family import FAMILY_SUFFIX, ModelFamily, read_family
from cae_codec.errors import CaecError, ModelError
from cae_codec.modelfiles import read_model_info

MODELS_ENV = "CAEC_MODELS"
WEIGHTS_SUFFIX = ".safetensors"
CHECKPOINT_SUFFIX = ".ckpt.safetensors"  # a training checkpoint beside its weights, not a model
ZOO_DIR = Path(__file__).resolve().parent
CATALOGUE_FILE = ZOO_DIR / "catalogue.json"
CATALOGUE_FORMAT = "caec-model-catalogue"
CATALOGUE_VERSION = 1
HASH_BYTES = 16
# 64 bits: a shorter prefix could match another model's weights by chance
MIN_HASH_PREFIX = 8

Kind = Literal["model", "family"]
_SUFFIX: dict[Kind, str] = {"model": WEIGHTS_SUFFIX, "family": FAMILY_SUFFIX}


@dataclass(frozen=True)
class ShippedModel:
    name: str
    codec: str
    number: int  # stable: a compact header may write it instead of the name
    file: str  # in ZOO_DIR
    weights_hash: bytes

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.file


@dataclass(frozen=True)
class ShippedFamily:
    name: str
    codec: str
    file: str  # in ZOO_DIR
    members: tuple[str, ...]

    @property
    def path(self) -> Path:
        return ZOO_DIR / self.file


@dataclass(frozen=True)
class RetiredModel:
    name: str
    codec: str
    weights_hash: bytes
    retired_in: str  # the first caec version without its weights
    last_shipped_in: str
    superseded_by: str
    # the number it shipped under, if it was retired after numbers existed: the number stays
    # reserved, so a version-2 file that names it says which model it needs
    number: int | None = None

    def error(self) -> ModelError:
        return ModelError(
            f"model {self.name!r} was retired in caec {self.retired_in} (superseded by {self.superseded_by}); "
            f"decode its files with caec {self.last_shipped_in}, or put its weights in a folder named by "
            f"${MODELS_ENV}"
        )


@dataclass(frozen=True)
class Catalogue:
    defaults: dict[str, str]  # codec id -> the model or family its encoder uses unless told
    models: dict[str, ShippedModel]
    families: dict[str, ShippedFamily]
    retired: dict[str, RetiredModel]


@functools.cache
def catalogue() -> Catalogue:
    """The shipped catalogue (read once; it changes only with the package)."""
    doc = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    if doc.get("format") != CATALOGUE_FORMAT or doc.get("version") != CATALOGUE_VERSION:
        raise ModelError(f"{CATALOGUE_FILE} is not a {CATALOGUE_FORMAT} of version {CATALOGUE_VERSION}")
    return Catalogue(
        defaults=dict(doc["defaults"]),
        models={
            m["name"]: ShippedModel(m["name"], m["codec"], m["number"], m["file"], bytes.fromhex(m["weights_hash"]))
            for m in doc["models"]
        },
        families={
            f["name"]: ShippedFamily(f["name"], f["codec"], f["file"], tuple(f["members"])) for f in doc["families"]
        },
        retired={
            r["name"]: RetiredModel(
                r["name"],
                r["codec"],
                bytes.fromhex(r["weights_hash"]),
                r["retired_in"],
                r["last_shipped_in"],
                r["superseded_by"],
                r.get("number"),
            )
            for r in doc["retired"]
        },
    )


def default_model(codec: str) -> str:
    try:
        return catalogue().defaults[codec]
    except KeyError:
        raise ModelError(f"the catalogue names no default model for codec {codec!r}") from None


def user_dirs() -> list[Path]:
    """The folders named by ``$CAEC_MODELS``, in order."""
    return [Path(d) for d in os.environ.get(MODELS_ENV, "").split(os.pathsep) if d]


@dataclass(frozen=True)
class Resolved:
    name: str
    kind: Kind
    path: Path


def _is_path(name_or_path: str | os.PathLike[str]) -> bool:
    # a Path object too may hold a bare name: typer gives `--init cae-gdn-v3-low` as one
    text = os.fspath(name_or_path)
    return text.endswith((WEIGHTS_SUFFIX, FAMILY_SUFFIX)) or os.sep in text or bool(os.altsep and os.altsep in text)


def _is_zoo(folder: Path) -> bool:
    try:
        return folder.resolve() == ZOO_DIR
    except OSError:
        return False


def _find(name: str, kinds: tuple[Kind, ...], first: tuple[Path, ...] = ()) -> Resolved | None:
    """``name`` in ``first``, the $CAEC_MODELS folders (a family before a model of the same
    name in one folder), then the catalogue."""
    for folder in dict.fromkeys([*first, *user_dirs()]):  # a family's folder may be in $CAEC_MODELS too
        for kind in kinds:
            candidate = folder / f"{name}{_SUFFIX[kind]}"
            if candidate.is_file():
                return Resolved(name, kind, candidate)
    cat = catalogue()
    if "family" in kinds and name in cat.families:
        return Resolved(name, "family", cat.families[name].path)
    if "model" in kinds and name in cat.models:
        return Resolved(name, "model", cat.models[name].path)
    return None


def _not_found(name: str, first: tuple[Path, ...] = ()) -> ModelError:
    retired = catalogue().retired.get(name)
    if retired is not None:
        return retired.error()
    # the folders alone leave a new user guessing how to point caec at a model elsewhere
    where = ", ".join([*map(str, dict.fromkeys([*first, *user_dirs()])), "the models shipped with caec"])
    return ModelError(
        f"model {name!r} not found in {where}; add the folder that holds {name}{WEIGHTS_SUFFIX} to ${MODELS_ENV} "
        f"({os.pathsep}-separated), or give its path with -m (model= in the Python API)"
    )


def resolve(name_or_path: str | os.PathLike[str], name_only: bool = False) -> Resolved:
    """What a ``--model`` / ``model=`` names: a path to a weights file or to a ``*.family.json``
    (text, or a Path, ending so or holding a path separator), else a name: a family
    or a model in the $CAEC_MODELS folders, then the shipped ones, then a weights file of that
    name in the working folder. A retired name fails saying so.

    ``name_only`` is for names read from a .cae file: a single model (a file names the member
    that wrote it), never taken as a path, so a file cannot make the decoder open something
    outside the model folders.
    """
    if not name_only and _is_path(name_or_path):
        path = Path(name_or_path)
        if path.name.endswith(FAMILY_SUFFIX):
            return Resolved(path.name.removesuffix(FAMILY_SUFFIX), "family", path)
        return Resolved(path.name.removesuffix(WEIGHTS_SUFFIX), "model", path)
    name = str(name_or_path)
    found = _find(name, ("model",) if name_only else ("family", "model"))
    if found is not None:
        return found
    if not name_only and Path(name).is_file():
        return Resolved(name, "model", Path(name))
    raise _not_found(name)


def resolve_model(name_or_path: str | os.PathLike[str], name_only: bool = False) -> Path:
    """The weights file of a single model, resolved as :func:`resolve` does."""
    found = resolve(name_or_path, name_only)
    if found.kind == "family":
        raise ModelError(f"{found.name!r} is a model family ({found.path}); name one of its members here")
    return found.path


def member_path(family: ModelFamily, member: str) -> Path:
    """The weights of a family's member: a shipped family's are the shipped models; another's
    are looked for beside the family file first, then as any model name."""
    cat = catalogue()
    if _is_zoo(family.folder):
        if member in cat.models:
            return cat.models[member].path
        first: tuple[Path, ...] = ()  # nothing outside the catalogue counts as shipped
    else:
        first = (family.folder,)
    found = _find(member, ("model",), first)
    if found is None:
        raise _not_found(member, first)
    return found.path


def member_by_hash(family: ModelFamily, prefix: bytes) -> str | None:
    """The family's member (in the family's order) whose recorded weights hash begins with
    ``prefix``, from the weights' headers alone (no torch); None when no member's does."""
    for m in family.members:
        recorded = read_model_info(member_path(family, m.model)).weights_hash
        if recorded is not None and recorded.startswith(prefix):
            return m.model
    return None


def resolve_number(number: int) -> Resolved:
    """The shipped model a compact header names by its catalogue number; a retired model's
    number resolves as its name does ($CAEC_MODELS, else one error line saying it was retired)."""
    for m in catalogue().models.values():
        if m.number == number:
            return Resolved(m.name, "model", m.path)
    for r in catalogue().retired.values():
        if r.number == number:
            return resolve(r.name, name_only=True)
    known = ", ".join(f"{m.number} ({m.name})" for m in catalogue().models.values())
    raise ModelError(f"no shipped model has number {number} (this caec ships {known})")


def find_by_hash(digest: bytes) -> Resolved:
    """The weights whose weights hash is ``digest`` (all 16 bytes, or a prefix of at least 8):
    a shipped model, else a model in the $CAEC_MODELS folders (their safetensors headers are
    read; weights that predate the recorded hash cannot match). A retired model's hash fails
    saying it was retired, a prefix that several weights share fails as ambiguous."""
    if not MIN_HASH_PREFIX <= len(digest) <= HASH_BYTES:
        raise ValueError(f"a weights hash or prefix has {MIN_HASH_PREFIX}..{HASH_BYTES} bytes, got {len(digest)}")
    cat = catalogue()
    found = [Resolved(m.name, "model", m.path) for m in cat.models.values() if m.weights_hash.startswith(digest)]
    hashes = {m.weights_hash for m in cat.models.values() if m.weights_hash.startswith(digest)}
    if not found:
        for folder in dict.fromkeys(user_dirs()):
            for path in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
                if path.name.endswith(CHECKPOINT_SUFFIX):
                    continue
                try:
                    recorded = read_model_info(path).weights_hash
                except CaecError:
                    continue  # a broken file is no match; `caec models` shows what is wrong with it
                if recorded is not None and recorded.startswith(digest):
                    found.append(Resolved(path.name.removesuffix(WEIGHTS_SUFFIX), "model", path))
                    hashes.add(recorded)
    if len(hashes) > 1:
        names = ", ".join(sorted({f.name for f in found}))
        raise ModelError(f"weights hash prefix {digest.hex()} is ambiguous: {names}")
    if found:
        return found[0]
    for r in cat.retired.values():
        if r.weights_hash.startswith(digest):
            raise r.error()
    where = ", ".join([*map(str, user_dirs()), "the models shipped with caec"])
    raise ModelError(
        f"no model with weights hash {digest.hex()} in {where}; add the folder that holds it to ${MODELS_ENV}"
    )


def _member_problem(family: ModelFamily) -> str | None:
    """Why a member of ``family`` cannot be used, for the first such member; None if all can.

    Members load lazily, so a missing one would otherwise show only when a quality it serves
    is asked for; reading each one's safetensors header is cheap (no torch).
    """
    for m in family.members:
        try:
            read_model_info(member_path(family, m.model))
        except CaecError as e:
            return f"member {m.model!r} cannot be used: {e}"
    return None


def _family_entry(name: str, path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "kind": "family", "path": str(path)}
    try:
        fam = read_family(path)
    except CaecError as e:
        entry["error"] = str(e)
        return entry
    entry["members"] = [{"model": m.model, "below_step": m.below_step, "step_gain": m.step_gain} for m in fam.members]
    problem = _member_problem(fam)
    if problem is not None:
        entry["error"] = problem
    return entry


def _model_entry(name: str, path: Path) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "kind": "model", "path": str(path)}
    try:
        mi = read_model_info(path)
    except CaecError as e:
        entry["error"] = str(e)
        return entry
    entry |= {"architecture": mi.architecture, "config": mi.config}
    entry["weights_hash"] = mi.weights_hash.hex() if mi.weights_hash else None
    return entry


def list_models(retired: bool = False) -> list[dict[str, Any]]:
    """The models and model families that names resolve to, without loading any.

    One entry per name, the one a lookup finds ($CAEC_MODELS folders in order, then the
    shipped ones); a file that cannot be read is listed with its ``error`` instead of being
    skipped. ``retired`` adds the retired models (kind ``retired``) that no folder provides.
    """
    entries: dict[str, dict[str, Any]] = {}
    for folder in dict.fromkeys(user_dirs()):
        for path in sorted(folder.glob(f"*{FAMILY_SUFFIX}")):
            name = path.name.removesuffix(FAMILY_SUFFIX)
            if name not in entries:
                entries[name] = _family_entry(name, path)
        for path in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
            name = path.name.removesuffix(WEIGHTS_SUFFIX)
            if name not in entries and not path.name.endswith(CHECKPOINT_SUFFIX):
                entries[name] = _model_entry(name, path)
    cat = catalogue()
    for fam in cat.families.values():
        if fam.name not in entries:
            entries[fam.name] = _family_entry(fam.name, fam.path) | {"codec": fam.codec}
    for m in cat.models.values():
        if m.name not in entries:
            entry = _model_entry(m.name, m.path) | {"codec": m.codec, "number": m.number}
            if "error" not in entry and entry["weights_hash"] != m.weights_hash.hex():
                entry["error"] = f"weights {m.path} are not the ones the catalogue lists ({m.weights_hash.hex()})"
            entries[m.name] = entry
    if retired:
        for r in cat.retired.values():
            entries.setdefault(
                r.name,
                {
                    "name": r.name,
                    "kind": "retired",
                    "codec": r.codec,
                    "weights_hash": r.weights_hash.hex(),
                    "retired_in": r.retired_in,
                    "superseded_by": r.superseded_by,
                }
                | ({"number": r.number} if r.number is not None else {}),
            )
    order = {"family": 0, "model": 1, "retired": 2}
    return sorted(entries.values(), key=lambda e: (order[e["kind"]], e["name"]))
