"""Model families: several complete models that share one --quality scale, one per rate band.

A model trained for a narrow band of quantization steps beats one trained for the whole
range inside its band (docs/design.md). A family lists such members, each with the band of
*nominal* steps it serves (what --quality and the --bpp search produce) and a step gain:
the member quantizes with ``nominal * gain``. Members learn their own latent scale, so the
same step gives different rates in two members; the gain lines their rates up at the band
edge, which keeps the rate continuous (and --bpp bisection sound) across members.

Nothing of the family reaches the file: the header names the member and records the step
the member really used, so a file decodes with that member alone, as any other file.

A family is a small JSON file, ``NAME.family.json`` (the shipped one in cae_codec/zoo, a user's
in a folder named by $CAEC_MODELS; cae_codec.zoo resolves names and members)::

    {"format": "caec-model-family", "version": 1,
     "members": [{"model": "cae-gdn-v3-high", "below_step": 1.19},
                 {"model": "cae-gdn-v3-low", "step_gain": 0.56}]}

Members are listed from fine to coarse steps; each but the last says below which nominal
step it serves, ``step_gain`` defaults to 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cae_codec.errors import ModelError
from cae_codec.stages import quant

FAMILY_FORMAT = "caec-model-family"
FAMILY_VERSION = 1
FAMILY_SUFFIX = ".family.json"
MAX_MEMBERS = 8
# a family file is a few hundred bytes; reading stops past this (a path to /dev/zero, say)
MAX_FAMILY_BYTES = 1 << 16
# container.Header.validate refuses a step at or above this: a gain must keep every member's
# step below it, or the family would fail when writing a file instead of when it is read
HEADER_STEP_LIMIT = 1e6


@dataclass(frozen=True)
class FamilyMember:
    model: str
    below_step: float | None  # nominal steps below this go to this member; None: all the rest
    step_gain: float = 1.0


@dataclass(frozen=True)
class ModelFamily:
    name: str
    members: tuple[FamilyMember, ...]
    folder: Path  # where the family file lies: its members are looked for there first

    def member_for(self, step: float) -> FamilyMember:
        """The member that serves the nominal quantization ``step``."""
        for m in self.members:
            if m.below_step is None or step < m.below_step:
                return m
        raise AssertionError("the last member serves every step")  # read_family guarantees it


def _positive(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number, got {value!r}")
    return float(value)


def _step_gain(value: object, i: int, model: str) -> float:
    """A member's gain, such that every nominal step of quant's range, so scaled, is a step a
    file can record (the header stores it as float32, positive and below HEADER_STEP_LIMIT)."""
    gain = _positive(value, f"member {i} ({model!r}) step_gain")
    lo, hi = quant.STEP_MIN * gain, quant.STEP_MAX * gain
    # in float64 first: a float32 cast of a huge step would overflow (and warn) before comparing
    if not (hi < HEADER_STEP_LIMIT and np.float32(hi) < HEADER_STEP_LIMIT and np.float32(lo) > 0):
        raise ValueError(
            f"member {i} ({model!r}) step_gain {value!r} makes steps of {quant.STEP_MIN:g}..{quant.STEP_MAX:g} "
            f"into {lo:.3g}..{hi:.3g}, outside what a file records (above 0, below {HEADER_STEP_LIMIT:g})"
        )
    return gain


def read_family(path: Path) -> ModelFamily:
    """Parse and check a family file; any defect is one ModelError line."""
    try:
        with path.open("rb") as f:
            raw_bytes = f.read(MAX_FAMILY_BYTES + 1)
    except OSError as e:
        raise ModelError(f"cannot read model family {path}: {e.strerror}") from None
    if len(raw_bytes) > MAX_FAMILY_BYTES:
        raise ModelError(f"model family {path} is not a family file: larger than {MAX_FAMILY_BYTES} bytes")
    try:
        doc = json.loads(raw_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"model family {path} is not JSON: {e}") from None
    except RecursionError:  # arrays or objects nested deeper than the parser's recursion limit
        raise ModelError(f"model family {path} is malformed: nested too deeply") from None
    try:
        if not isinstance(doc, dict) or doc.get("format") != FAMILY_FORMAT:
            raise ValueError(f"format is not {FAMILY_FORMAT!r}")
        if doc.get("version") != FAMILY_VERSION:
            raise ValueError(f"version {doc.get('version')!r} is not {FAMILY_VERSION}")
        raw = doc.get("members")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_MEMBERS:
            raise ValueError(f"members must be a list of 1..{MAX_MEMBERS}")
        members: list[FamilyMember] = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or not isinstance(m.get("model"), str) or not m["model"]:
                raise ValueError(f"member {i} has no model name")
            last = i == len(raw) - 1
            if last != ("below_step" not in m):
                raise ValueError("every member but the last needs below_step, the last none")
            below = None if last else _positive(m["below_step"], f"member {i} below_step")
            if below is not None and members and members[-1].below_step is not None and below <= members[-1].below_step:
                raise ValueError("below_step must increase from member to member")
            if any(prev.model == m["model"] for prev in members):
                raise ValueError(f"member {m['model']!r} is listed twice")
            members.append(FamilyMember(m["model"], below, _step_gain(m.get("step_gain", 1.0), i, m["model"])))
    except ValueError as e:
        raise ModelError(f"model family {path} is malformed: {e}") from None
    return ModelFamily(path.name.removesuffix(FAMILY_SUFFIX), tuple(members), path.parent)
