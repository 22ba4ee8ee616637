"""tools/quality_scale.py: its rows are the means of what `caec encode -q` and decode give."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from cae_codec import api, container
from cae_codec.evaluate.metrics import psnr_rgb
from cae_codec.stages import quant
from tests.conftest import smooth_image


@pytest.fixture(scope="module")
def quality_scale() -> ModuleType:
    from tools import quality_scale

    return quality_scale


def test_rows_are_the_means_over_the_images_of_each_quality(quality_scale, codec, rng) -> None:
    images = [smooth_image(rng, 64, 96, 3), smooth_image(rng, 80, 48, 3)]
    rows = quality_scale.measure(codec, images, [2, 7])
    assert [r.quality for r in rows] == [2, 7]
    for row in rows:
        files = [codec.encode(img, quality=row.quality) for img in images]
        bpps = [8 * len(f) / (img.shape[0] * img.shape[1]) for f, img in zip(files, images, strict=True)]
        psnrs = [psnr_rgb(img, codec.decode(container.parse(f))) for f, img in zip(files, images, strict=True)]
        assert row.bpp == pytest.approx(np.mean(bpps)) and row.psnr == pytest.approx(np.mean(psnrs))
        assert row.step == quant.step_for_quality(row.quality)
        assert row.members == tuple(sorted({api.info(f)["model"] for f in files}))
    assert rows[1].bpp > rows[0].bpp and rows[1].psnr > rows[0].psnr


def test_table_compares_each_row_with_the_one_above(quality_scale) -> None:
    row = quality_scale.QualityRow
    lines = quality_scale.table([row(3, 1.41, ("a",), 0.25, 30.0), row(4, 1.0, ("a", "b"), 0.5, 31.25)])
    assert lines[2].endswith("| 0.2500 |  | 30.00 |  |")
    assert lines[3] == "| 4 | 1 | a, b | 0.5000 | 2.00 | 31.25 | +1.25 |"


def test_main_prints_the_table_and_refuses_bad_input(quality_scale, tmp_path: Path, rng, capsys) -> None:
    Image.fromarray(smooth_image(rng, 48, 64, 3)).save(tmp_path / "a.png")
    assert quality_scale.main(["--dataset", str(tmp_path), "--qualities", "1,10"]) == 0
    out = capsys.readouterr().out
    assert "on 1 images from" in out and out.count("\n| 1 |") == 1 and out.count("\n| 10 |") == 1
    assert quality_scale.main(["--dataset", str(tmp_path / "missing")]) == 1
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        quality_scale.main(["--dataset", str(tmp_path), "--qualities", "0,4"])
