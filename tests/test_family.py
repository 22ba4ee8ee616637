"""Model families: members picked by step, files that name the member, and malformed family files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cae_codec import api, container, zoo
from cae_codec.cae import payload
from cae_codec.cae.codec import FamilyCodec
from cae_codec.cae.family import ModelFamily, read_family
from cae_codec.errors import ModelError
from cae_codec.stages import quant
from tests.conftest import TINY_FAMILY, as_v1, maker_of, smooth_image, write_tiny_model

SHIPPED_FAMILIES = sorted(zoo.catalogue().families)


def _write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def two_member_family(tiny_models: Path) -> Path:
    """The tests' tiny family file, given by path: its members are found beside it."""
    return tiny_models / f"{TINY_FAMILY}.family.json"


def test_the_nominal_step_picks_the_member_and_its_gain_scales_the_step(two_member_family: Path, rng) -> None:
    codec = api.get_codec(str(two_member_family), "cpu")
    assert isinstance(codec, FamilyCodec) and codec.name == TINY_FAMILY
    img = smooth_image(rng, 40, 72, 3)
    for quality, model, gain in [
        (10, "tiny-fine", 1.0),
        (6, "tiny-fine", 1.0),
        (5, "tiny-coarse", 0.5),
    ]:
        data = codec.encode(img, quality=quality)
        p = payload.params(container.parse(data))
        assert maker_of(data, two_member_family.parent) == model and p.quality == quality
        assert p.step == pytest.approx(quant.step_for_quality(quality) * gain, rel=1e-6)


@pytest.mark.parametrize("version", [1, 2])
def test_a_family_file_decodes_with_the_member_alone(
    two_member_family: Path, rng, monkeypatch: pytest.MonkeyPatch, version: int
) -> None:
    # the family finds the member a version-1 file names, or whose weights a version-2 file's hash begins
    codec = api.get_codec(str(two_member_family), "cpu")
    img = smooth_image(rng, 40, 72, 3)
    data = codec.encode(img, quality=3)
    if version == 1:
        with monkeypatch.context() as env:  # the converter looks the weights up by their hash
            env.setenv("CAEC_MODELS", str(two_member_family.parent))
            data = as_v1(data)
    member = api.get_codec(str(two_member_family.parent / "tiny-coarse.safetensors"), "cpu")
    expected = member.decode(container.parse(data))
    assert np.array_equal(codec.decode(container.parse(data)), expected)
    assert np.array_equal(api.decode(data, model=str(two_member_family), device="cpu"), expected)


def test_a_file_from_outside_the_family_is_refused_by_name(two_member_family: Path, rng) -> None:
    other = two_member_family.parent / "tiny-other.safetensors"
    data = api.encode(smooth_image(rng, 24, 24, 3), model=str(other), device="cpu")
    with pytest.raises(ModelError, match="not a member of family 'tiny'"):
        api.decode(data, model=str(two_member_family), device="cpu")
    with pytest.raises(ModelError, match="not a member"):
        api.get_codec(str(two_member_family), "cpu").decode(container.parse(data))


@pytest.mark.parametrize("target", [0.3, 0.9, 2.0])
def test_bpp_search_across_members_never_exceeds_the_target(two_member_family: Path, rng, target: float) -> None:
    codec = api.get_codec(str(two_member_family), "cpu")
    img = smooth_image(rng, 64, 96, 3)
    data = codec.encode(img, bpp=target)
    assert 8 * len(data) / (64 * 96) <= target


@pytest.mark.parametrize("name", SHIPPED_FAMILIES)
def test_shipped_family_members_exist_and_rates_rise_with_quality(name: str, rng) -> None:
    family = read_family(zoo.catalogue().families[name].path)
    codec = api.get_codec(name, "cpu")
    img = smooth_image(rng, 96, 128, 3)
    sizes = [len(codec.encode(img, quality=q)) for q in range(quant.QUALITY_MIN, quant.QUALITY_MAX + 1)]
    assert sizes == sorted(sizes), "rates must rise with quality, across members too"
    used = {api.info(codec.encode(img, quality=q))["model"] for q in (1, 10)}
    assert used == {m.model for m in family.members} or len(family.members) == 1


BASE = {"format": "caec-model-family", "version": 1}


@pytest.mark.parametrize(
    "doc, needle",
    [
        ("not json", "not JSON"),
        ({**BASE, "format": "other"}, "format"),
        ({**BASE, "version": 2}, "version"),
        ({**BASE, "members": []}, "members"),
        ({**BASE, "members": [{"model": "a", "below_step": 1}]}, "below_step"),
        ({**BASE, "members": [{"model": "a"}, {"model": "b"}]}, "below_step"),
        (
            {**BASE, "members": [{"model": "a", "below_step": 2}, {"model": "b", "below_step": 1}, {"model": "c"}]},
            "increase",
        ),
        ({**BASE, "members": [{"model": "a", "below_step": 1}, {"model": "a"}]}, "twice"),
        ({**BASE, "members": [{"model": "a", "step_gain": 0}]}, "step_gain"),
        ({**BASE, "members": [{"model": "a", "step_gain": True}]}, "step_gain"),
        ({**BASE, "members": [{"below_step": 1}, {"model": "b"}]}, "no model"),
        # 30,000 levels fit the size bound and still exceed json's recursion limit
        ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "larger than 65536 bytes"),
        # a gain that overflows the file's float32 step (it used to fail when writing the file)
        (
            {**BASE, "members": [{"model": "a", "below_step": 1}, {"model": "b", "step_gain": 1e300}]},
            r"bad.family.json is malformed: member 1 \('b'\) step_gain 1e\+300 .* outside what a file records",
        ),
        ({**BASE, "members": [{"model": "a", "step_gain": 1e-300}]}, r"member 0 \('a'\) step_gain"),
        # STEP_MAX x 3906.25 is exactly 1e6, which a file's parameters refuse
        ({**BASE, "members": [{"model": "a", "step_gain": 3906.25}]}, "outside what a file records"),
    ],
)
def test_malformed_family_files_are_one_line_errors(tmp_path: Path, doc: object, needle: str) -> None:
    path = tmp_path / "bad.family.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(ModelError, match=needle) as err:
        read_family(path)
    assert "\n" not in str(err.value)


def test_a_family_naming_a_missing_model_fails_on_use_with_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "ghost.family.json", {**BASE, "members": [{"model": "no-such-model"}]})
    codec = api.get_codec(str(path), "cpu")  # members load when first needed
    with pytest.raises(ModelError, match="model family 'ghost', member 'no-such-model': model 'no-such-model' not"):
        codec.encode(np.zeros((8, 8, 3), np.uint8))


def test_the_largest_gain_allowed_writes_files(tmp_path: Path, rng) -> None:
    """The bound read_family puts on step_gain is the file's: just under it, files are valid."""
    write_tiny_model(tmp_path / "tiny-fine.safetensors", seed=1)
    gain = 3906.0  # STEP_MAX x gain = 999,936, under a file's 1e6
    path = _write(tmp_path / "big.family.json", {**BASE, "members": [{"model": "tiny-fine", "step_gain": gain}]})
    data = api.get_codec(str(path), "cpu").encode(smooth_image(rng, 16, 16, 3), bpp=63.0)
    assert payload.params(container.parse(data)).step <= quant.STEP_MAX * gain


@pytest.fixture
def family_missing_a_member(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tiny-fine serves the fine steps (high qualities) and is present; tiny-coarse is missing."""
    monkeypatch.delenv("CAEC_MODELS")  # the session's model folder holds a tiny-coarse; here none may
    write_tiny_model(tmp_path / "tiny-fine.safetensors", seed=1)
    members = [{"model": "tiny-fine", "below_step": 1.19}, {"model": "tiny-coarse"}]
    return _write(tmp_path / "gappy.family.json", {**BASE, "members": members})


def test_a_missing_member_fails_only_where_it_is_needed(family_missing_a_member: Path, rng) -> None:
    img = smooth_image(rng, 24, 40, 3)
    family = str(family_missing_a_member)
    assert quant.step_for_quality(9) < 1.19 < quant.step_for_quality(2)
    data = api.encode(img, quality=9, model=family, device="cpu")
    assert maker_of(data, family_missing_a_member.parent) == "tiny-fine"
    assert api.decode(data, model=family, device="cpu").shape == img.shape
    codec = api.get_codec(family, "cpu")
    assert np.array_equal(codec.decode(container.parse(data)), api.decode(data, model=family, device="cpu"))
    with pytest.raises(ModelError, match="model family 'gappy', member 'tiny-coarse': model 'tiny-coarse' not") as err:
        api.encode(img, quality=2, model=family, device="cpu")
    assert "\n" not in str(err.value)


def test_a_missing_member_is_one_error_line_in_the_cli_and_listed_by_models(
    family_missing_a_member: Path, tmp_path: Path, monkeypatch, rng
) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from cae_codec.cli import app

    src = tmp_path / "p.png"
    Image.fromarray(smooth_image(rng, 24, 40, 3)).save(src)
    runner = CliRunner()
    args = ["encode", str(src), "-m", str(family_missing_a_member), "-o"]
    ok = runner.invoke(app, [*args, str(tmp_path / "q9.cae"), "-q", "9"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, [*args, str(tmp_path / "q2.cae"), "-q", "2"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    errors = [ln for ln in bad.output.splitlines() if ln.startswith("caec: error:")]
    assert len(errors) == 1 and "member 'tiny-coarse'" in errors[0], bad.output
    assert not (tmp_path / "q2.cae").exists()

    monkeypatch.setenv("CAEC_MODELS", str(family_missing_a_member.parent))
    listed = runner.invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    entries = {e["name"]: e for e in json.loads(listed.stdout)}
    assert entries["gappy"]["kind"] == "family"
    assert "member 'tiny-coarse' cannot be used" in entries["gappy"]["error"]
    assert "error" not in entries["tiny-fine"]
    table = runner.invoke(app, ["models"], env={"COLUMNS": "1000"})  # one line per row
    assert table.exit_code == 0 and "member 'tiny-coarse' cannot be used" in table.stdout


def test_member_for_covers_every_step() -> None:
    from cae_codec.cae.family import FamilyMember

    fam = ModelFamily("f", (FamilyMember("a", 1.0), FamilyMember("b", 2.0), FamilyMember("c", None)), Path("."))
    assert [fam.member_for(s).model for s in (0.01, 0.99, 1.0, 1.99, 2.0, 1e9)] == ["a", "a", "b", "b", "c", "c"]


def test_cli_encodes_with_a_family_and_decodes_from_the_file(tmp_path: Path, rng) -> None:
    from PIL import Image
    from typer.testing import CliRunner

    from cae_codec.cli import app

    src = tmp_path / "p.png"
    Image.fromarray(smooth_image(rng, 40, 56, 3)).save(src)
    runner = CliRunner()
    res = runner.invoke(app, ["encode", str(src), "-o", str(tmp_path / "p.cae"), "--quality", "2"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["decode", str(tmp_path / "p.cae"), "-o", str(tmp_path / "q.png")])
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "q.png").size == (56, 40)


def test_models_command_lists_families_models_and_broken_files(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cae_codec.cli import app

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "broken.safetensors").write_bytes(b"not weights")
    (extra / "bad.family.json").write_text("{")
    (extra / "x.safetensors.ckpt.safetensors").write_bytes(b"")  # a checkpoint is not a model
    # the tests' default model is in the session's folder: keep it listed
    monkeypatch.setenv("CAEC_MODELS", os.pathsep.join([str(extra), os.environ["CAEC_MODELS"]]))
    result = CliRunner().invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert api.DEFAULT_MODEL in entries
    assert set(zoo.catalogue().models) <= set(entries)
    assert "cannot load weights" in entries["broken"]["error"]
    assert "not JSON" in entries["bad"]["error"]
    assert not any(name.endswith(".ckpt") or "ckpt" in name for name in entries)
    for name in SHIPPED_FAMILIES:
        assert entries[name]["kind"] == "family" and entries[name]["members"]
    table = CliRunner().invoke(app, ["models"])
    assert table.exit_code == 0 and "(default)" in table.stdout and "broken" in table.stdout
