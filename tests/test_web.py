"""`caec serve`'s HTTP API, in-process through Starlette's test client (issue 18): what the page
shows is what the library and the evaluation measure; codecs are offered by their capabilities;
hostile uploads give one sentence; the pool refuses work beyond its queue with 503."""

from __future__ import annotations

import base64
import io
import json
import math
import threading
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from cae_codec import api, registry
from cae_codec.container import v2
from cae_codec.contract import Capabilities, CodecInfo, QualityScale
from cae_codec.evaluate.metrics import as_rgb8, bits_per_pixel, ms_ssim_rgb, psnr_rgb
from cae_codec.imageio import DEFAULT_MAX_PIXELS
from cae_codec.web import work
from cae_codec.web.app import Settings, create_app
from tests import fake_codec, fake_progressive
from tests.conftest import KODAK, SHARED_DATA, smooth_image

MNIST = SHARED_DATA / "mnist"


def png_bytes(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels.squeeze()).save(buf, "PNG")
    return buf.getvalue()


def pixels_of(b64: str) -> np.ndarray:
    arr = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))
    return arr[:, :, None] if arr.ndim == 2 else arr


def events(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    out = [json.loads(line) for line in resp.text.splitlines() if line]
    assert out[-1] == {"event": "end"}, out[-3:]
    return out


def the_error(resp: Any) -> str:
    """The one sentence a failed request gives: an error status's body or the stream's error event."""
    assert "Traceback" not in resp.text
    if resp.status_code != 200:
        return str(resp.json()["error"])
    errors = [e for e in events(resp) if e["event"] == "error"]
    assert len(errors) == 1, resp.text[:500]
    message = str(errors[0]["message"])
    assert "\n" not in message
    return message


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return smooth_image(np.random.default_rng(7), 176, 184, 3)


@pytest.fixture
def client(tiny_models: Path):
    with TestClient(create_app(Settings(workers=1, queue=4))) as c:
        yield c


@pytest.fixture
def progressive(monkeypatch: pytest.MonkeyPatch) -> str:
    """The fake progressive codec registered for one test (the rnn codec of issue 16 declares
    the same capability)."""
    monkeypatch.setitem(registry.CODECS, fake_progressive.ID, fake_progressive.INFO)
    monkeypatch.setitem(v2.CODEC_NUMBERS, fake_progressive.ID, fake_progressive.NUMBER)
    monkeypatch.setitem(v2.CODEC_IDS, fake_progressive.NUMBER, fake_progressive.ID)
    return fake_progressive.ID


# ---------------------------------------------------------------- what is offered
def test_every_registered_codec_is_offered_by_its_capabilities(monkeypatch: pytest.MonkeyPatch) -> None:
    digits = CodecInfo(
        "fake-digits", "fake digits", "the tests", "", fake_codec.__name__, QualityScale(1, 8, 6),
        Capabilities(fixed_size=(8, 8), channels=(1,), learned=False),
    )  # fmt: skip
    monkeypatch.setitem(registry.CODECS, fake_codec.ID, fake_codec.INFO)
    monkeypatch.setitem(registry.CODECS, "fake-digits", digits)
    with TestClient(create_app(Settings())) as c:
        listed = c.get("/api/codecs").json()
    by_id = {o["id"]: o for o in listed["codecs"]}
    assert set(registry.CODECS) <= set(by_id)
    assert {"jpeg", "jpeg2000", "webp", "avif", "jpegxl"} <= set(by_id)
    # any size and RGB among its layouts: the photo page; one fixed size: the digit page
    assert by_id[fake_codec.ID]["photo"] and not by_id[fake_codec.ID]["fixed_size"]
    assert by_id["fake-digits"]["fixed_size"] and not by_id["fake-digits"]["photo"]
    assert by_id["mnist-dae"]["fixed_size"] and not by_id["mnist-dae"]["photo"]
    assert by_id[fake_codec.ID]["setting"] == {"name": "quality", "lo": 1, "hi": 8, "step": 1, "default": 6}
    assert by_id[registry.DEFAULT_CODEC]["default"] and listed["default_codec"] == registry.DEFAULT_CODEC
    assert listed["limits"]["max_pixels"] == DEFAULT_MAX_PIXELS  # the CLI's


def test_the_page_and_its_files_are_served_from_the_package(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert client.get("/mnist").status_code == 200
    for name in ("app.js", "common.js", "mnist.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200
    # nothing is fetched from elsewhere: no absolute URL in the page's files
    for name in ("index.html", "mnist.html", "app.js", "common.js", "mnist.js", "style.css"):
        text = client.get("/" if name == "index.html" else f"/static/{name}").text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name


# ---------------------------------------------------------------- compressing
def test_quality_mode_reports_what_the_library_measures(client: TestClient, photo: np.ndarray) -> None:
    resp = client.post(
        "/api/compress?codecs=cae-pca-j2k,jpeg&mode=quality&settings=cae-pca-j2k:5,jpeg:60", content=png_bytes(photo)
    )
    evs = events(resp)
    image = next(e for e in evs if e["event"] == "image")
    assert (image["width"], image["height"]) == (184, 176)
    assert np.array_equal(pixels_of(image["png"]), photo)
    results = {e["codec"]: e for e in evs if e["event"] == "result"}
    assert set(results) == {"cae-pca-j2k", "jpeg"}
    for r in results.values():
        data = base64.b64decode(r["file"])
        assert r["bytes"] == len(data)
        assert r["bpp"] == pytest.approx(bits_per_pixel(len(data), 176, 184))
        rec = pixels_of(r["png"])
        assert r["psnr"] == pytest.approx(psnr_rgb(photo, rec))
        assert r["ms_ssim"] == pytest.approx(ms_ssim_rgb(photo, rec))
        assert r["encoding_time"] > 0 and r["decoding_time"] > 0
    # the .cae file is the library's at that quality, and decodes to the pixels shown
    cae = base64.b64decode(results["cae-pca-j2k"]["file"])
    assert cae == api.encode(photo, quality=5, device="cpu")
    assert np.array_equal(as_rgb8(api.decode(cae, device="cpu")), pixels_of(results["cae-pca-j2k"]["png"]))
    assert base64.b64decode(results["jpeg"]["file"])[:2] == b"\xff\xd8"
    progress = [e for e in evs if e["event"] == "progress"]
    assert progress[-1]["done"] == progress[-1]["total"] == 2


def test_target_rates_go_through_the_rate_search_and_draw_a_plot(client: TestClient, photo: np.ndarray) -> None:
    evs = events(client.post("/api/compress?codecs=cae-pca-j2k,webp&mode=bpp&bpp=0.5,1.5", content=png_bytes(photo)))
    results = [e for e in evs if e["event"] == "result"]
    assert len(results) == 4
    for r in results:
        assert r["bytes"] <= math.floor(r["target_bpp"] * 176 * 184 / 8)
        assert r["bytes"] == len(base64.b64decode(r["file"]))
    plot = next(e for e in evs if e["event"] == "plot")
    assert base64.b64decode(plot["png"])[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_size_as_caec_gives_every_codec_caecs_byte_budget(client: TestClient, photo: np.ndarray) -> None:
    evs = events(
        client.post("/api/compress?codecs=jpeg,jpeg2000&mode=size&settings=cae-pca-j2k:6", content=png_bytes(photo))
    )
    results = [e for e in evs if e["event"] == "result"]
    reference = results[0]
    assert reference["codec"] == registry.DEFAULT_CODEC and reference["reference"]
    assert reference["bytes"] == len(api.encode(photo, quality=6, device="cpu"))
    for r in results[1:]:
        assert r["target_bytes"] == reference["bytes"]
        assert 0 < r["bytes"] <= reference["bytes"]


def test_a_progressive_codec_shows_each_prefix(progressive: str, photo: np.ndarray) -> None:
    with TestClient(create_app(Settings())) as c:
        assert next(o for o in c.get("/api/codecs").json()["codecs"] if o["id"] == progressive)["capabilities"][
            "progressive"
        ]
        evs = events(c.post(f"/api/compress?codecs={progressive}&mode=quality&settings={progressive}:5",
                            content=png_bytes(photo)))  # fmt: skip
    result = next(e for e in evs if e["event"] == "result")
    passes = [e for e in evs if e["event"] == "pass"]
    assert [p["chunks"] for p in passes] == [1, 2, 3, 4, 5] and all(p["of"] == 5 for p in passes)
    sizes = [p["bytes"] for p in passes]
    assert sizes == sorted(sizes) and sizes[-1] == result["bytes"]
    psnrs = [p["psnr"] for p in passes]
    assert psnrs == sorted(psnrs)  # coarse to fine
    assert base64.b64decode(passes[-1]["file"]) == base64.b64decode(result["file"])
    assert passes[-1]["psnr"] == pytest.approx(result["psnr"])


def test_codecs_that_cannot_code_photos_are_refused(client: TestClient, photo: np.ndarray) -> None:
    assert "does not code photos" in the_error(client.post("/api/compress?codecs=mnist-dae", content=png_bytes(photo)))
    assert "unknown codec" in the_error(client.post("/api/compress?codecs=nope", content=png_bytes(photo)))
    assert "choose at least one codec" in the_error(client.post("/api/compress?codecs=", content=png_bytes(photo)))
    assert "target rates" in the_error(
        client.post("/api/compress?codecs=jpeg&mode=bpp&bpp=0.5,x", content=png_bytes(photo))
    )
    assert "quality must be 1..10" in the_error(
        client.post("/api/compress?codecs=cae-pca-j2k&settings=cae-pca-j2k:11", content=png_bytes(photo))
    )


# ---------------------------------------------------------------- hostile uploads
def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` (its data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not an image at all", "not an image"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "the upload"),  # a PNG cut short
        (bomb_png(40000, 40000), "caec serve --no-pixel-limit lifts the server's limit"),  # 1.6 gigapixels declared
        (b"\x89CAE\r\n\x1a\n\x02" + bytes(40), "this is a .cae file"),
    ],
)
def test_hostile_images_give_one_sentence(client: TestClient, body: bytes, needle: str) -> None:
    assert needle in the_error(client.post("/api/compress?codecs=jpeg", content=body))


def test_a_truncated_real_image_gives_one_sentence(client: TestClient, photo: np.ndarray) -> None:
    data = png_bytes(photo)
    for cut in (len(data) // 3, len(data) // 2):  # inside the pixel data (a PNG without its end chunk still reads)
        assert "the upload" in the_error(client.post("/api/compress?codecs=jpeg", content=data[:cut]))


def test_uploads_over_the_limit_or_empty_are_refused(tiny_models: Path, photo: np.ndarray) -> None:
    with TestClient(create_app(Settings(max_upload_bytes=1000))) as c:
        resp = c.post("/api/compress?codecs=jpeg", content=png_bytes(photo))
        assert resp.status_code == 413 and "limit" in resp.json()["error"]
        # no Content-Length: the limit holds as the bytes arrive
        resp = c.post("/api/compress?codecs=jpeg", content=iter([png_bytes(photo)]))
        assert resp.status_code == 413
        resp = c.post("/api/compress?codecs=jpeg", content=b"")
        assert resp.status_code == 400 and resp.json()["error"] == "the request carries no file"


def test_a_lower_pixel_limit_is_the_servers(tiny_models: Path, photo: np.ndarray) -> None:
    with TestClient(create_app(Settings(max_pixels=1000))) as c:
        assert "limit of 1000 pixels" in the_error(c.post("/api/compress?codecs=jpeg", content=png_bytes(photo)))


# ---------------------------------------------------------------- decoding
def test_a_dropped_cae_file_decodes_to_the_clis_pixels(client: TestClient, photo: np.ndarray) -> None:
    data = api.encode(photo, quality=3, device="cpu")
    evs = events(client.post("/api/decode", content=data))
    info = next(e for e in evs if e["event"] == "info")["info"]
    assert info["codec"] == registry.DEFAULT_CODEC and info["file_bytes"] == len(data)
    decoded = next(e for e in evs if e["event"] == "decoded")
    assert np.array_equal(pixels_of(decoded["png"]), api.decode(data, device="cpu"))
    assert decoded["bytes"] == len(data)


def test_a_several_images_file_decodes_to_a_grid(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.CODECS, fake_codec.ID, fake_codec.INFO)
    monkeypatch.setitem(v2.CODEC_NUMBERS, fake_codec.ID, fake_codec.NUMBER)
    monkeypatch.setitem(v2.CODEC_IDS, fake_codec.NUMBER, fake_codec.ID)
    images = [np.full((6, 5, 1), 40 * i, np.uint8) for i in range(3)]
    decoded = next(e for e in events(client.post("/api/decode", content=fake_codec.pack_images(images, 8)))
                   if e["event"] == "decoded")  # fmt: skip
    assert decoded["images"] == 3
    assert np.array_equal(pixels_of(decoded["png"]), np.concatenate(images, axis=1))


def test_a_progressive_file_decodes_pass_by_pass(client: TestClient, progressive: str, photo: np.ndarray) -> None:
    data = fake_progressive.FakePlanes().pack(photo, 3)
    evs = events(client.post("/api/decode", content=data))
    assert [e["chunks"] for e in evs if e["event"] == "pass"] == [1, 2, 3]


def test_fuzzed_cae_files_give_one_sentence(client: TestClient, photo: np.ndarray) -> None:
    data = api.encode(photo[:64, :64], quality=3, device="cpu")
    rng = np.random.default_rng(3)
    cases = [data[:n] for n in (4, 9, 20, len(data) // 2, len(data) - 1)]
    for _ in range(12):
        flipped = bytearray(data)
        for pos in rng.integers(8, len(data), size=3):
            flipped[pos] ^= 1 << int(rng.integers(8))
        cases.append(bytes(flipped))
    cases.append(data + b"trailing")
    for case in cases:
        resp = client.post("/api/decode", content=case)
        message = the_error(resp) if resp.status_code != 200 or '"error"' in resp.text else None
        # a flip in a payload the CRC does not see can still decode; otherwise one sentence
        if message is not None:
            assert message and len(message) < 400
    assert "not a .cae file" in the_error(client.post("/api/decode", content=png_bytes(photo)))


# ---------------------------------------------------------------- the pool
def test_an_overloaded_server_answers_503_and_recovers(
    tiny_models: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, release = threading.Event(), threading.Event()
    real = work.compress

    def held(*args: Any) -> None:
        started.set()
        assert release.wait(30)
        real(*args)

    monkeypatch.setattr(work, "compress", held)
    with TestClient(create_app(Settings(workers=1, queue=0))) as c:
        body = png_bytes(photo)
        first: list[Any] = []
        thread = threading.Thread(target=lambda: first.append(c.post("/api/compress?codecs=jpeg", content=body)))
        thread.start()
        assert started.wait(30)
        busy = c.post("/api/compress?codecs=jpeg", content=body)
        assert busy.status_code == 503 and "busy" in busy.json()["error"]
        release.set()
        thread.join(30)
        assert any(e["event"] == "result" for e in events(first[0]))
        # its place is free again once the job has ended
        assert any(e["event"] == "result" for e in events(c.post("/api/compress?codecs=jpeg", content=body)))


def test_a_job_past_its_time_out_stops_with_one_sentence(
    tiny_models: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(raw: bytes, req: Any, offered: Any, limits: Any, report: Any, check: Any) -> None:
        threading.Event().wait(0.3)
        check()
        raise AssertionError("check() should have stopped the job")

    monkeypatch.setattr(work, "compress", slow)
    with TestClient(create_app(Settings(timeout_s=0.1))) as c:
        assert "longer than the server's limit of 0.1 s" in the_error(
            c.post("/api/compress?codecs=jpeg", content=png_bytes(photo))
        )


def test_an_internal_failure_is_one_sentence_not_a_traceback(
    tiny_models: Path, photo: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(work, "compress", broken)
    with TestClient(create_app(Settings())) as c:
        assert the_error(c.post("/api/compress?codecs=jpeg", content=png_bytes(photo))).startswith(
            "internal error (KeyError)"
        )


# ---------------------------------------------------------------- photos and digits
def test_the_dataset_is_offered_by_name_only(tiny_models: Path, tmp_path: Path, photo: np.ndarray) -> None:
    (tmp_path / "one.png").write_bytes(png_bytes(photo))
    (tmp_path / "notes.txt").write_text("not an image")
    with TestClient(create_app(Settings(dataset=tmp_path))) as c:
        assert c.get("/api/dataset").json() == {"images": ["one.png"]}
        assert c.get("/api/dataset/one.png").content == (tmp_path / "one.png").read_bytes()
        for name in ("notes.txt", "..%2Fone.png", "%2Fetc%2Fpasswd", "missing.png"):
            assert c.get(f"/api/dataset/{name}").status_code == 404


def test_a_drawing_is_normalized_as_mnist_digits_were() -> None:
    canvas = np.zeros((280, 280, 3), np.uint8)
    canvas[40:240, 150:170] = 255  # a tall stroke right of centre: a "1"
    digit = work.normalize_digit(canvas, (28, 28))
    assert digit.shape == (28, 28, 1)
    ys, xs = np.nonzero(digit[:, :, 0] > 0)
    assert ys.max() - ys.min() + 1 <= 21 and xs.max() - xs.min() + 1 <= 21  # the 20x20 box (+ the filter's edge)
    weights = digit[:, :, 0].astype(float)
    cy, cx = (np.indices(weights.shape) * weights).reshape(2, -1).sum(1) / weights.sum()
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    with pytest.raises(work.CaecError, match="empty"):
        work.normalize_digit(np.zeros((50, 50, 1), np.uint8), (28, 28))


def test_a_drawn_digit_is_coded_by_the_fixed_size_codecs(tiny_models: Path) -> None:
    canvas = np.zeros((280, 280, 3), np.uint8)
    canvas[60:220, 120:150] = 255
    mnist = MNIST if (MNIST / "t10k-images-idx3-ubyte.gz").is_file() else None
    with TestClient(create_app(Settings(mnist=mnist))) as c:
        evs = events(c.post("/api/digit?quality=5", content=png_bytes(canvas)))
    digit = next(e for e in evs if e["event"] == "digit" and e["codec"] == "mnist-dae")
    data = base64.b64decode(digit["file"])
    assert digit["bytes"] == len(data) and digit["file_hex"] == data.hex()
    assert digit["quality"] == 5
    assert np.array_equal(pixels_of(digit["decoded"]), api.decode(data, device="cpu"))
    assert len(digit["code"]) == digit["code_values"] > 0
    if mnist is None:
        assert "--mnist" in digit["pca_note"]
    else:
        assert digit["pca_components"] == digit["code_values"]
        assert pixels_of(digit["pca"]).shape == (28, 28, 1)


def test_test_digits_are_listed_and_coded(tiny_models: Path) -> None:
    if not (MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {MNIST}")
    with TestClient(create_app(Settings(mnist=MNIST))) as c:
        listed = c.get("/api/digits?start=0&count=3").json()
        assert listed["total"] == 10000 and [d["index"] for d in listed["digits"]] == [0, 1, 2]
        assert listed["digits"][0]["label"] == 7
        evs = events(c.post("/api/digit?digit=0"))
        assert "no digit 10000" in the_error(c.post("/api/digit?digit=10000"))
    digit = next(e for e in evs if e["event"] == "digit")
    assert digit["error"] < digit["pca_error"]  # the paper's 30-value code against PCA-30 (docs/mnist.md)


def test_without_mnist_the_digit_list_says_how_to_get_it(client: TestClient) -> None:
    resp = client.get("/api/digits")
    assert resp.status_code == 404 and "--mnist" in resp.json()["error"]


def test_kodak_photo_through_the_api(tiny_models: Path) -> None:
    if not (KODAK / "kodim01.png").is_file():
        pytest.skip(f"Kodak not found in {KODAK}")
    with TestClient(create_app(Settings(dataset=KODAK))) as c:
        assert len(c.get("/api/dataset").json()["images"]) == 24
        raw = c.get("/api/dataset/kodim05.png").content
        evs = events(c.post("/api/compress?codecs=jpeg&mode=quality", content=raw))
    assert next(e for e in evs if e["event"] == "image")["width"] == 768


# ---------------------------------------------------------------- caec serve
@pytest.mark.slow
def test_caec_serve_prints_its_url_refuses_a_taken_port_and_stops_on_ctrl_c(tiny_models: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    cmd = [sys.executable, "-m", "cae_codec", "serve", "--port", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("caec ") and "serving on http://127.0.0.1:" in line
        url = line.split("serving on ")[1].split()[0]
        with urllib.request.urlopen(f"{url}api/codecs", timeout=30) as resp:
            assert json.loads(resp.read())["default_codec"] == registry.DEFAULT_CODEC
        port = url.rstrip("/").rsplit(":", 1)[1]
        taken = subprocess.run([*cmd[:-1], port], capture_output=True, text=True, env=env, timeout=120)
        assert taken.returncode == 1
        assert taken.stderr.strip() == f"caec: error: cannot listen on 127.0.0.1:{port}: Address already in use"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_warns_when_it_listens_beyond_this_machine() -> None:
    from cae_codec.web.cli import _is_loopback

    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("192.168.1.2") and not _is_loopback("example.org")


def test_the_page_goes_into_the_wheel() -> None:
    """Every file of static/ matches the package data pyproject.toml declares for cae_codec.web
    (tests/test_wheel.py builds the wheel; this checks the declaration without building)."""
    import fnmatch

    from tests.conftest import REPO

    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = data["tool"]["setuptools"]["package-data"]["cae_codec.web"]
    web = REPO / "cae_codec" / "web"
    files = [p.relative_to(web).as_posix() for p in (web / "static").rglob("*") if p.is_file()]
    assert files and all(any(fnmatch.fnmatch(f, pat) for pat in patterns) for f in files), (files, patterns)


def test_a_client_that_leaves_stops_its_job_at_the_next_step() -> None:
    import asyncio

    from cae_codec.web.pool import Job, ndjson

    async def leave_early() -> Job:
        job = Job(asyncio.get_running_loop(), timeout_s=60)
        job.report({"event": "started"})
        stream = ndjson(job)
        await anext(stream)  # the first event reached the client, which then goes away
        await stream.aclose()
        return job

    job = asyncio.run(leave_early())
    with pytest.raises(work.Stopped, match="cancelled"):
        job.check()


def test_a_learned_codec_without_its_model_is_offered_disabled_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, photo: np.ndarray
) -> None:
    import dataclasses

    missing = dataclasses.replace(
        fake_codec.INFO, id="fake-learned", label="fake learned", capabilities=Capabilities(learned=True),
        default_model="no-such-model",
    )  # fmt: skip
    monkeypatch.setitem(registry.CODECS, "fake-learned", missing)
    with TestClient(create_app(Settings())) as c:
        entry = next(o for o in c.get("/api/codecs").json()["codecs"] if o["id"] == "fake-learned")
        assert entry["unavailable"].startswith("fake learned: model 'no-such-model' not found")
        resp = c.post("/api/compress?codecs=fake-learned", content=png_bytes(photo))
        assert resp.status_code == 400 and "no-such-model" in resp.json()["error"]
