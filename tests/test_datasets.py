"""The Kodak download: checked against each file's SHA-256, and only the images a run uses.

A real HTTP server on 127.0.0.1 stands in for the canonical site ($CAEC_KODAK_URL points at
it), serving copies of shared/data/kodak and one corrupted file; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cae_codec.cli import app
from cae_codec.errors import CaecError
from cae_codec.evaluate import datasets


class _Mirror:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        mirror = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                mirror.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                return None  # the test's output stays clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{{name}}"


@pytest.fixture
def mirror(kodak_dir: Path, tmp_path: Path, monkeypatch) -> Iterator[_Mirror]:
    """kodim01 and kodim03 as published, kodim02 with one byte changed; the cache is empty."""
    root = tmp_path / "mirror"
    root.mkdir()
    for name in ("kodim01.png", "kodim03.png"):
        shutil.copy(kodak_dir / name, root / name)
    bad = bytearray((kodak_dir / "kodim02.png").read_bytes())
    bad[len(bad) // 2] ^= 0xFF  # still a PNG by its magic: only the checksum can tell
    (root / "kodim02.png").write_bytes(bytes(bad))
    m = _Mirror(root)
    thread = threading.Thread(target=m.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(datasets.KODAK_URL_ENV, m.url)
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    try:
        yield m
    finally:
        m.server.shutdown()
        m.server.server_close()
        thread.join()


def _cache(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "caec" / "kodak"


def test_the_checksums_are_those_of_the_shared_copy(kodak_dir: Path) -> None:
    assert len(datasets.KODAK_SHA256) == 24
    for name, digest in datasets.KODAK_SHA256.items():
        assert hashlib.sha256((kodak_dir / name).read_bytes()).hexdigest() == digest, name


def test_bdrate_with_limit_1_fetches_one_image(mirror: _Mirror, tmp_path: Path) -> None:
    args = ["bdrate", "--dataset", "kodak", "--limit", "1", "--codecs", "jpeg", "--anchor", "jpeg"]
    r = CliRunner().invoke(app, [*args, "--rates", "0.5,1.0", "-j", "1"])
    assert r.exit_code == 0, r.output
    assert mirror.requests == ["/kodim01.png"]
    assert sorted(p.name for p in _cache(tmp_path).iterdir()) == ["kodim01.png"]


def test_a_corrupted_download_is_refused_and_not_kept(mirror: _Mirror, tmp_path: Path, kodak_dir: Path) -> None:
    with pytest.raises(CaecError, match=r"kodim02.png is not the Kodak image kodim02.png \(SHA-256") as err:
        datasets.resolve_dataset("kodak", limit=3)
    assert "\n" not in str(err.value)
    # the intact file before it is kept, nothing of the bad one (no temporary either)
    assert sorted(p.name for p in _cache(tmp_path).iterdir()) == ["kodim01.png"]
    assert (_cache(tmp_path) / "kodim01.png").read_bytes() == (kodak_dir / "kodim01.png").read_bytes()
    # kodim01 now comes from the cache: no second request for it
    mirror.requests.clear()
    ds = datasets.resolve_dataset("kodak", limit=1)
    assert [p.name for p in ds.images] == ["kodim01.png"] and mirror.requests == []


def test_a_damaged_cached_image_is_fetched_again(mirror: _Mirror, tmp_path: Path, kodak_dir: Path) -> None:
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    # what an older caec kept: anything that began like a PNG
    (cache / "kodim01.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated")
    datasets.resolve_dataset("kodak", limit=1)
    assert mirror.requests == ["/kodim01.png"]
    assert (cache / "kodim01.png").read_bytes() == (kodak_dir / "kodim01.png").read_bytes()


def test_a_mirror_template_without_the_name_is_one_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv(datasets.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv(datasets.KODAK_URL_ENV, "http://127.0.0.1:9/kodak/")
    with pytest.raises(CaecError, match=r"CAEC_KODAK_URL must contain \{name\}"):
        datasets.resolve_dataset("kodak", limit=1)


def test_limit_applies_to_folders_and_data_dirs(kodak_dir: Path, tmp_path: Path) -> None:
    assert [p.name for p in datasets.resolve_dataset("kodak", kodak_dir, limit=2).images] == [
        "kodim01.png",
        "kodim02.png",
    ]
    partial_set = tmp_path / "two"
    partial_set.mkdir()
    shutil.copy(kodak_dir / "kodim01.png", partial_set / "kodim01.png")
    assert len(datasets.resolve_dataset("kodak", partial_set, limit=1).images) == 1
    with pytest.raises(CaecError, match=r"no complete Kodak set \(kodim01.png..kodim24.png\)"):
        datasets.resolve_dataset("kodak", partial_set)
    assert len(datasets.resolve_dataset(str(kodak_dir), limit=3).images) == 3
