"""The CPU inference runtime (cae_codec/runtime.py) and its graphs (cae_codec/nn/graphs.py):
a graph is a function of its weights, runs what torch runs, and a CPU encode or decode of the
shipped model imports neither torch nor anything else heavy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cae_codec import container, runtime, zoo
from cae_codec.cae import payload
from cae_codec.cae.codec import Analysis, CaePcaJ2kCodec, ModelFacts
from cae_codec.cae.config import DENSITY_NAMES
from cae_codec.errors import ModelError
from cae_codec.modelfiles import read_checked
from cae_codec.nn.density import DENSITIES
from cae_codec.nn.graphs import export_graphs
from cae_codec.weights import load_model, tensors_hash
from tests.conftest import REPO, smooth_image
from tools import export_graphs as export_tool

HEAVY = ("torch", "matplotlib", "scipy", "skimage")


@pytest.fixture(scope="module")
def graphed(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of tiny-fine (a banded-free, two-stage CAE) with its graphs exported beside it."""
    folder = tmp_path_factory.mktemp("graphed")
    weights = folder / "tiny-fine.safetensors"
    shutil.copy(tiny_models / "tiny-fine.safetensors", weights)
    export_graphs(weights)
    return weights


def test_the_torch_free_hash_is_the_weights_hash(graphed: Path) -> None:
    for path in (graphed, zoo.catalogue().models["cae-gdn-v3-low"].path, zoo.catalogue().models["mnist-dae-30"].path):
        checked = read_checked(path, ("pca.mean",) if "cae" in path.name else ())
        assert checked.weights_hash == load_model(path).weights_hash
    from safetensors.torch import load_file

    assert read_checked(graphed).weights_hash == tensors_hash(load_file(str(graphed)))


def test_a_corrupt_tensor_is_refused_without_torch(graphed: Path, tmp_path: Path) -> None:
    raw = bytearray(graphed.read_bytes())
    raw[-1] ^= 0x40  # the last byte of the last tensor; the header, and its recorded hash, intact
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="corrupt"):
        read_checked(bad)


def test_model_facts_are_read_once_and_again_when_the_file_changes(graphed: Path, tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    shutil.copy(graphed, weights)
    facts = ModelFacts.of_file(weights)
    assert ModelFacts.of_file(weights) is facts and not facts.pca_basis.flags.writeable
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0x40  # rewritten in place, the same size: a new mtime makes it a new key
    weights.write_bytes(bytes(raw))
    later = weights.stat().st_mtime_ns + 10**9
    os.utime(weights, ns=(later, later))
    with pytest.raises(ModelError, match="corrupt"):
        ModelFacts.of_file(weights)


def test_densities_listed_without_torch_are_the_networks() -> None:
    assert set(DENSITY_NAMES) == set(DENSITIES)


def test_a_graph_is_a_function_of_its_weights(graphed: Path) -> None:
    again = export_graphs(graphed, write=False)
    assert again and all(path.read_bytes() == data for path, data in again.items())
    for path, data in again.items():
        # the weights stay in the weights file: a graph is its structure (tiny's weights are 17 kB)
        assert len(data) < graphed.stat().st_size
        assert path.name.startswith("tiny-fine.") and path.suffix == ".onnx"


def test_the_shipped_graphs_are_their_weights_export(capsys: pytest.CaptureFixture[str]) -> None:
    assert export_tool.main(["--check"]) == 0
    checked = capsys.readouterr().out
    for name in ("cae-gdn-v3-high", "cae-gdn-v3-low"):
        for part in ("encoder", "decoder", "decoder-1"):
            assert f"{name}.{part}.onnx" in checked


def test_graphs_compute_what_torch_computes(graphed: Path, rng: np.random.Generator) -> None:
    model = load_model(graphed)
    net = model.network
    x = rng.random((3, 3, 128, 128), dtype=np.float32)
    y = rng.standard_normal((3, 12, 32, 32)).astype(np.float32)
    encoder = runtime.load_graph(graphed, "encoder", model.weights_hash)
    decoder = runtime.load_graph(graphed, "decoder", model.weights_hash)
    assert encoder is not None and decoder is not None
    with torch.inference_mode():
        want_y = net.encode(torch.from_numpy(x)).numpy()  # type: ignore[operator]
        want_x = net.decode(torch.from_numpy(y)).numpy()  # type: ignore[operator]
    np.testing.assert_allclose(encoder(x), want_y, atol=1e-4)
    np.testing.assert_allclose(decoder(y), want_x, atol=1e-4)


def test_the_codec_runs_graphs_on_the_cpu_and_torch_elsewhere(graphed: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert CaePcaJ2kCodec(graphed, "cpu").backend == "onnx"
    assert CaePcaJ2kCodec(load_model(graphed), "cpu").backend == "torch"  # a network already in torch
    # any other device (a GPU; 'meta' stands in for one here) runs torch, graphs or not
    assert CaePcaJ2kCodec(graphed, "meta").backend == "torch"
    monkeypatch.setenv(runtime.RUNTIME_ENV, "torch")
    assert CaePcaJ2kCodec(graphed, "cpu").backend == "torch"
    monkeypatch.setenv(runtime.RUNTIME_ENV, "onnx")
    with pytest.raises(Exception, match="CPU only"):
        runtime.use_graphs("cuda:0")
    monkeypatch.setenv(runtime.RUNTIME_ENV, "fast")
    with pytest.raises(Exception, match="is not one of auto, onnx, torch"):
        runtime.choice()


def test_weights_without_graphs_run_in_torch(tiny_models: Path) -> None:
    assert CaePcaJ2kCodec(tiny_models / "tiny-other.safetensors", "cpu").backend == "torch"
    assert CaePcaJ2kCodec(tiny_models / "tiny-coarse.safetensors", "cpu").backend == "onnx"  # conftest's graphs


def test_the_onnx_runtime_asked_for_needs_graphs(tiny_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(runtime.RUNTIME_ENV, "onnx")
    assert CaePcaJ2kCodec(tiny_models / "tiny-coarse.safetensors", "cpu").backend == "onnx"
    with pytest.raises(ModelError, match="no inference graphs"):
        CaePcaJ2kCodec(tiny_models / "tiny-other.safetensors", "cpu")


def test_both_runtimes_write_and_read_the_same_files(graphed: Path, rng: np.random.Generator) -> None:
    img = smooth_image(rng, 150, 200, 3)
    fast, slow = CaePcaJ2kCodec(graphed, "cpu"), CaePcaJ2kCodec(load_model(graphed), "cpu")
    for quality in (2, 4, 8):
        data = fast.encode(img, quality=quality)
        assert data == slow.encode(img, quality=quality)  # the same integers on this model and image
        a, b = fast.decode(container.parse(data)), slow.decode(container.parse(data))
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    grey = smooth_image(rng, 40, 30, 1)
    data = fast.encode(grey, quality=4)
    assert np.abs(fast.decode(container.parse(data)).astype(int) - slow.decode(container.parse(data))).max() <= 1


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_a_file_without_latent_and_alpha_decode_as_in_torch(graphed: Path, channels: int) -> None:
    fast, slow = CaePcaJ2kCodec(graphed, "cpu"), CaePcaJ2kCodec(load_model(graphed), "cpu")
    img = smooth_image(np.random.default_rng(channels), 40, 150, channels)
    with_latent = fast.encode(img, quality=5)
    assert with_latent == slow.encode(img, quality=5)
    s = fast.facts.stride
    empty = Analysis(np.zeros((12, 128 // s, 256 // s), np.float32), 40, 150, channels, (128, 256), None)
    if channels in (2, 4):
        empty.alpha_chunk = fast.analyse(img).alpha_chunk
    without = fast.pack(empty, 0.5)
    assert payload.params(container.parse(without)).components == 0  # K = 0: no latent chunk
    for data in (with_latent, without):
        a, b = fast.decode(container.parse(data)), slow.decode(container.parse(data))
        assert a.shape == (40, 150, channels) and np.abs(a.astype(int) - b).max() <= 1


def test_graphs_decode_the_same_pixels_on_any_thread_count(
    graphed: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = CaePcaJ2kCodec(graphed, "cpu").encode(smooth_image(rng, 300, 400, 3), quality=6)
    decoded = []
    for threads in (1, 2):
        monkeypatch.setattr(runtime, "_threads", threads)  # read when a graph is loaded
        decoded.append(CaePcaJ2kCodec(graphed, "cpu").decode(container.parse(data)))
    assert np.array_equal(*decoded)


def test_a_graph_of_other_weights_is_refused(graphed: Path, tiny_models: Path, tmp_path: Path) -> None:
    # weights retrained in place: the same name and layout, other numbers, the old graphs beside them
    retrained = tmp_path / "retrained" / graphed.name
    retrained.parent.mkdir()
    shutil.copy(tiny_models / "tiny-coarse.safetensors", retrained)
    for part in ("encoder", "decoder"):
        shutil.copy(runtime.graph_path(graphed, part), runtime.graph_path(retrained, part))
    with pytest.raises(ModelError, match=r"was exported from weights .* export it again"):
        CaePcaJ2kCodec(retrained, "cpu").encode(np.zeros((8, 8, 3), np.uint8))
    # graphs beside weights of another name point at a file that is not there
    renamed = tmp_path / "renamed" / "other.safetensors"
    renamed.parent.mkdir()
    shutil.copy(graphed, renamed)
    for part in ("encoder", "decoder"):
        shutil.copy(runtime.graph_path(graphed, part), runtime.graph_path(renamed, part))
    with pytest.raises(ModelError, match=r"cannot be loaded .* export it again"):
        CaePcaJ2kCodec(renamed, "cpu").encode(np.zeros((8, 8, 3), np.uint8))


def test_threads_follow_omp_num_threads_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    monkeypatch.setattr(runtime, "_threads", None)
    assert runtime.threads() == 3
    runtime.set_threads(2)
    assert runtime.threads() == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    runtime.set_threads(None)
    assert runtime.threads() == 0  # ONNX Runtime's own choice


def test_auto_device_needs_no_torch_without_a_cuda_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "cuda_possible", lambda: False)
    assert runtime.device_name("auto") == "cpu" and runtime.device_name("cpu") == "cpu"


# A fresh process runs the CLI as a user would and reports what it imported.
_PROBE = """
import atexit, json, sys
heavy = set(sys.argv[1].split(","))
atexit.register(lambda: print("IMPORTED " + json.dumps(sorted(set(sys.modules) & heavy)), file=sys.stderr))
from cae_codec.cli import main
sys.argv = ["caec", *sys.argv[2:]]
main()
"""


def _caec_imports(args: list[str], cwd: Path, also: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("CAEC_MODEL", "CAEC_MODELS", runtime.RUNTIME_ENV)}
    env["PYTHONPATH"] = str(REPO)
    env["OMP_NUM_THREADS"] = "1"
    heavy = ",".join((*HEAVY, "onnxruntime", *also))
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, heavy, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    line = next(x for x in proc.stderr.splitlines() if x.startswith("IMPORTED "))
    return proc.returncode, json.loads(line.removeprefix("IMPORTED "))


@pytest.mark.slow
def test_cpu_coding_with_the_shipped_model_imports_nothing_heavy(tmp_path: Path) -> None:
    Image.fromarray(smooth_image(np.random.default_rng(0), 64, 64, 3)).save(tmp_path / "a.png")
    (tmp_path / "empty.cae").write_bytes(b"")
    # nor pydantic (cli.kit coerces the options) nor rich (no bar where stderr is no terminal)
    light = ("pydantic", "rich")
    status, imported = _caec_imports(["encode", "a.png", "-o", "a.cae", "--device", "cpu"], tmp_path, light)
    assert status == 0 and imported == ["onnxruntime"]
    status, imported = _caec_imports(["decode", "a.cae", "-o", "b.png"], tmp_path, light)
    assert status == 0 and imported == ["onnxruntime"]
    # nor Typer's pydantic coercion nor rich (cli.kit), nor the modules of other commands
    cli_extras = ("pydantic", "rich", "cae_codec.web.cli", "cae_codec.evaluate.cli", "cae_codec.cli.models")
    status, imported = _caec_imports(["info", "a.cae"], tmp_path, cli_extras)
    assert status == 0 and imported == []
    # a bad input is refused before any model, or anything to run one, is loaded
    status, imported = _caec_imports(["decode", "empty.cae", "-o", "c.png"], tmp_path, ("pydantic",))
    assert status == 1 and imported == []
