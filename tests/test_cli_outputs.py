"""Where the CLI writes and what it refuses to touch: inputs as outputs, unwritable places,
closed or terminal standard streams, existing files, output names and formats, signals.

Black-box: each test drives `caec` as a user does (in-process through Typer's runner, or as
a real process where file descriptors, capabilities or signals matter).
"""

from __future__ import annotations

import hashlib
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cae_codec import cli
from cae_codec.cli import app
from tests.conftest import REPO, smooth_image

CAEC = [sys.executable, "-m", "cae_codec"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    p = tmp_path / "photo.png"
    Image.fromarray(smooth_image(np.random.default_rng(7), 40, 56, 3)).save(p)
    return p


@pytest.fixture
def cae(runner: CliRunner, photo: Path) -> Path:
    r = runner.invoke(app, ["encode", str(photo)])
    assert r.exit_code == 0, r.output
    return photo.with_suffix(".cae")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_lines(output: str) -> list[str]:
    assert "Traceback" not in output, output
    return [ln for ln in output.splitlines() if ln.startswith("caec: error:")]


def run_caec(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CAEC, *args], capture_output=True, text=True, cwd=REPO, timeout=300, **kwargs)


# ---------------------------------------------------------------- 1. an input is never an output
def test_encode_refuses_to_overwrite_its_input_even_with_force(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    same = tmp_path / "same.dat"  # a PNG under a name encode does not refuse as an image name
    shutil.copy(photo, same)
    before = digest(same)
    r = runner.invoke(app, ["encode", str(same), "-o", str(same), "--force"])
    assert r.exit_code == 1
    assert "is the input file" in error_lines(r.output)[0]
    assert digest(same) == before


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_an_output_linked_to_the_input_is_refused(runner: CliRunner, photo: Path, tmp_path: Path, link: str) -> None:
    before = digest(photo)
    out = tmp_path / "out.cae"
    if link == "symlink":
        out.symlink_to(photo)
    else:
        os.link(photo, out)
    r = runner.invoke(app, ["encode", str(photo), "-o", str(out), "--force"])
    assert r.exit_code == 1 and "is the input file" in error_lines(r.output)[0]
    assert digest(photo) == before


def test_decode_refuses_to_overwrite_its_input(runner: CliRunner, cae: Path) -> None:
    before = digest(cae)
    r = runner.invoke(app, ["decode", str(cae), "-o", str(cae), "--format", "png", "-f"])
    assert r.exit_code == 1 and "is the input file" in error_lines(r.output)[0]
    assert digest(cae) == before


def test_an_output_directory_that_holds_the_input_is_refused(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    # a.cae (a PNG despite its name) encoded into its own folder would be written over itself
    shutil.copy(photo, tmp_path / "a.cae")
    before = digest(tmp_path / "a.cae")
    r = runner.invoke(app, ["encode", str(tmp_path / "a.cae"), "-o", f"{tmp_path}/", "-f"])
    assert r.exit_code == 1 and "is the input file" in error_lines(r.output)[0]
    assert digest(tmp_path / "a.cae") == before


# ---------------------------------------------------------------- 2. unwritable outputs
def test_unwritable_output_is_one_line_per_file_and_the_batch_goes_on(
    runner: CliRunner, photo: Path, tmp_path: Path
) -> None:
    second = tmp_path / "second.png"
    shutil.copy(photo, second)
    r = runner.invoke(app, ["encode", str(photo), "-o", "/proc/x.cae"])
    assert r.exit_code == 1 and len(error_lines(r.output)) == 1
    # a folder that cannot be created: every file says so, the batch ends with its summary
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    r = runner.invoke(app, ["encode", str(photo), str(second), "-o", f"{blocker}/sub/"])
    assert r.exit_code == 1
    assert len(error_lines(r.output)) == 2 and "2 of 2 files failed" in r.output


def test_a_failing_temporary_file_is_one_error_line(
    runner: CliRunner, photo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    r = runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path / "x.cae")])
    assert r.exit_code == 1 and "Permission denied" in error_lines(r.output)[0]
    assert not (tmp_path / "x.cae").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_read_only_folders_without_root_privileges(photo: Path, tmp_path: Path) -> None:
    """Run as root without the capability that lets root write anywhere, as a user would be."""
    ro = tmp_path / "ro"
    ro.mkdir()
    shutil.copy(photo, ro / "p.png")
    second = tmp_path / "second.png"
    shutil.copy(photo, second)
    ro.chmod(0o555)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]
    try:
        # the default output beside an input in a read-only folder
        r = subprocess.run(
            [*drop, *CAEC, "encode", str(ro / "p.png"), "--device", "cpu"],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=300,
        )
        assert r.returncode == 1 and len(error_lines(r.stderr)) == 1, r.stderr
        # into a read-only folder and a folder inside it, several inputs: one line per file, a summary
        for target in (f"{ro}/", f"{ro}/sub/"):
            r = subprocess.run(
                [*drop, *CAEC, "encode", str(photo), str(second), "-o", target, "--device", "cpu"],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=300,
            )
            assert r.returncode == 1, r.stderr
            assert len(error_lines(r.stderr)) == 2 and "2 of 2 files failed" in r.stderr, r.stderr
        assert sorted(p.name for p in ro.iterdir()) == ["p.png"]
    finally:
        ro.chmod(0o755)


# ---------------------------------------------------------------- 3. closed and terminal streams
@pytest.mark.slow
@pytest.mark.parametrize(
    "args, closed",
    [
        (["encode", "-", "-o", "c.cae"], 0),
        (["decode", "-", "-o", "c.png"], 0),
        (["info", "-"], 0),
        (["encode", "PHOTO", "-o", "-"], 1),
    ],
)
def test_closed_standard_streams_are_one_error_line(photo: Path, tmp_path: Path, args: list[str], closed: int) -> None:
    args = [str(photo) if a == "PHOTO" else a for a in args]
    r = subprocess.run(
        [*CAEC, *args],
        capture_output=closed != 1,
        stderr=subprocess.PIPE if closed == 1 else None,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=None if closed != 0 else subprocess.DEVNULL,
        preexec_fn=lambda: os.close(closed),
    )
    assert r.returncode == 1, r.stderr
    assert len(error_lines(r.stderr)) == 1 and "closed" in r.stderr, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in tmp_path.iterdir() if p.suffix != "")
    assert not (tmp_path / "c.cae").exists() and not (tmp_path / "c.png").exists()


def test_binary_data_is_not_written_to_a_terminal(photo: Path, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        r = subprocess.run(
            [*CAEC, "encode", str(photo), "-o", "-"],
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            timeout=300,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert r.returncode == 1 and "terminal" in error_lines(r.stderr)[0]


# ---------------------------------------------------------------- 10, 11: existing outputs, several inputs
def test_existing_output_is_refused_before_any_work(
    runner: CliRunner, photo: Path, cae: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the model must not load for an output that exists")

    monkeypatch.setattr(cli.coding, "get_codec", no_model)
    r = runner.invoke(app, ["encode", str(photo)])
    assert r.exit_code == 1 and "exists" in error_lines(r.output)[0]


def test_skip_existing_leaves_outputs_and_goes_on(runner: CliRunner, photo: Path, cae: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.png"
    shutil.copy(photo, second)
    before = digest(cae)
    r = runner.invoke(app, ["encode", str(photo), str(second), "-o", f"{tmp_path}/", "--skip-existing"])
    assert r.exit_code == 0, r.output
    assert digest(cae) == before and (tmp_path / "second.cae").is_file()
    assert "1 of 2 outputs existed and were skipped" in r.output
    r = runner.invoke(app, ["encode", str(photo), "--skip-existing", "--force"])
    assert r.exit_code == 2


def test_several_inputs_need_a_directory(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.png"
    shutil.copy(photo, second)
    r = runner.invoke(app, ["encode", str(photo), str(second), "-o", str(tmp_path / "name.cae")])
    assert r.exit_code == 2 and "directory" in error_lines(r.output)[0]
    assert not (tmp_path / "name.cae").exists()


def test_a_value_given_to_a_flag_is_not_taken_for_a_file(runner: CliRunner, photo: Path) -> None:
    r = runner.invoke(app, ["encode", str(photo), "--force", "true"])
    assert r.exit_code == 2 and "take no value" in error_lines(r.output)[0]


# ---------------------------------------------------------------- 12. output names and formats
def test_decode_writes_the_format_its_name_says(runner: CliRunner, cae: Path, tmp_path: Path) -> None:
    for name, fmt in (("x.gif", "GIF"), ("x.jpg", "JPEG"), ("x.webp", "WEBP"), ("x.tiff", "TIFF"), ("x.png", "PNG")):
        r = runner.invoke(app, ["decode", str(cae), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert Image.open(tmp_path / name).format == fmt


@pytest.mark.parametrize(
    "args",
    [
        ["decode", "CAE", "-o", "OUT/x.xyz"],  # a suffix that names no format
        ["decode", "CAE", "--format", "jpeg", "-o", "OUT/x.png"],  # a format the name contradicts
        ["decode", "CAE", "--format", "nonsense", "-o", "-"],
        ["encode", "PHOTO", "-o", "OUT/x.webp"],  # encode writes .cae data, not an image
    ],
)
def test_output_name_and_format_must_agree(
    runner: CliRunner, photo: Path, cae: Path, tmp_path: Path, args: list[str]
) -> None:
    args = [a.replace("CAE", str(cae)).replace("PHOTO", str(photo)).replace("OUT", str(tmp_path)) for a in args]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and len(error_lines(r.output)) == 1, r.output
    assert not any(p.name.startswith("x.") for p in tmp_path.iterdir())


def test_format_option_for_a_name_without_suffix(runner: CliRunner, cae: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["decode", str(cae), "-o", str(tmp_path / "x.out"), "--format", "jpg"])
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "x.out").format == "JPEG"


# ---------------------------------------------------------------- 18. conventions
def test_short_help_version_and_verbosity(runner: CliRunner, photo: Path, tmp_path: Path) -> None:
    for args in (["-h"], ["encode", "-h"], ["decode", "-h"], ["bdrate", "-h"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage:" in r.output
        # plain help: no Python type names, no braces around arguments
        assert "<bool>" not in r.output and "<list" not in r.output and "{" not in r.output, r.output
    r = runner.invoke(app, ["-V"])
    assert r.exit_code == 0 and r.output.startswith("caec ")
    r = runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path / "a.cae"), "--quiet"])
    assert r.exit_code == 0 and r.output == ""
    r = runner.invoke(app, ["encode", str(photo), "-o", str(tmp_path / "b.cae"), "-v"])
    assert r.exit_code == 0 and "model" in r.output and "step" in r.output
    assert "cae-pca-j2k" in r.output  # -v names the codec written


@pytest.mark.parametrize(
    "args",
    [
        ["encode", "PHOTO", "-q", "0"],
        ["encode", "PHOTO", "--bogus"],
        ["decode"],
        ["info", "a", "b"],
        ["compare", "PHOTO", "--bpp", "x"],
        ["bdrate", "--metric", "nope"],
        ["models", "--json", "extra"],
    ],
)
def test_usage_errors_look_the_same_in_every_subcommand(runner: CliRunner, photo: Path, args: list[str]) -> None:
    r = runner.invoke(app, [str(photo) if a == "PHOTO" else a for a in args])
    assert r.exit_code == 2, r.output
    if args != ["decode"]:  # no arguments at all: the help is the answer
        assert len(error_lines(r.output)) == 1, r.output
        assert "╭" not in r.output and "Error:" not in r.output


def test_lossy_outputs_take_a_quality_and_webp_can_be_lossless(runner: CliRunner, cae: Path, tmp_path: Path) -> None:
    sizes = {}
    for q in (30, 95):
        out = tmp_path / f"q{q}.jpg"
        assert runner.invoke(app, ["decode", str(cae), "-o", str(out), "--output-quality", str(q)]).exit_code == 0
        sizes[q] = out.stat().st_size
    assert sizes[30] < sizes[95]
    png, webp = tmp_path / "ref.png", tmp_path / "exact.webp"
    assert runner.invoke(app, ["decode", str(cae), "-o", str(png)]).exit_code == 0
    r = runner.invoke(app, ["decode", str(cae), "-o", str(webp), "--lossless"])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(webp).convert("RGB")), np.asarray(Image.open(png).convert("RGB")))
    r = runner.invoke(app, ["decode", str(cae), "-o", str(tmp_path / "x.png"), "--lossless"])
    assert r.exit_code == 2 and "WebP" in error_lines(r.output)[0]


def test_the_icc_profile_survives_encode_and_decode(runner: CliRunner, tmp_path: Path) -> None:
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "wide.png"
    Image.fromarray(smooth_image(np.random.default_rng(3), 40, 56, 3)).save(src, icc_profile=profile)
    assert runner.invoke(app, ["encode", str(src)]).exit_code == 0
    for name in ("wide.decoded.png", "wide.jpg", "wide.webp"):
        r = runner.invoke(app, ["decode", str(tmp_path / "wide.cae"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
        assert Image.open(tmp_path / name).info.get("icc_profile") == profile, name


@pytest.mark.parametrize("command", ["info", "decode"])
def test_an_endless_input_is_refused_from_its_first_bytes(runner: CliRunner, tmp_path: Path, command: str) -> None:
    args = [command, "/dev/zero"] + (["-o", str(tmp_path / "z.png")] if command == "decode" else [])
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "not a .cae file" in error_lines(r.output)[0]


@pytest.mark.slow
def test_a_single_long_job_shows_progress_on_a_terminal_only(photo: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.fromarray(smooth_image(np.random.default_rng(4), 512, 768, 3)).save(big)
    leader, follower = pty.openpty()
    try:
        r = subprocess.run(
            [*CAEC, "encode", str(big), "--device", "cpu"],
            stderr=follower,
            stdout=subprocess.PIPE,
            cwd=REPO,
            timeout=300,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all of it was read
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(leader)
    assert r.returncode == 0
    assert b"encoding big.png" in shown
    # not a terminal: the status line only, no bar and no carriage returns
    r2 = subprocess.run(
        [*CAEC, "decode", str(tmp_path / "big.cae"), "--device", "cpu"], capture_output=True, cwd=REPO, timeout=300
    )
    assert r2.returncode == 0 and b"\r" not in r2.stderr and r2.stderr.count(b"\n") == 1, r2.stderr


def test_training_into_a_log_writes_plain_lines_without_carriage_returns(train_dir: Path, tmp_path: Path) -> None:
    from tests.test_train import TINY

    r = CliRunner().invoke(app, ["train", str(train_dir), "-o", str(tmp_path / "m"), *TINY, "--steps", "4"])
    assert r.exit_code == 0, r.output
    assert "\r" not in r.output
    assert "caec train: step 4/4, loss" in r.output
