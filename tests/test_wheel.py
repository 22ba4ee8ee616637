"""A built wheel carries the shipped models: installed into a fresh virtual environment, run
from a folder outside the checkout, `caec` encodes and decodes offline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cae_codec import zoo
from tests.conftest import REPO, smooth_image

pytestmark = pytest.mark.slow


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def test_an_installed_wheel_encodes_and_decodes_offline(tmp_path: Path, rng) -> None:
    # nothing from the checkout may leak in: no PYTHONPATH, no user model folders
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CAEC_MODELS", "CAEC_MODEL")}
    env["PIP_NO_INDEX"] = "1"  # offline: a dependency pip would fetch fails the test instead
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    # built from a copy: a build in the checkout writes build/ and *.egg-info there
    src = tmp_path / "src"
    shutil.copytree(REPO / "cae_codec", src / "cae_codec", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels, src], elsewhere, env)
    [wheel] = wheels.glob("cae_codec-*.whl")
    shipped = [*(m.file for m in zoo.catalogue().models.values()), *(f.file for f in zoo.catalogue().families.values())]
    shipped += [path.name for path in zoo.ZOO_DIR.glob("*.onnx")]  # the inference graphs (cae_codec/runtime.py)
    assert any(name.endswith(".onnx") for name in shipped)
    assert {f"cae_codec/zoo/{name}" for name in [*shipped, "catalogue.json"]} <= set(zipfile.ZipFile(wheel).namelist())

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], elsewhere, env)
    python = venv / "bin" / "python"
    _run([*pip, "--python", python, "install", "-q", "--no-deps", wheel], elsewhere, env)
    # the dependencies (torch above all: no fresh download offline) come from this environment's
    # site-packages through a plain path entry, whose own .pth files (the editable install of the
    # checkout among them) are not run, so cae_codec can only come from the wheel
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], elsewhere, env)
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    Path(purelib.strip(), "test-deps.pth").write_text("".join(f"{d}\n" for d in deps))
    where = _run([python, "-c", "import cae_codec; print(cae_codec.__file__)"], elsewhere, env)
    assert Path(where.strip()).is_relative_to(venv), where

    img = smooth_image(rng, 40, 56, 3)
    Image.fromarray(img).save(elsewhere / "p.png")
    caec = venv / "bin" / "caec"
    _run([caec, "encode", "p.png", "-o", "p.cae", "--quiet"], elsewhere, env)
    assert "cae-gdn-v3-" in _run([caec, "info", "p.cae"], elsewhere, env)
    _run([caec, "decode", "p.cae", "-o", "q.png", "--quiet"], elsewhere, env)
    out = np.asarray(Image.open(elsewhere / "q.png"))
    assert out.shape == img.shape and np.abs(out.astype(int) - img).mean() < 12
