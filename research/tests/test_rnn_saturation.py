"""research/rnn_saturation.py: one table per model, a row per measure, a column per pass (needs no fixture:
`pytest --noconftest research/tests/test_rnn_saturation.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cae_codec.rnn.network import ARCHITECTURE, RecurrentCodec, RnnConfig
from cae_codec.weights import save_network
from research import rnn_saturation


def test_saturation_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(photos / "a.png")
    model = tmp_path / "tiny.safetensors"
    net = RecurrentCodec(RnnConfig(encoder=(4, 8, 8, 8), decoder=(8, 8, 8, 8, 8), bits=8, mode="scaled", passes=3))
    save_network(model, net, ARCHITECTURE, {})
    assert rnn_saturation.main([str(model), "--crops", "3", "--images", str(photos), "--whole", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "| tiny | 1 | 2 | 3 |" and len(lines) == 9
    assert all(line.count("|") == 5 for line in lines)
    gains = [float(v) for v in lines[6].strip("|").split("|")[1:]]
    assert lines[6].startswith("| mean gain |") and all(g >= 1 for g in gains)  # scaling only magnifies
    assert lines[7].startswith("| PSNR-RGB, whole images |") and lines[8].startswith("| PSNR-RGB, the same in 32x32")
    assert rnn_saturation.main([str(model), "--crops", "0", "--images", str(photos)]) == 1
    assert capsys.readouterr().err == "rnn_saturation: --crops must be at least 1\n"
