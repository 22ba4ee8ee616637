"""tools/web_load.py: a small run against its own caec serve, and its verdict on made-up rounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import web_load


def a_round(**changes: object) -> web_load.Round:
    base = dict(requests=10, ok=6, busy=4, failed=0, wall_s=1.0, latency_ok_p50_s=0.5, latency_ok_max_s=0.9,
                rss_peak_mib=500.0, rss_after_mib=410.0, temp_entries_after=2)  # fmt: skip
    return web_load.Round(**{**base, **changes})  # type: ignore[arg-type]


def test_the_verdict_names_each_way_a_server_can_fail() -> None:
    assert web_load.check([a_round()], rss_base=400.0, temp_base=2, tolerance=64) == []
    problems = web_load.check(
        [a_round(failed=1, failures=["HTTP 500"]), a_round(ok=0, busy=10), a_round(temp_entries_after=3),
         a_round(rss_after_mib=470.0)],
        rss_base=400.0, temp_base=2, tolerance=64,
    )  # fmt: skip
    assert [p.split(":")[0] for p in problems] == ["round 1", "round 2", "round 3", "round 4"]
    assert "neither completed nor got 503" in problems[0] and "HTTP 500" in problems[0]
    assert "no request completed" in problems[1]
    assert "3 temporary entries after, 2 before" in problems[2]
    assert "470 MiB after, 400 MiB before" in problems[3]


def test_requests_are_bounded() -> None:
    with pytest.raises(SystemExit):
        web_load.main(["--requests", str(web_load.MAX_REQUESTS + 1)])


@pytest.mark.slow
def test_a_small_load_completes_or_gets_503(
    tmp_path: Path, tiny_models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load.json"
    args = ["--requests", "6", "--rounds", "1", "--workers", "1", "--queue", "1", "--side", "48", "--codecs", "jpeg"]
    assert web_load.main([*args, "--json", str(out)]) == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    (r,) = report["rounds"]
    assert r["ok"] + r["busy"] == 6 and r["failed"] == 0 and r["ok"] >= 1
    assert r["temp_entries_after"] == report["temp_entries_baseline"]
    assert report["held"] and report["rss_baseline_mib"] > 0
