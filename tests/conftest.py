"""Shared fixtures. Data from ../shared/data is read in place, never copied into the repo."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CAEC_SHARED_DATA", REPO.parent / "shared" / "data"))
KODAK = SHARED_DATA / "kodak"
TRAIN = SHARED_DATA / "train"
ANCHORS = SHARED_DATA / "anchors" / "compressai_kodak"


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    if not (KODAK / "kodim01.png").is_file():
        pytest.skip(f"Kodak images not found in {KODAK} (set CAEC_SHARED_DATA to the shared/data folder)")
    return KODAK


@pytest.fixture(scope="session")
def train_dir() -> Path:
    if not TRAIN.is_dir() or not any(TRAIN.iterdir()):
        pytest.skip(f"training images not found in {TRAIN}")
    return TRAIN


@pytest.fixture(scope="session")
def anchors_dir() -> Path:
    """CompressAI's published Kodak curves (JSON), as copied under shared/data/anchors."""
    if not (ANCHORS / "jpeg2000.json").is_file():
        pytest.skip(f"CompressAI anchor curves not found in {ANCHORS} (set CAEC_SHARED_DATA to the shared/data folder)")
    return ANCHORS


@pytest.fixture(scope="session")
def codec():
    """The shipped model (or $CAEC_MODEL) on CPU, loaded once per test session."""
    from cae_codec.api import get_codec

    return get_codec(device="cpu")


def default_weights() -> Path:
    """The weights file behind the default model; for a family, the member that serves the
    default --quality (the model named in files encoded with the defaults)."""
    from cae_codec import api, zoo
    from cae_codec.cae.family import read_family
    from cae_codec.stages import quant

    found = zoo.resolve(api.DEFAULT_MODEL)
    if found.kind == "model":
        return found.path
    family = read_family(found.path)
    return zoo.member_path(family, family.member_for(quant.step_for_quality(quant.QUALITY_DEFAULT)).model)


def error_line(result) -> str:  # type: ignore[no-untyped-def]
    """The single `caec: error:` line of a failed CLI run (and no traceback anywhere)."""
    assert "Traceback" not in result.output, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("caec: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def as_v1(data: bytes, model: str | None = None) -> bytes:
    """The version-2 CAE file ``data`` as caec 0.1 wrote its files (container version 1,
    tools.fuzz.as_v1: the model named, its full weights hash; the weights found as a decoder
    finds them). ``model`` writes another name in the header (the hash stays), e.g. a retired
    model's."""
    import dataclasses

    from cae_codec import container
    from tools.fuzz import as_v1 as convert

    old = convert(data)
    if model is None:
        return old
    box = container.unpack(old)
    return container.pack(dataclasses.replace(box.header, model=model), box.chunks.items())


def maker_of(data: bytes, folder: Path) -> str:
    """The model in ``folder`` whose weights made the version-2 file ``data``: the one whose
    weights hash begins with the 8 bytes in the file's header. What a version-1 header
    named, found without the zoo."""
    from cae_codec import container
    from cae_codec.modelfiles import read_model_info

    prefix = container.parse(data).weights_hash
    makers = [
        path.name.removesuffix(".safetensors")
        for path in sorted(folder.glob("*.safetensors"))
        if not path.name.endswith(".ckpt.safetensors")
        and (read_model_info(path).weights_hash or b"").startswith(prefix)
    ]
    assert len(makers) == 1, f"weights {prefix.hex()} in {folder}: {makers}"
    return makers[0]


def rewrite_v2(
    data: bytes,
    chunks: list[tuple[bytes, bytes]] | None = None,
    params: dict[str, object] | None = None,
    **header: object,
) -> bytes:
    """The version-2 CAE file ``data`` written again, CRCs valid, with the ``header`` fields
    (container.v2.HeaderV2's) and ``params`` (cae.payload.CaeParams's) changed, and
    ``chunks`` (all but PARM, which stays first) in place of its own."""
    import dataclasses

    from cae_codec import container
    from cae_codec.cae import payload
    from cae_codec.container import v2

    old = v2.unpack(data)
    p = dataclasses.replace(payload.params(container.parse(data)), **(params or {}))
    rest = [(t, c) for t, c in old.chunks if t != v2.PARAMS] if chunks is None else chunks
    return v2.pack(dataclasses.replace(old.header, **header), [(v2.PARAMS, p.pack()), *rest])


def write_tiny_model(path: Path, seed: int) -> bytes:
    """A small untrained CAE saved as a model: cheap to load and to run, a real weights file.
    Returns its weights hash."""
    import torch

    from cae_codec.cae.network import CAE, CAEConfig
    from cae_codec.cae.train import ARCHITECTURE
    from cae_codec.weights import save_model

    torch.manual_seed(seed)
    net = CAE(CAEConfig(hidden=4, latent=3, stages=2)).eval()
    return save_model(path, net, ARCHITECTURE, torch.zeros(3), torch.eye(3), {"note": "a test fixture"})


TINY_FAMILY = "tiny"
# the fine member serves qualities 6-10 (steps below 1.19), the coarse one 1-5 at half the step
TINY_FAMILY_MEMBERS = [{"model": "tiny-fine", "below_step": 1.19}, {"model": "tiny-coarse", "step_gain": 0.5}]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder made by the tests: tiny-fine, tiny-coarse and tiny-other, and the family
    ``tiny`` of the first two. Shared by the session: tests only read it."""
    import json

    folder = tmp_path_factory.mktemp("tiny-models")
    for seed, name in enumerate(("tiny-fine", "tiny-coarse", "tiny-other"), start=1):
        write_tiny_model(folder / f"{name}.safetensors", seed)
    family = {"format": "caec-model-family", "version": 1, "members": TINY_FAMILY_MEMBERS}
    (folder / f"{TINY_FAMILY}.family.json").write_text(json.dumps(family))
    return folder


@pytest.fixture
def tiny_zoo(tiny_models: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny models on $CAEC_MODELS: their names resolve."""
    monkeypatch.setenv("CAEC_MODELS", str(tiny_models))
    return tiny_models


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def smooth_image(rng: np.random.Generator, h: int, w: int, c: int) -> np.ndarray:
    """A photo-like test image: smooth gradients plus mild noise (pure noise is not what codecs are for)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    chans = []
    for k in range(c):
        base = 128 + 90 * np.sin(xx / (9.0 + 4 * k) + k) * np.cos(yy / (13.0 + 3 * k))
        chans.append(base + rng.normal(0, 4, (h, w)))
    return np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)
