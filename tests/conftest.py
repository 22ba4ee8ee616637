"""Shared fixtures. Data from ../shared/data is read in place, never copied into the repo."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("CAEC_SHARED_DATA", REPO.parent / "shared" / "data"))
KODAK = SHARED_DATA / "kodak"
TRAIN = SHARED_DATA / "train"
ANCHORS = SHARED_DATA / "anchors" / "compressai_kodak"
# cae_codec.api's and cae_codec.zoo's names for them (not imported here: see pytest_configure)
MODEL_ENV = "CAEC_MODEL"
MODELS_ENV = "CAEC_MODELS"


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
def codec(tiny_models: Path):
    """The tests' default model (the tiny family, see pytest_configure) on CPU, loaded once
    per test session."""
    from cae_codec.api import get_codec

    return get_codec(device="cpu")


@pytest.fixture(scope="session")
def shipped_codec():
    """The shipped default model on CPU, loaded once per test session: only for the tests
    about that model itself (its quality, the files it wrote)."""
    from cae_codec import zoo
    from cae_codec.api import get_codec
    from cae_codec.registry import DEFAULT_CODEC

    return get_codec(zoo.default_model(DEFAULT_CODEC), device="cpu")


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


def torchrun_train(out: Path, *args: str) -> dict[str, Any]:
    """``caec train ARGS -o OUT`` under torchrun, two CPU processes (gloo) of one thread each,
    which must succeed; the metadata of the weights it wrote."""
    import subprocess

    from cae_codec.weights import load_model

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += ["-m", "cae_codec", "train", *args, "-o", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return load_model(out).metadata


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


# a few seconds of training on smooth images: enough that the latent carries the image (an
# untrained net's hardly survives quantization) and files decode close to their source; 12
# latent channels give the component counts and mosaics the codec's tests look at
TINY_TRAINING = ["--steps", "150", "--lr", "0.02", "--patch-size", "48", "--batch-size", "4"]
TINY_TRAINING += ["--hidden", "8", "--latent", "12", "--stages", "2", "--pca-samples", "2000", "--device", "cpu"]
TINY_TRAINING += ["--checkpoint-every", "1000", "--threads", "1"]  # one thread: much faster at this size


def train_tiny_model(path: Path, photos: Path, seed: int) -> None:
    """A small CAE trained for a few seconds on ``photos`` by `caec train`, PCA fitted."""
    from typer.testing import CliRunner

    from cae_codec.cli import app

    result = CliRunner().invoke(app, ["train", str(photos), "-o", str(path), *TINY_TRAINING, "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    for checkpoint in path.parent.glob("*.ckpt.safetensors"):
        checkpoint.unlink()


TINY_FAMILY = "tiny"
TINY_FAMILY_MODELS = ("tiny-fine", "tiny-coarse")
# the fine member serves qualities 6-10 (steps below 1.19), the coarse one 1-5 at half the step
TINY_FAMILY_MEMBERS = [{"model": "tiny-fine", "below_step": 1.19}, {"model": "tiny-coarse", "step_gain": 0.5}]


TINY_MODELS_KEY = pytest.StashKey[Path]()
_ENV_BEFORE = pytest.StashKey[dict[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    """Make the tiny family the default model of the library, the CLI and the tools for the
    whole session, and put its folder on $CAEC_MODELS (where a decoder finds the weights a
    version-2 file's hash names), so that no test runs the shipped weights unless it names
    them (the ``shipped_codec`` fixture, ``model=zoo.default_model(...)``).

    $CAEC_MODEL is read once, when cae_codec.api is imported, and copied into default
    arguments there and in the CLI: it must be set before any test module imports cae_codec,
    which this hook runs before (collection imports the test modules). The folder is filled
    by the session fixture ``tiny_models``; tests/test_test_models.py checks that it took."""
    if "cae_codec.api" in sys.modules:
        raise pytest.UsageError("cae_codec was imported before tests/conftest.py could set $CAEC_MODEL")
    folder = Path(tempfile.mkdtemp(prefix="caec-tiny-models-"))
    config.stash[TINY_MODELS_KEY] = folder
    config.stash[_ENV_BEFORE] = {k: os.environ.get(k) for k in (MODEL_ENV, MODELS_ENV)}
    os.environ[MODEL_ENV] = TINY_FAMILY  # a name, found on $CAEC_MODELS as a user's would be
    os.environ[MODELS_ENV] = str(folder)


def pytest_unconfigure(config: pytest.Config) -> None:
    for key, value in config.stash.get(_ENV_BEFORE, {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    folder = config.stash.get(TINY_MODELS_KEY, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def tiny_models(pytestconfig: pytest.Config) -> Path:
    """The tests' model folder (on $CAEC_MODELS; its family ``tiny`` is $CAEC_MODEL):
    tiny-fine and tiny-coarse (trained a few seconds, train_tiny_model, with their inference
    graphs), tiny-other (untrained, write_tiny_model, no graphs), and the family ``tiny`` of the
    first two. Made once for
    the session, before any test runs; tests only read it."""
    import json

    folder = pytestconfig.stash[TINY_MODELS_KEY]
    photos = folder.parent / f"{folder.name}-photos"
    photos.mkdir()
    gen = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(smooth_image(gen, 160, 160, 3)).save(photos / f"{i}.png")
    for seed, name in enumerate(TINY_FAMILY_MODELS, start=1):
        train_tiny_model(folder / f"{name}.safetensors", photos, seed)
    shutil.rmtree(photos)
    write_tiny_model(folder / "tiny-other.safetensors", 3)
    # the family's members get inference graphs, as the shipped models have: the tests' CPU coding
    # runs them, as a user's does (cae_codec/runtime.py); tiny-other has none and runs torch
    from cae_codec.nn.graphs import export_graphs

    for name in TINY_FAMILY_MODELS:
        export_graphs(folder / f"{name}.safetensors")
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
