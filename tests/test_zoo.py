"""The model zoo: the shipped catalogue, name resolution, retired models and lookup by weights hash."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cae_codec import api, zoo
from cae_codec.cae.family import read_family
from cae_codec.cli import app
from cae_codec.errors import ModelError
from cae_codec.modelfiles import read_model_info
from tests.conftest import REPO, TINY_FAMILY, as_v1, error_line, rewrite_v2, smooth_image

CAT = zoo.catalogue()
RETIRED = sorted(CAT.retired)


def test_the_catalogue_matches_the_shipped_files() -> None:
    assert {m.name: m.number for m in CAT.models.values()} == {
        "cae-gdn-v3-high": 1,
        "cae-gdn-v3-low": 2,
        "mnist-dae-196": 3,
        "mnist-dae-30": 4,
        "comcnn-enhance": 7,
        "comcnn-jpeg": 5,
        "rnn-gru-w8": 6,
        "rnn-gru-w8-ft64": 11,
        "comcnn-jpeg2000": 8,
        "comcnn-webp": 9,
        "comcnn-avif": 10,
    }
    for m in CAT.models.values():
        assert m.path.parent == zoo.ZOO_DIR
        assert read_model_info(m.path).weights_hash == m.weights_hash, m.name
    for f in CAT.families.values():
        assert [m.model for m in read_family(f.path).members] == list(f.members)
        assert all(CAT.models[m].codec == f.codec for m in f.members)
    for codec, name in CAT.defaults.items():
        shipped = CAT.families.get(name) or CAT.models[name]
        assert shipped.codec == codec
    names = [*CAT.models, *CAT.families, *CAT.retired]
    assert len(names) == len(set(names)), "one name, one entry"
    for r in CAT.retired.values():
        assert r.superseded_by in CAT.models or r.superseded_by in CAT.families
        assert r.weights_hash not in {m.weights_hash for m in CAT.models.values()}
    # the folder ships what the catalogue lists, and nothing else that could pass for a model
    listed = {m.file for m in CAT.models.values()} | {f.file for f in CAT.families.values()}
    found = {p.name for p in zoo.ZOO_DIR.iterdir() if p.name.endswith((".safetensors", ".family.json"))}
    assert found == listed


def test_retired_names_fail_in_one_line_saying_by_what(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAEC_MODELS", raising=False)
    for name in RETIRED:
        with pytest.raises(ModelError) as err:
            zoo.resolve(name)
        text = str(err.value)
        assert "\n" not in text
        assert f"model {name!r} was retired in caec 0.2 (superseded by cae-gdn-v3)" in text
        assert "caec 0.1" in text and "$CAEC_MODELS" in text


def test_retired_weights_put_on_caec_models_are_used(tiny_models: Path, tmp_path: Path, monkeypatch) -> None:
    shutil.copy(tiny_models / "tiny-fine.safetensors", tmp_path / "cae-gdn-v2.safetensors")
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    assert zoo.resolve("cae-gdn-v2") == zoo.Resolved("cae-gdn-v2", "model", tmp_path / "cae-gdn-v2.safetensors")


def tiny_file_naming_a_retired_model(version: int, rng) -> bytes:
    """A file made by tiny-fine (on $CAEC_MODELS) that names the retired cae-gdn-v2: a
    version-1 header by its name (tiny-fine's hash stays), a version-2 one by the retired
    weights' hash (no number: retired models never had one)."""
    data = api.encode(smooth_image(rng, 24, 32, 3), model="tiny-fine", device="cpu")
    if version == 1:
        return as_v1(data, model="cae-gdn-v2")
    return rewrite_v2(data, model_number=0, weights_hash=CAT.retired["cae-gdn-v2"].weights_hash[:8])


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def retired_cae(tiny_zoo: Path, rng, request: pytest.FixtureRequest) -> bytes:
    return tiny_file_naming_a_retired_model(request.param, rng)


def test_a_file_naming_a_retired_model_fails_in_one_line(retired_cae: bytes, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CAEC_MODELS")
    with pytest.raises(ModelError, match="'cae-gdn-v2' was retired") as err:
        api.decode(retired_cae, device="cpu")
    assert "\n" not in str(err.value)
    cae = tmp_path / "old.cae"
    cae.write_bytes(retired_cae)
    result = CliRunner().invoke(app, ["decode", str(cae), "-o", str(tmp_path / "old.png")])
    assert result.exit_code == 1
    assert "model 'cae-gdn-v2' was retired in caec 0.2" in error_line(result)
    assert not (tmp_path / "old.png").exists()


def test_a_retired_models_file_decodes_with_its_weights_on_caec_models(
    tiny_zoo: Path, tmp_path: Path, monkeypatch, rng
) -> None:
    # a version-1 file: its weights are looked up by the name it carries (a version-2 file's
    # by their hash, which only the retired weights themselves have)
    retired_v1 = tiny_file_naming_a_retired_model(1, rng)
    shutil.copy(tiny_zoo / "tiny-fine.safetensors", tmp_path / "cae-gdn-v2.safetensors")
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    assert api.decode(retired_v1, device="cpu").shape == (24, 32, 3)


def test_a_version_2_file_of_an_unknown_model_number_fails_in_one_line(tiny_zoo: Path, rng) -> None:
    data = api.encode(smooth_image(rng, 24, 32, 3), model="tiny-fine", device="cpu")
    unknown = max(m.number for m in CAT.models.values()) + 1
    with pytest.raises(
        ModelError, match=rf"no shipped model has number {unknown} \(this caec ships 1 \(cae-gdn-v3-high\)"
    ) as err:
        api.decode(rewrite_v2(data, model_number=unknown), device="cpu")
    assert "\n" not in str(err.value)


def test_names_resolve_in_caec_models_folders_in_order_then_the_catalogue(tmp_path: Path, monkeypatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for folder in (first, second):
        (folder / "m.safetensors").write_bytes(b"")
        (folder / "m.family.json").write_text("{}")
    (second / "only.safetensors").write_bytes(b"")
    (second / "cae-gdn-v3.family.json").write_text("{}")
    monkeypatch.setenv("CAEC_MODELS", os.pathsep.join([str(first), "", str(second)]))
    assert zoo.user_dirs() == [first, second]
    # in one folder a family before a model of its name; an earlier folder before a later one
    assert zoo.resolve("m") == zoo.Resolved("m", "family", first / "m.family.json")
    assert zoo.resolve("m", name_only=True) == zoo.Resolved("m", "model", first / "m.safetensors")
    assert zoo.resolve("only").path == second / "only.safetensors"
    # a user's family of a shipped name is what the name means to that user
    assert zoo.resolve("cae-gdn-v3").path == second / "cae-gdn-v3.family.json"
    high = CAT.models["cae-gdn-v3-high"]
    assert zoo.resolve(high.name) == zoo.Resolved(high.name, "model", high.path)


def test_paths_are_paths_and_names_from_files_never_are(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CAEC_MODELS", raising=False)
    assert zoo.resolve("x.safetensors") == zoo.Resolved("x", "model", Path("x.safetensors"))
    assert zoo.resolve(f"{tmp_path}/x.family.json") == zoo.Resolved("x", "family", tmp_path / "x.family.json")
    assert zoo.resolve(tmp_path / "cae-gdn-v3").kind == "model"  # a path, whatever its name
    assert zoo.resolve(Path("cae-gdn-v3")).kind == "family"  # `--init NAME` comes as a Path
    assert zoo.resolve(f"dir{os.sep}cae-gdn-v3").path == Path("dir", "cae-gdn-v3")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "loose").write_bytes(b"")
    assert zoo.resolve("loose").path == Path("loose")  # a file in the working folder, given bare
    with pytest.raises(ModelError, match="'loose' not found in the models shipped with caec"):
        zoo.resolve("loose", name_only=True)


def test_a_family_is_no_single_model(monkeypatch) -> None:
    monkeypatch.delenv("CAEC_MODELS", raising=False)
    with pytest.raises(ModelError, match="'cae-gdn-v3' is a model family"):
        zoo.resolve_model("cae-gdn-v3")


def test_a_shipped_familys_members_are_the_shipped_models(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "cae-gdn-v3-high.safetensors").write_bytes(b"")
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    shipped = read_family(CAT.families["cae-gdn-v3"].path)
    assert zoo.member_path(shipped, "cae-gdn-v3-high") == CAT.models["cae-gdn-v3-high"].path
    assert zoo.resolve_model("cae-gdn-v3-high") == tmp_path / "cae-gdn-v3-high.safetensors"


def test_a_users_family_finds_members_beside_it_first(tiny_models: Path, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "tiny-fine.safetensors").write_bytes(b"")
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    family = read_family(tiny_models / f"{TINY_FAMILY}.family.json")
    assert zoo.member_path(family, "tiny-fine") == tiny_models / "tiny-fine.safetensors"
    moved = tmp_path / "moved.family.json"
    shutil.copy(tiny_models / f"{TINY_FAMILY}.family.json", moved)
    gone = read_family(moved)
    with pytest.raises(ModelError, match=f"'tiny-coarse' not found in {tmp_path}, the models shipped"):
        zoo.member_path(gone, "tiny-coarse")


def _header_only(path: Path, weights_hash: str) -> None:
    """A safetensors file with no tensors: enough for what reads headers alone."""
    meta = {"architecture": "cae-gdn", "config": "{}", "weights_hash": weights_hash}
    header = json.dumps({"__metadata__": meta}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header)


def test_weights_are_found_by_hash_or_a_prefix_of_eight_bytes(tiny_models: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CAEC_MODELS", os.pathsep.join([str(tmp_path), str(tiny_models)]))
    high = CAT.models["cae-gdn-v3-high"]
    assert zoo.find_by_hash(high.weights_hash) == zoo.Resolved(high.name, "model", high.path)
    assert zoo.find_by_hash(high.weights_hash[:8]).name == high.name
    tiny = read_model_info(tiny_models / "tiny-other.safetensors").weights_hash
    assert tiny is not None
    (tmp_path / "broken.safetensors").write_bytes(b"not weights")  # skipped, not an error
    assert zoo.find_by_hash(tiny[:8]) == zoo.Resolved("tiny-other", "model", tiny_models / "tiny-other.safetensors")
    # the same weights under two names are no ambiguity: the first folder's
    shutil.copy(tiny_models / "tiny-other.safetensors", tmp_path / "copy.safetensors")
    assert zoo.find_by_hash(tiny).name == "copy"
    _header_only(tmp_path / "a.safetensors", "ab" * 8 + "00" * 8)
    _header_only(tmp_path / "b.safetensors", "ab" * 8 + "11" * 8)
    assert zoo.find_by_hash(bytes.fromhex("ab" * 8 + "11" * 8)).name == "b"
    with pytest.raises(ModelError, match="ambiguous: a, b"):
        zoo.find_by_hash(bytes.fromhex("ab" * 8))
    with pytest.raises(ModelError, match=r"'cae-gdn-v2\.1' was retired"):
        zoo.find_by_hash(CAT.retired["cae-gdn-v2.1"].weights_hash[:8])
    with pytest.raises(ModelError, match=f"no model with weights hash {'00' * 8} in {tmp_path}"):
        zoo.find_by_hash(bytes(8))
    for size in (7, 17):
        with pytest.raises(ValueError, match=r"8\.\.16 bytes"):
            zoo.find_by_hash(bytes(size))


def test_shipped_models_are_found_by_number() -> None:
    assert zoo.resolve_number(1) == zoo.Resolved("cae-gdn-v3-high", "model", CAT.models["cae-gdn-v3-high"].path)
    assert zoo.resolve_number(2).name == "cae-gdn-v3-low"
    assert zoo.resolve_number(4).name == "mnist-dae-30"
    unknown = max(m.number for m in CAT.models.values()) + 1
    with pytest.raises(
        ModelError, match=rf"no shipped model has number {unknown} \(this caec ships 1 \(cae-gdn-v3-high\)"
    ):
        zoo.resolve_number(unknown)


def test_models_lists_retired_ones_only_when_asked(tmp_path: Path, monkeypatch) -> None:
    shipped = {e["name"]: e for e in zoo.list_models()}
    assert shipped["cae-gdn-v3-low"]["number"] == 2 and shipped["cae-gdn-v3-low"]["codec"] == "cae-pca-j2k"
    assert not any(e["kind"] == "retired" for e in shipped.values())
    (tmp_path / "cae-gdn-v1.safetensors").write_bytes(b"")  # the user's own: listed as theirs
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    entries = {e["name"]: e for e in zoo.list_models(retired=True)}
    assert entries["cae-gdn-v1"]["kind"] == "model" and "error" in entries["cae-gdn-v1"]
    assert entries["cae-gdn-v2.1"] == {
        "name": "cae-gdn-v2.1",
        "kind": "retired",
        "codec": "cae-pca-j2k",
        "weights_hash": "ecd25652285ed2d21342ae934816f125",
        "retired_in": "0.2",
        "superseded_by": "cae-gdn-v3",
    }
    table = CliRunner().invoke(app, ["models", "--retired"], env={"COLUMNS": "1000"})
    assert table.exit_code == 0, table.output
    assert "retired in caec 0.2, superseded by cae-gdn-v3" in table.stdout and "ecd25652285e" in table.stdout


def test_resolving_listing_and_retired_files_need_no_torch(retired_cae: bytes, tmp_path: Path) -> None:
    """torch takes seconds to import: naming, listing and refusing a retired model wait for none of it."""
    cae = tmp_path / "old.cae"
    cae.write_bytes(retired_cae)
    child = (
        "import sys\n"
        "from cae_codec import api, zoo\n"
        "from cae_codec.errors import ModelError\n"
        "zoo.resolve('cae-gdn-v3'), zoo.list_models(retired=True)\n"
        "zoo.find_by_hash(bytes.fromhex('8aad9f0be73ca33a'))\n"
        "try:\n"
        f"    api.decode(open({str(cae)!r}, 'rb').read())\n"
        "except ModelError as e:\n"
        "    print('torch' in sys.modules, e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CAEC_MODELS"}
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, cwd=REPO, env=env, check=True)
    assert done.stdout.startswith("False model 'cae-gdn-v2' was retired"), done.stdout + done.stderr


def test_a_retired_models_number_stays_reserved(tiny_zoo: Path, tmp_path: Path, monkeypatch, rng) -> None:
    """A model retired after it shipped under a number (version-2 files name it by number):
    the number resolves as the retired name does, one error line, or its weights on $CAEC_MODELS."""
    import dataclasses

    data = api.encode(smooth_image(rng, 24, 32, 3), model="tiny-fine", device="cpu")
    number = max(m.number for m in CAT.models.values()) + 1
    fine = read_model_info(tiny_zoo / "tiny-fine.safetensors").weights_hash
    assert fine is not None
    old = zoo.RetiredModel("tiny-old", "cae-pca-j2k", fine, "9.1", "9.0", "cae-gdn-v3", number)
    patched = dataclasses.replace(CAT, retired={**CAT.retired, "tiny-old": old})
    monkeypatch.setattr(zoo, "catalogue", lambda: patched)
    numbered = rewrite_v2(data, model_number=number)
    with pytest.raises(ModelError, match=r"^model 'tiny-old' was retired in caec 9.1 \(superseded by cae-gdn-v3\)"):
        api.decode(numbered, device="cpu")
    shutil.copy(tiny_zoo / "tiny-fine.safetensors", tmp_path / "tiny-old.safetensors")
    monkeypatch.setenv("CAEC_MODELS", str(tmp_path))
    assert api.decode(numbered, device="cpu").shape == (24, 32, 3)


def test_no_number_is_given_twice() -> None:
    numbers = [m.number for m in CAT.models.values()] + [r.number for r in CAT.retired.values() if r.number]
    assert len(numbers) == len(set(numbers))
