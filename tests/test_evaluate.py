"""caec compare / caec bdrate: metrics, rate search, codecs, curves, datasets and the commands."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_codec import registry
from cae_codec.api import DEFAULT_MODEL
from cae_codec.api import info as file_info
from cae_codec.cae.evaluation import CaecCodec
from cae_codec.cli import app
from cae_codec.errors import CaecError
from cae_codec.evaluate import datasets
from cae_codec.evaluate import runner as eval_runner
from cae_codec.evaluate.classic import CLASSIC_CODECS, ImageCodec, Jpeg2000, largest_within
from cae_codec.evaluate.curves import RDCurve
from cae_codec.evaluate.metrics import MS_SSIM_MIN_SIDE, as_rgb8, bits_per_pixel, ms_ssim_rgb, psnr_rgb
from cae_codec.evaluate.report import replace_marked
from cae_codec.evaluate.runner import CODEC_NAMES, Task, evaluate, unavailable_reason
from cae_codec.ratecontrol import (
    Encoded,
    Knob,
    MemoEncoder,
    SharedEncode,
    SharedWork,
    encode_seconds,
    search_rate,
)
from cae_codec.zoo import resolve_model
from tests.conftest import KODAK, smooth_image

# big enough for 5-scale MS-SSIM (smaller side > 160), small enough to be quick
CROP_H, CROP_W = 176, 224


def _photo(index: int) -> np.ndarray:
    """A crop of a Kodak image when the set is here, else a synthetic photo-like image."""
    path = KODAK / f"kodim{index:02d}.png"
    if path.is_file():
        arr = np.asarray(Image.open(path).convert("RGB"))
        return np.ascontiguousarray(arr[120 : 120 + CROP_H, 200 : 200 + CROP_W])
    return smooth_image(np.random.default_rng(index), CROP_H, CROP_W, 3)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return _photo(7)


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in (3, 23):
        Image.fromarray(_photo(i)).save(folder / f"kodim{i:02d}.png")
    return folder


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("caec: error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


# ---------------------------------------------------------------- metrics
def test_psnr_known_values(photo: np.ndarray) -> None:
    assert psnr_rgb(photo, photo) == math.inf
    off = photo.copy()
    off[photo < 255] += 1
    off[photo == 255] -= 1
    assert psnr_rgb(photo, off) == pytest.approx(10 * math.log10(255**2), abs=1e-9)  # MSE exactly 1


def test_ms_ssim_identical_noisy_and_too_small(photo: np.ndarray) -> None:
    assert ms_ssim_rgb(photo, photo) == pytest.approx(1.0, abs=1e-6)
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 12, photo.shape), 0, 255).astype(np.uint8)
    assert 0.5 < ms_ssim_rgb(photo, noisy) < 0.999
    small = photo[: MS_SSIM_MIN_SIDE - 1]
    assert math.isnan(ms_ssim_rgb(small, small))
    assert not math.isnan(ms_ssim_rgb(photo[:MS_SSIM_MIN_SIDE], photo[:MS_SSIM_MIN_SIDE]))


def test_rgb_view_of_grey_and_alpha() -> None:
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    rgb = as_rgb8(grey)
    assert rgb.shape == (3, 4, 3) and (rgb[:, :, 2] == grey).all()
    rgba = np.dstack([rgb, np.full((3, 4), 7, np.uint8)])
    assert (as_rgb8(rgba) == rgb).all()
    assert bits_per_pixel(100, 10, 20) == 4.0


# ---------------------------------------------------------------- rate search
def _sizes(table: dict[float, int]) -> MemoEncoder:
    return MemoEncoder(lambda k: b"x" * table[k])


def test_integer_search_lands_on_the_last_quality_that_fits() -> None:
    knob = Knob("q", 1, 100, integer=True)
    enc = MemoEncoder(lambda q: b"x" * int(10 * q))
    for budget in (10, 11, 333, 999, 1000, 5000):
        found = search_rate(enc, knob, budget)
        assert found.best is not None
        assert len(found.best.data) <= budget
        assert found.best.knob == min(100, budget // 10)
    assert search_rate(enc, knob, 9).best is None
    assert search_rate(enc, knob, 9).smallest_bytes == 10


def test_decreasing_log_knob_and_non_monotonic_sizes_never_exceed() -> None:
    # a step-like knob (more bits for smaller values) with a bump in its size curve
    def size(step: float) -> int:
        base = int(5000 / step)
        return base + (300 if 2.0 < step < 2.5 else 0)

    knob = Knob("step", 0.5, 64.0, rate_increases=False, log=True, steps=16)
    enc = MemoEncoder(lambda s: b"x" * size(s))
    for budget in (100, 2300, 2400, 2600, 9000, 20000):
        found = search_rate(enc, knob, budget)
        assert found.best is not None and len(found.best.data) <= budget
        assert len(found.best.data) >= 0.97 * min(budget, size(0.5))


def test_memo_encoder_encodes_each_setting_once() -> None:
    calls: list[float] = []

    def encode(k: float) -> bytes:
        calls.append(k)
        return b"x" * int(k)

    enc = MemoEncoder(encode)
    first = enc(5.0)
    assert isinstance(first, Encoded) and enc(5.0) is first and calls == [5.0]


def _other_codec(name: str) -> ImageCodec:
    """A classic codec, or another registered codec with its default model (the generic adapter);
    a registered codec without a default model yet has nothing to evaluate."""
    codec_id = eval_runner.learned_id(name)
    if codec_id is None:
        return CLASSIC_CODECS[name]()
    model = registry.get(codec_id).default_model
    try:
        resolve_model(model or "")
    except CaecError:
        pytest.skip(f"{codec_id} has no default model here ({model})")
    return eval_runner.make_codec(name, DEFAULT_MODEL, "cpu")


@pytest.mark.parametrize("name", CODEC_NAMES)
def test_every_codec_stays_within_the_target(name: str, photo: np.ndarray, codec) -> None:
    why = unavailable_reason(name)
    if why:
        pytest.skip(why)
    impl = CaecCodec(codec) if name == "caec" else _other_codec(name)
    enc = MemoEncoder(impl.prepare(photo))
    h, w = photo.shape[:2]
    reached = 0
    for target in (0.3, 0.8, 1.6):
        budget = math.floor(target * h * w / 8)
        found = search_rate(enc, impl.knob, budget)
        if found.best is None:
            assert found.smallest_bytes > budget
            continue
        reached += 1
        assert bits_per_pixel(len(found.best.data), h, w) <= target
        rec = impl.decode(found.best.data)
        assert rec.shape == photo.shape and rec.dtype == np.uint8
    assert reached >= 1
    assert {"codec", "version", "knob"} <= set(impl.describe())


def test_runner_points_carry_metrics_and_notes(photo: np.ndarray) -> None:
    points = evaluate(Task("p", photo, "jpeg", (0.001, 1.0), DEFAULT_MODEL, "cpu", keep=True))
    low, high = points
    assert not low.ok and "cannot reach" in low.note and math.isnan(low.bpp)
    assert high.ok and high.bpp <= 1.0 and 20 < high.psnr < 60 and 0 < high.ms_ssim < 1
    assert high.encoding_time > 0 and high.decoding_time > 0 and high.recon is not None
    assert high.summary()["bpp"] == high.bpp and low.summary()["psnr"] is None


def test_encode_seconds_counts_each_needed_piece_of_shared_work_once() -> None:
    tried = [Encoded(1.0, b"", 0.25, frozenset({"a"})), Encoded(2.0, b"", 0.5, frozenset({"a", "b"}))]
    assert encode_seconds(tried, {"a": 1.0, "b": 2.0, "unused": 4.0}) == 3.75
    assert encode_seconds(tried[:1], {"a": 1.0, "b": 2.0}) == 1.25


def test_search_reports_each_setting_it_encoded_and_the_shared_work_each_needed() -> None:
    shared = SharedWork()
    runs: list[str] = []

    def encode(q: float) -> bytes:
        # two pieces of shared work, like a family of two members split at q = 50
        half = "low" if q < 50 else "high"
        shared.get(half, lambda: runs.append(half))
        return b"x" * int(10 * q)

    knob = Knob("q", 1, 100, integer=True)
    memo = MemoEncoder(SharedEncode(encode, shared))
    first = search_rate(memo, knob, 300)
    second = search_rate(memo, knob, 700)
    assert sorted(runs) == ["high", "low"], "each piece runs once, whichever target needs it first"
    for found in (first, second):
        knobs = [e.knob for e in found.tried]
        assert len(set(knobs)) == len(knobs) and found.best in found.tried
        assert all(e.needs == {"low" if e.knob < 50 else "high"} for e in found.tried)
    assert set(shared.seconds) == {"low", "high"}


ANALYSIS_S = 0.15  # the fake codec's per-image analysis


class _SlowAnalysisCodec(ImageCodec):
    """Files that grow with the knob, behind a per-image analysis that sleeps ANALYSIS_S and runs
    on the first encode that needs it, as a model family's member does inside the rate search."""

    name, label, suffix = "slow-analysis", "slow analysis", ".bin"

    def __init__(self, charge_whole_search: bool) -> None:
        self.knob = Knob("k", 1, 100, integer=True, charge_whole_search=charge_whole_search)  # type: ignore[misc]
        self.image: np.ndarray | None = None

    def describe(self) -> dict[str, Any]:
        return {"codec": self.label, "version": "test", "knob": self.knob.name}

    def prepare(self, img: np.ndarray) -> Callable[[float], bytes]:
        shared = SharedWork()

        def encode(k: float) -> bytes:
            self.image = shared.get("analysis", lambda: (time.sleep(ANALYSIS_S), img)[1])
            return b"x" * int(10 * k)

        return SharedEncode(encode, shared)

    def encode(self, img: np.ndarray, knob: float) -> bytes:
        return self.prepare(img)(knob)

    def decode(self, data: bytes) -> np.ndarray:
        assert self.image is not None
        return self.image


@pytest.mark.parametrize("charge_whole_search", [True, False])
def test_encode_time_includes_the_analysis_the_rate_search_ran_lazily(
    photo: np.ndarray, monkeypatch: pytest.MonkeyPatch, charge_whole_search: bool
) -> None:
    fake = _SlowAnalysisCodec(charge_whole_search)
    monkeypatch.setattr(eval_runner, "make_codec", lambda *key: fake)
    monkeypatch.setattr(eval_runner, "_codecs", {})
    h, w = photo.shape[:2]
    # budgets of about 300 and 700 bytes: inside the knob's range of 10..1000 bytes
    targets = (300 * 8 / (h * w), 700 * 8 / (h * w))
    points = evaluate(Task("p", photo, fake.name, targets, DEFAULT_MODEL, "cpu"))
    assert all(p.ok for p in points), [p.note for p in points]
    # the analysis ran once, during the first target's search, and the chosen settings came
    # later: each point still counts it, as encoding that image at that target alone would
    assert all(p.encoding_time >= ANALYSIS_S for p in points), [p.encoding_time for p in points]


def test_caec_analysis_is_shared_work_of_each_member_the_search_packs_with(photo: np.ndarray, codec) -> None:
    memo = MemoEncoder(CaecCodec(codec).prepare(photo))
    h, w = photo.shape[:2]
    found = search_rate(memo, CaecCodec.knob, math.floor(0.5 * h * w / 8))
    assert found.best is not None and CaecCodec.knob.charge_whole_search
    for e in found.tried:
        assert e.needs == {file_info(e.data)["model"]}, "a try needs the analysis of the member that packed it"
    assert set(memo.shared.seconds) == {file_info(e.data)["model"] for e in found.tried}


# ---------------------------------------------------------------- curves (CompressAI JSON)
def test_curve_json_round_trip() -> None:
    curve = RDCurve(
        name="caec",
        description="test",
        bpp=[0.25, 0.5],
        psnr=[28.0, 31.5],
        ms_ssim=[0.91, math.nan],
        encoding_time=[0.1, 0.2],
        decoding_time=[0.05, 0.06],
        meta={"target_bpp": [0.25, 0.5]},
    )
    obj = json.loads(curve.dumps())
    assert set(obj) == {"name", "description", "results", "caec"}
    assert set(obj["results"]) == {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}
    assert obj["results"]["ms-ssim-rgb"][1] is None
    back = RDCurve.from_json(obj)
    assert back.bpp == curve.bpp and back.psnr == curve.psnr and back.meta == curve.meta
    assert back.ms_ssim[0] == 0.91 and math.isnan(back.ms_ssim[1])


def test_reading_published_compressai_curves(anchors_dir: Path) -> None:
    j2k = RDCurve.load(anchors_dir / "jpeg2000.json")
    assert j2k.name == "JPEG2000" and len(j2k.bpp) == len(j2k.psnr) == len(j2k.ms_ssim) > 5
    assert j2k.has_ms_ssim and all(0 < b < 5 for b in j2k.bpp)
    paper = RDCurve.load(anchors_dir / "paper-bmshj2018-factorized.json")
    assert not paper.has_ms_ssim and len(paper.bpp) == len(paper.psnr)


@pytest.mark.parametrize(
    ("text", "needle"),
    [("{", "not valid JSON"), ('{"name": "x"}', "no 'results'"), ('{"results": {"bpp": [1]}}', "psnr-rgb")],
)
def test_bad_curve_files_are_one_error(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "c.json"
    p.write_text(text)
    with pytest.raises(CaecError, match=needle):
        RDCurve.load(p)


# ---------------------------------------------------------------- datasets
def test_folder_dataset_and_kodak_lookup(photo_dir: Path, kodak_dir: Path, monkeypatch, tmp_path: Path) -> None:
    ds = datasets.resolve_dataset(str(photo_dir))
    assert [p.name for p in ds.images] == ["kodim03.png", "kodim23.png"]
    assert len(datasets.resolve_dataset("kodak", kodak_dir).images) == 24
    assert datasets.resolve_dataset("kodak", kodak_dir.parent).root == kodak_dir
    monkeypatch.setenv("CAEC_DATA", str(kodak_dir.parent))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert datasets.resolve_dataset("KODAK").root == kodak_dir
    with pytest.raises(CaecError, match="no complete Kodak"):
        datasets.resolve_dataset("kodak", photo_dir)
    with pytest.raises(CaecError, match="neither a known dataset"):
        datasets.resolve_dataset(str(tmp_path / "nowhere"))


def test_kodak_download_fails_in_one_line_offline(monkeypatch, tmp_path: Path, runner: CliRunner) -> None:
    monkeypatch.delenv("CAEC_DATA", raising=False)
    monkeypatch.delenv(datasets.KODAK_URL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # a closed local port: refused at once, and nothing leaves the machine
    monkeypatch.setattr(datasets, "KODAK_URL", "http://127.0.0.1:9/{name}")
    with pytest.raises(CaecError, match="cannot be fetched"):
        datasets.resolve_dataset("kodak")
    r = runner.invoke(app, ["bdrate", "--dataset", "kodak", "--codecs", "jpeg", "--anchor", "jpeg"])
    assert r.exit_code == 1
    assert "cannot be fetched" in one_error_line(r.output)


def test_kodak_download_fills_the_cache(monkeypatch, tmp_path: Path, kodak_dir: Path) -> None:
    monkeypatch.delenv("CAEC_DATA", raising=False)
    monkeypatch.delenv(datasets.KODAK_URL_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    fetched: list[str] = []

    class FakeResponse:
        def __init__(self, url: str) -> None:
            fetched.append(url)
            self.url = url

        def __enter__(self) -> FakeResponse:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def read(self) -> bytes:  # the canonical bytes: each download is checked against its SHA-256
            return (kodak_dir / self.url.rsplit("/", 1)[1]).read_bytes()

    monkeypatch.setattr(datasets.urllib.request, "urlopen", lambda url, timeout: FakeResponse(url))
    ds = datasets.resolve_dataset("kodak")
    assert ds.root == tmp_path / "cache" / "caec" / "kodak"
    assert len(fetched) == 24 and fetched[0] == datasets.KODAK_URL.format(name="kodim01.png")
    assert all(p.read_bytes() == (kodak_dir / p.name).read_bytes() for p in ds.images)
    datasets.resolve_dataset("kodak")
    assert len(fetched) == 24  # the second time, from the cache


# ---------------------------------------------------------------- commands
def test_compare_json_and_out(runner: CliRunner, photo_dir: Path, tmp_path: Path) -> None:
    images = sorted(str(p) for p in photo_dir.iterdir())
    out = tmp_path / "cmp"
    args = ["compare", *images, "--bpp", "1.0,0.4", "--codecs", "caec,jpeg,jpeg2000", "--out", str(out), "-j", "1"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["targets_bpp"] == [0.4, 1.0]
    assert set(report["codecs"]) == {"caec", "jpeg", "jpeg2000"}
    assert report["codecs"]["jpeg2000"]["version"].startswith("openjpeg")
    assert len(report["points"]) == 2 * 2 * 3
    for p in report["points"]:
        if p["bpp"] is not None:
            assert p["bpp"] <= p["target_bpp"]
        else:
            assert "cannot reach" in p["note"]
    assert sum(p["bpp"] is not None for p in report["points"] if p["codec"] != "caec") == 8
    for stem in ("kodim03", "kodim23"):
        assert (out / stem / "sheet_0.4bpp.png").is_file()
        assert Image.open(out / stem / "jpeg_1bpp.png").size == (CROP_W, CROP_H)
        assert (out / stem / "jpeg2000_1bpp.j2k").read_bytes()[:2] == b"\xff\x4f"
    assert (out / "compare.json").is_file()
    # the same outputs again: refused before any work, unless --force
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "--force" in one_error_line(r.output)
    r = runner.invoke(app, [*args, "--force"])
    assert r.exit_code == 0 and "PSNR" in r.stdout


def test_bdrate_end_to_end(runner: CliRunner, photo_dir: Path, tmp_path: Path, anchors_dir: Path) -> None:
    out = tmp_path / "bd"
    md = tmp_path / "docs" / "results.md"
    ref = anchors_dir / "jpeg2000.json"
    args = ["bdrate", "--dataset", str(photo_dir), "--rates", "0.5,1.5", "--codecs", "caec,jpeg,webp"]
    args += ["--out", str(out), "--markdown", str(md), "--reference", str(ref), "-j", "2"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    for name in ("jpeg", "webp", "jpeg2000"):  # the anchor is measured even when not listed
        curve = json.loads((out / f"{name}.json").read_text())
        assert set(curve["results"]) == {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}
        assert len(curve["results"]["bpp"]) == 2 and curve["caec"]["images"] == 2
        assert all(b <= t for b, t in zip(curve["results"]["bpp"], curve["caec"]["target_bpp"], strict=True))
    summary = json.loads((out / "bdrate.json").read_text())
    rows = {row["name"]: row for row in summary["bd_rate"]}
    assert rows["JPEG2000"]["source"] == "anchor" and rows["JPEG2000"]["psnr"] == 0.0
    assert rows["JPEG"]["source"] == "measured" and rows["WebP"]["source"] == "measured"
    # the published JPEG2000 curve (ffmpeg's OpenJPEG, all of Kodak) is another curve, not the anchor
    assert rows["JPEG2000 (published)"]["source"] == "published"
    assert Image.open(out / "rd.png").size[0] > 500
    page = md.read_text()
    assert "BD-rate against JPEG2000" in page and "](../bd/rd.png)" in page and "openjpeg" in page
    assert f"--model {DEFAULT_MODEL}" in page  # the command that regenerates the page
    assert len(json.loads((out / "points.json").read_text())) == 2 * 4 * 2


def test_bdrate_refine_is_recorded_and_reproducible(runner: CliRunner, photo_dir: Path, tmp_path: Path) -> None:
    out, md = tmp_path / "bd", tmp_path / "results.md"
    args = ["bdrate", "--dataset", str(photo_dir), "--rates", "0.4,1.2", "--codecs", "caec", "--limit", "1"]
    r = runner.invoke(app, [*args, "--refine", "3", "--out", str(out), "--markdown", str(md), "-j", "1"])
    assert r.exit_code == 0, r.output
    curve = json.loads((out / "caec.json").read_text())
    assert curve["caec"]["codec"]["settings"]["refine"] == 3
    assert all(b <= t for b, t in zip(curve["results"]["bpp"], curve["caec"]["target_bpp"], strict=True))
    assert "--refine 3" in md.read_text()  # the command that regenerates the page


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["compare", "{img}", "--codecs", "jpeg,gif"], 2, "unknown codec 'gif'"),
        (["compare", "{img}", "--bpp", "0.5,abc"], 2, "comma-separated numbers"),
        (["compare", "{img}", "--bpp", "0,1"], 2, "(0, 64)"),
        (["compare", "{missing}", "--codecs", "jpeg"], 1, "no such file"),
        (["compare", "{img}", "--codecs", "caec,jpeg", "--model", "no-such-model"], 1, "no-such-model"),
        (["bdrate", "--dataset", "{missing}", "--codecs", "jpeg"], 1, "neither a known dataset"),
        (["bdrate", "--dataset", "{dir}", "--metric", "ssim"], 2, "--metric"),
        (["bdrate", "--dataset", "{dir}", "--codecs", "jpeg", "--reference", "{missing}"], 1, "no such file"),
    ],
)
def test_bad_input_is_one_line(
    runner: CliRunner, photo_dir: Path, tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    img = str(photo_dir / "kodim03.png")
    filled = [a.format(img=img, dir=photo_dir, missing=tmp_path / "missing.png") for a in args]
    r = runner.invoke(app, filled)
    assert r.exit_code == code, r.output
    assert needle in one_error_line(r.output)


def test_unavailable_codec_is_one_warning(runner: CliRunner, photo_dir: Path, monkeypatch) -> None:
    from cae_codec.evaluate.classic import Avif

    monkeypatch.setattr(Avif, "module", "NO_SUCH_CODEC")
    r = runner.invoke(app, ["compare", str(photo_dir / "kodim03.png"), "--codecs", "avif,jpeg", "--bpp", "1", "--json"])
    assert r.exit_code == 0, r.output
    warnings = [ln for ln in r.stderr.splitlines() if "avif" in ln]
    assert len(warnings) == 1 and "not available" in warnings[0] and "Traceback" not in r.output
    assert {p["codec"] for p in json.loads(r.stdout)["points"]} == {"jpeg"}
    r = runner.invoke(app, ["compare", str(photo_dir / "kodim03.png"), "--codecs", "avif"])
    assert r.exit_code == 1 and "none of the codecs" in one_error_line(r.output)


def test_a_library_that_cannot_encode_with_our_settings_is_unavailable(monkeypatch) -> None:
    from cae_codec.evaluate.classic import Avif

    def refuse(self: Avif, img: np.ndarray, knob: float) -> bytes:
        raise RuntimeError("avifEncoderAddImage returned 'No codec available'")

    monkeypatch.setattr(Avif, "_encode", refuse)
    why = Avif.unavailable_reason()
    assert why is not None and "cannot encode" in why and "No codec available" in why


def test_grey_and_rgba_inputs_are_evaluated_on_rgb(runner: CliRunner, photo: np.ndarray, tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    rgba = tmp_path / "rgba.png"
    Image.fromarray(photo[:, :, 1]).save(grey)
    Image.fromarray(np.dstack([photo, np.full(photo.shape[:2], 200, np.uint8)])).save(rgba)
    args = ["compare", str(grey), str(rgba), "--codecs", "caec,jpeg", "--bpp", "1.5", "--json", "-j", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    points = {(p["image"], p["codec"]): p for p in json.loads(r.stdout)["points"]}
    assert points[("grey", "jpeg")]["bpp"] <= 1.5 and points[("rgba", "jpeg")]["bpp"] <= 1.5
    # alpha is not coded: the RGBA image scores exactly like its RGB part
    rgb = tmp_path / "rgb.png"
    Image.fromarray(photo).save(rgb)
    r = runner.invoke(app, ["compare", str(rgb), "--codecs", "jpeg", "--bpp", "1.5", "--json", "-j", "1"])
    assert json.loads(r.stdout)["points"][0]["psnr"] == points[("rgba", "jpeg")]["psnr"]


def test_largest_within_matches_a_byte_budget(rng) -> None:
    img = smooth_image(rng, 96, 128, 3)
    j2k = Jpeg2000()
    memo = MemoEncoder(lambda k: j2k.encode(img, k))
    matched = largest_within(j2k, memo, 1500)
    assert matched is not None
    data, rec = matched
    assert len(data) <= 1500 and rec.shape == img.shape
    assert largest_within(j2k, memo, 10) is None, "no OpenJPEG file is 10 bytes"


def test_replace_marked_rewrites_only_between_the_markers() -> None:
    page = "intro\n<!-- t:start -->\nold\n<!-- t:end -->\noutro\n"
    out = replace_marked(page, "<!-- t:start -->", "<!-- t:end -->", "new")
    assert out == "intro\n<!-- t:start -->\nnew\n<!-- t:end -->\noutro\n"
    with pytest.raises(ValueError, match=re.escape("has no <!-- x:start --> ... <!-- x:end --> markers")):
        replace_marked(page, "<!-- x:start -->", "<!-- x:end -->", "new")
