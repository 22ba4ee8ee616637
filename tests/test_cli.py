"""Every CLI subcommand, its default naming, pipes, batches and error exits."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_codec.cli import app
from tests.conftest import smooth_image


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def photo(tmp_path: Path, rng) -> Path:
    p = tmp_path / "photo.png"
    Image.fromarray(smooth_image(rng, 90, 130, 3)).save(p)
    return p


def one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("caec: error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_encode_decode_default_names(runner: CliRunner, photo: Path) -> None:
    """The README's round trip, as written: the decoded image does not collide with its source."""
    r = runner.invoke(app, ["encode", str(photo)])
    assert r.exit_code == 0, r.output
    cae = photo.with_suffix(".cae")
    assert cae.is_file()
    r = runner.invoke(app, ["decode", str(cae)])
    assert r.exit_code == 0, r.output
    out = np.asarray(Image.open(photo.with_name("photo.decoded.png")))
    assert out.shape == (90, 130, 3)


def test_existing_output_needs_force(runner: CliRunner, photo: Path) -> None:
    assert runner.invoke(app, ["encode", str(photo)]).exit_code == 0
    cae = photo.with_suffix(".cae")
    before = cae.read_bytes()
    r = runner.invoke(app, ["encode", str(photo), "-q", "8"])
    assert r.exit_code == 1 and "--force" in one_error_line(r.output)
    assert cae.read_bytes() == before
    r = runner.invoke(app, ["encode", str(photo), "-q", "8", "--force"])
    assert r.exit_code == 0 and cae.read_bytes() != before


def test_pipes(runner: CliRunner, photo: Path) -> None:
    r = runner.invoke(app, ["encode", "-", "-o", "-"], input=photo.read_bytes())
    assert r.exit_code == 0
    cae = r.stdout_bytes
    assert cae.startswith(b"\x89CAE")
    r = runner.invoke(app, ["decode", "-", "-o", "-"], input=cae)
    assert r.exit_code == 0
    assert Image.open(io.BytesIO(r.stdout_bytes)).size == (130, 90)


def test_batch_into_directory_continues_past_a_bad_file(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.png"
    Image.open(photo).rotate(90, expand=True).save(second)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    outdir = tmp_path / "out"
    r = runner.invoke(app, ["encode", str(photo), str(bad), str(second), "-o", str(outdir) + "/"])
    assert r.exit_code == 1
    assert sorted(p.name for p in outdir.iterdir()) == ["photo.cae", "second.cae"]
    assert "1 of 3 files failed: " + str(bad) in r.output
    r = runner.invoke(app, ["decode", *map(str, sorted(outdir.glob("*.cae"))), "-o", str(tmp_path / "dec") + "/"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "dec" / "second.decoded.png").size == (90, 130)


def test_single_input_into_a_new_directory(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path / "fresh") + "/"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "fresh" / "photo.cae").is_file()


def test_decode_to_other_formats(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    runner.invoke(app, ["encode", str(photo)])
    for name in ("x.jpg", "x.bmp", "x.webp", "x.tiff"):
        r = runner.invoke(app, ["decode", str(photo.with_suffix(".cae")), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert Image.open(tmp_path / name).size == (130, 90)


def test_bpp_option(runner: CliRunner, photo: Path) -> None:
    r = runner.invoke(app, ["encode", str(photo), "--bpp", "0.5"])
    assert r.exit_code == 0, r.output
    assert 8 * photo.with_suffix(".cae").stat().st_size / (90 * 130) <= 0.5


def test_size_option(runner: CliRunner, photo: Path) -> None:
    for size in (600, 2500):
        r = runner.invoke(app, ["encode", str(photo), "--size", str(size), "--force"])
        assert r.exit_code == 0, r.output
        written = photo.with_suffix(".cae").stat().st_size
        # never over the size, and the search fills it: within a few percent under it
        assert 0.9 * size < written <= size, (size, written)


def test_codec_option_names_the_codec_written(runner: CliRunner, photo: Path) -> None:
    for flag in ("--codec", "-c"):
        r = runner.invoke(app, ["encode", str(photo), flag, "cae-pca-j2k", "-q", "5", "--force"])
        assert r.exit_code == 0, r.output
        fields = json.loads(runner.invoke(app, ["info", str(photo.with_suffix(".cae")), "--json"]).stdout)
        assert fields["codec"] == "cae-pca-j2k" and fields["quality"] == 5


def test_info_text_and_json(runner: CliRunner, photo: Path) -> None:
    runner.invoke(app, ["encode", str(photo), "-q", "3"])
    cae = photo.with_suffix(".cae")
    r = runner.invoke(app, ["info", str(cae), "--json"])
    assert r.exit_code == 0
    fields = json.loads(r.stdout)
    assert fields["width"] == 130 and fields["height"] == 90 and fields["quality"] == 3
    assert fields["format_version"] == 2 and fields["codec"] == "cae-pca-j2k"
    assert fields["file_bytes"] == cae.stat().st_size
    assert fields["bpp"] == pytest.approx(8 * cae.stat().st_size / (90 * 130))
    # version 2: the CAE's parameters in PARM, 8 bytes of the weights hash in the header
    assert "PARM" in fields["chunks"] and set(fields["chunks"]) <= {"PARM", "LATN", "ALPH"}
    assert len(fields["weights_hash"]) == 16
    r = runner.invoke(app, ["info", str(cae)])
    assert r.exit_code == 0 and "weights_hash" in r.stdout and fields["model"] in r.stdout


@pytest.mark.parametrize(
    "args, exit_code, needle",
    [
        (["encode", "missing.png"], 1, "no such file"),
        (["decode", "missing.cae"], 1, "no such file"),
        (["info", "missing.cae"], 1, "missing.cae"),
        (["encode", "PHOTO", "--model", "no-such-model"], 1, "not found"),
        (["encode", "PHOTO", "--device", "tpu"], 1, "unknown device"),
        (["decode", "PHOTO"], 1, "not a .cae file"),
        (["info", "PHOTO"], 1, "not a .cae file"),
        (["info", "DIR"], 1, "is a directory"),
        (["decode", "DIR", "-o", "x.png"], 1, "is a directory"),
    ],
)
def test_errors_are_one_line(runner: CliRunner, photo: Path, args: list[str], exit_code: int, needle: str) -> None:
    names = {"PHOTO": str(photo), "DIR": str(photo.parent)}
    args = [names.get(a, a) for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code == exit_code
    assert needle in one_error_line(r.output)
    assert not list(photo.parent.glob("*.tmp")) and not list(photo.parent.glob(".*.tmp"))


@pytest.mark.parametrize(
    "args",
    [
        ["encode", "PHOTO", "-q", "0"],
        ["encode", "PHOTO", "-q", "3", "--bpp", "1"],
        ["encode", "PHOTO", "--bpp", "-1"],
        ["decode", "."],  # no file name to name the output after
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, photo: Path, args: list[str]) -> None:
    r = runner.invoke(app, [str(photo) if a == "PHOTO" else a for a in args])
    assert r.exit_code == 2
    assert not photo.with_suffix(".cae").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-q", "11"], "quality for cae-pca-j2k must be 1..10, got 11"),
        (["-q", "0"], "quality for cae-pca-j2k must be 1..10, got 0"),
        (["--codec", "nope"], "unknown codec 'nope' (this caec knows cae-pca-j2k"),
        (["-c", "nope", "-q", "4"], "unknown codec 'nope'"),
        (["-q", "3", "--size", "1000"], "give one of --quality, --bpp and --size"),
        (["--bpp", "1", "--size", "1000"], "give one of --quality, --bpp and --size"),
        (["--size", "0"], "--size must be at least 1 byte"),
        (["--size", "many"], "--size"),
    ],
)
def test_bad_rate_and_codec_options_are_usage_errors_saying_why(
    runner: CliRunner, photo: Path, args: list[str], needle: str
) -> None:
    r = runner.invoke(app, ["encode", str(photo), *args], env={"COLUMNS": "1000"})
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert needle in " ".join(r.output.split())  # the usage box may wrap the message
    assert not photo.with_suffix(".cae").exists()


def test_truncated_cae_is_one_line_and_writes_nothing(runner: CliRunner, photo: Path) -> None:
    runner.invoke(app, ["encode", str(photo)])
    cae = photo.with_suffix(".cae")
    cae.write_bytes(cae.read_bytes()[:-7])
    r = runner.invoke(app, ["decode", str(cae)])
    assert r.exit_code == 1 and "truncated" in one_error_line(r.output)
    assert not photo.with_name("photo.decoded.png").exists()


def test_version_and_help(runner: CliRunner) -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.startswith("caec ")
    r = runner.invoke(app, [])
    assert "encode" in r.output and "decode" in r.output and "train" in r.output
