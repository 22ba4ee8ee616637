"""tools/fuzz.py's driver (`make fuzz`): it counts every case, and saves and reports the ones that are bugs.

What each family draws and what the decoder must do with it is tests/test_fuzz.py's; here the
decoding is stood in for, so that the driver's own bookkeeping is what runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cae_codec.errors import FormatError
from tools import fuzz


def test_a_clean_run_exits_0(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(fuzz, "decode_outcome", lambda data: "FormatError: N")
    crashes = tmp_path / "crashes"
    assert fuzz.main(["--cases", str(len(fuzz.FAMILIES)), "--crashes", str(crashes)]) == 0
    out = capsys.readouterr().out
    assert "no bugs: every malformed input raised a CaecError" in out and not crashes.exists()
    for family in fuzz.FAMILIES:
        assert f"\n{family}: 1 cases" in out  # --cases shared among the drawn families
    # the exhaustive sets, on the files of either version
    for version in ("v1", "v2"):
        for fixed in ("truncation", "header-bits+crc", "huge-header", "hostile-streams"):
            assert f"\n{version}-{fixed}: " in out


def test_bugs_are_saved_and_fail_the_run(tmp_path: Path, monkeypatch, capsys) -> None:
    def outcome(data: bytes) -> str:
        if len(data) == 3:  # one truncation of each seed file, of either version
            raise KeyError("not a CaecError")
        return fuzz._kind(FormatError("bad"))  # a CaecError is an outcome, never a bug

    monkeypatch.setattr(fuzz, "decode_outcome", outcome)
    crashes = tmp_path / "crashes"
    assert fuzz.main(["--cases", "9", "--crashes", str(crashes)]) == 1
    out = capsys.readouterr().out
    saved = sorted(crashes.glob("bug-*.cae"))
    assert len(saved) >= 10 and all(len(p.read_bytes()) == 3 for p in saved)
    assert f"{len(saved)} bugs, 0 slow cases; inputs saved in {crashes}/" in out
    assert "BUG 0: KeyError: 'not a CaecError'" in out


@pytest.mark.parametrize("args", [["--cases", "x"], ["--slow"]])
def test_bad_arguments_stop_before_any_case(args: list[str]) -> None:
    with pytest.raises(SystemExit):
        fuzz.main(args)
