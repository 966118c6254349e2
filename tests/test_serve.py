"""``nicegan serve``: the translation page and its API against a live server, bad uploads, 20 parallel clients, the
command line, and the page in a real headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import socket
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from nicegan import Translator
from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.web.serve import (
    MAX_PIXELS,
    ServeLimits,
    TranslationService,
    UploadError,
    _limited,
    create_app,
    decode_upload,
    render_page,
)
from tests.browser import free_port, serve_app
from tests.conftest import perturbed_checkpoint

LIMITS = ServeLimits(max_upload_bytes=200_000, max_pixels=250_000)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny NICE-GAN checkpoint whose weights are not a fresh draw (so no output is trivially constant)."""
    return perturbed_checkpoint("nicegan", tmp_path_factory.mktemp("serve") / "tiny.pt", seed=3, step=11)


@pytest.fixture(scope="module")
def translator(saved: Path) -> Translator:
    return Translator.load(saved, device="cpu")


@pytest.fixture(scope="module")
def server(translator: Translator) -> Any:
    """``(base URL, service)`` of a live server (uvicorn in a thread) with small limits."""
    service = TranslationService(translator, LIMITS)
    with serve_app(create_app(service)) as url:
        yield url, service


@pytest.fixture()
def client(server: Any) -> Any:
    with httpx.Client(base_url=server[0], timeout=30) as c:
        yield c


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8))


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def from_data_url(url: str) -> np.ndarray:
    head, _, data = url.partition(",")
    assert head == "data:image/png;base64"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"))


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels and whose data is a few bytes: a decompression bomb as
    far as the header goes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def eps() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, format="EPS")
    return buf.getvalue()


def expected(translator: Translator, img: Image.Image, direction: str, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    out, heat = translator(img, direction, heatmap=True, **kw)
    return np.asarray(out), np.asarray(heat)


# --- the API ----------------------------------------------------------------------------------------------------


def test_health_and_page_describe_the_model(client: httpx.Client) -> None:
    info = client.get("/health").json()
    assert info["status"] == "ok" and (info["model"], info["step"], info["img_size"]) == ("nicegan", 11, 32)
    assert info["directions"] == ["a2b", "b2a"] and info["heatmap"] is True and info["style"] is False
    assert info["max_upload_bytes"] == LIMITS.max_upload_bytes and info["source"] == "tiny.pt"
    page = client.get("/")
    assert page.status_code == 200 and "model nicegan \u00b7 step 11 \u00b7 trained at 32 px" in page.text
    assert 'value="a2b"' in page.text and 'value="b2a"' in page.text and 'id="seed"' not in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    assert "://" not in page.text  # nothing loaded from the network
    assert client.get("/docs").status_code == 404 and client.get("/nope").json() == {"error": "not found"}


def test_translations_equal_the_translators_bit_for_bit(client: httpx.Client, translator: Translator) -> None:
    img = noise(50, 30, seed=1)  # not square: the aspect ratio is kept
    for direction in ("a2b", "b2a"):
        r = client.post("/api/translate", files={"file": ("cat.png", png(img), "image/png")},
                        data={"direction": direction})
        assert r.status_code == 200, r.text
        body = r.json()
        out, heat = expected(translator, img, direction)
        assert np.array_equal(from_data_url(body["translation"]), out)
        assert np.array_equal(from_data_url(body["heatmap"]), heat)
        assert body["input_size"] == [50, 30] and body["output_size"] == [out.shape[1], out.shape[0]]
        assert body["direction"] == direction and body["style_seed"] is None and body["seconds"] >= 0
    # the image as the request body, the PNG as the answer
    r = client.post("/api/translate?direction=b2a&format=png", content=png(img),
                    headers={"content-type": "image/png"})
    assert r.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), expected(translator, img, "b2a")[0])
    r = client.post("/api/translate?format=heatmap", content=png(img), headers={"content-type": "image/png"})
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content))), expected(translator, img, "a2b")[1])
    # full resolution: the input's own size, in tiles
    big = noise(70, 45, seed=2)
    r = client.post("/api/translate", files={"file": ("big.png", png(big), "image/png")},
                    data={"full_resolution": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["output_size"] == [70, 45] and r.json()["full_resolution"] is True
    assert np.array_equal(from_data_url(r.json()["translation"]), expected(translator, big, "a2b", keep_size=True)[0])


def test_bad_uploads_get_a_clear_message_and_a_4xx(client: httpx.Client, server: Any) -> None:
    good = png(noise(40, 40))
    limit = LIMITS.max_upload_bytes
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("not an image", {"files": {"file": ("notes.png", b"hello, not pixels", "image/png")}}, 415,
         "notes.png is not an image this server can read"),
        ("empty file", {"files": {"file": ("empty.png", b"", "image/png")}}, 400, "empty.png is empty (0 bytes)"),
        ("empty body", {"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "the upload is empty"),
        ("truncated", {"files": {"file": ("cut.png", good[: len(good) // 2], "image/png")}}, 400,
         "cut.png is a damaged image that cannot be decoded"),
        ("wrong part type", {"files": {"file": ("notes.txt", b"hello", "text/plain")}}, 415,
         "notes.txt is text/plain, not an image"),
        ("wrong request type", {"content": b'{"image": 1}', "headers": {"content-type": "application/json"}}, 415,
         "send the image as multipart/form-data (field 'file') or as the request body"),
        ("bomb over Pillow's limit", {"files": {"file": ("bomb.png", header_only_png(30000, 30000), "image/png")}},
         413, "bomb.png declares more pixels than this server decodes (250,000): a decompression"),
        ("EPS, which Pillow would hand to Ghostscript", {"files": {"file": ("doc.eps", eps(), "image/x-eps")}},
         415, "doc.eps is not an image this server can read"),
        ("over --max-pixels", {"files": {"file": ("wide.png", header_only_png(1000, 1000), "image/png")}}, 413,
         "wide.png is 1000 x 1000 = 1,000,000 pixels, over this server's limit of 250,000"),
        ("oversized body", {"content": os.urandom(limit + 1), "headers": {"content-type": "image/png"}}, 413,
         "the upload is over this server's upload limit of 0.191 MB"),
        ("oversized file", {"files": {"file": ("huge.png", os.urandom(limit + 1), "image/png")}}, 413,
         "huge.png is over this server's upload limit"),
        ("no file field", {"files": {"image": ("cat.png", good, "image/png")}}, 400, "the upload has no file"),
        ("two files", {"files": [("file", ("a.png", good, "image/png")), ("file", ("b.png", good, "image/png"))]},
         400, "not valid multipart/form-data"),
        ("unknown direction", {"files": {"file": ("cat.png", good, "image/png")}, "data": {"direction": "c2d"}}, 400,
         "this model translates a2b and b2a only, not 'c2d'"),
        ("style seed without styles", {"files": {"file": ("cat.png", good, "image/png")},
                                       "data": {"style_seed": "3"}}, 400, "has no style codes"),
    ]
    for what, request, status, message in cases:
        r = client.post("/api/translate", **request)
        assert r.status_code == status, (what, r.text)
        assert r.headers["content-type"] == "application/json" and message in r.json()["error"], (what, r.text)
        assert "--" not in r.json()["error"], f"{what}: a page's message names no command-line flag"
    r = client.post("/api/translate?format=gif", content=good, headers={"content-type": "image/png"})
    assert r.status_code == 400 and "format must be json, png or heatmap" in r.json()["error"]
    assert client.get("/health").json()["status"] == "ok"  # still serving


def test_uploads_are_measured_while_they_stream_in(server: Any) -> None:
    host, port = server[0].removeprefix("http://").split(":")
    limit = LIMITS.max_upload_bytes

    def answer(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            more = sock.recv(65536)
            if not more:
                break
            data += more
        return data

    # a declared length over the limit is refused before any of the body is sent
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /api/translate HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 10000000000\r\n\r\n")
        assert answer(s).startswith(b"HTTP/1.1 413")
    # a chunked body with no length is counted as it arrives: the answer comes while the body is unfinished
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /api/translate HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        piece = os.urandom(16384)
        for _ in range(limit // len(piece) + 2):
            s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        assert answer(s).startswith(b"HTTP/1.1 413")  # the final zero-length chunk was never sent

    # and the counting reader pulls no more than the limit and one chunk
    pulled = []

    async def endless() -> Any:
        while True:
            pulled.append(1)
            yield b"x" * 1000

    async def drain() -> None:
        async for _ in _limited(endless(), 5500, LIMITS):
            pass

    import asyncio

    with pytest.raises(UploadError, match="over this server's upload limit"):
        asyncio.run(drain())
    assert len(pulled) == 6


def test_a_stalled_upload_gives_its_slot_back(server: Any, client: httpx.Client,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import nicegan.web.serve as serve_module

    monkeypatch.setattr(serve_module, "UPLOAD_TIMEOUT_S", 1.0)
    host, port = server[0].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /api/translate HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                  b"Content-Length: 5000\r\n\r\n" + b"x" * 100)  # then nothing more
        reply = b""
        while b"stalled" not in reply and (more := s.recv(65536)):
            reply += more
    assert reply.startswith(b"HTTP/1.1 408") and b"the upload stalled" in reply
    assert client.get("/health").json()["status"] == "ok"


def test_a_loopback_server_answers_loopback_host_names_only() -> None:
    """DNS rebinding: a page elsewhere may point its own name at 127.0.0.1; such requests carry that name."""
    import asyncio

    from nicegan.web.common import host_of, loopback_hosts_only

    assert [host_of(h) for h in ("127.0.0.1:7860", "[::1]:80", "LocalHost", "evil.example:7860")] == [
        "127.0.0.1", "::1", "localhost", "evil.example"]

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def status(host: bytes) -> int:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        await loopback_hosts_only(app)({"type": "http", "headers": [(b"host", host)]}, None, send)
        return sent[0]["status"]

    statuses = {h: asyncio.run(status(h)) for h in (b"127.0.0.1:7860", b"localhost:7860", b"[::1]:7860",
                                                     b"evil.example:7860", b"")}
    assert statuses == {b"127.0.0.1:7860": 200, b"localhost:7860": 200, b"[::1]:7860": 200,
                        b"evil.example:7860": 421, b"": 421}


def test_the_image_cache_is_bounded_by_bytes() -> None:
    from nicegan.web.common import ByteBoundedCache

    cache, made = ByteBoundedCache(10), []

    def make(value: bytes) -> Any:
        return lambda: made.append(value) or value

    assert cache.get("a", make(b"12345")) == b"12345" and cache.get("a", make(b"other")) == b"12345"
    cache.get("b", make(b"123456"))  # 11 bytes in all: the least recently used goes
    assert cache.get("a", make(b"54321")) == b"54321" and made == [b"12345", b"123456", b"54321"]
    assert cache.get("big", make(b"x" * 11)) == b"x" * 11  # too big to keep, still returned


def test_twenty_parallel_clients_each_get_their_own_translation(server: Any, translator: Translator) -> None:
    url, _ = server
    # 10 different requests (5 images x 2 directions), each sent by 2 clients; one shape, because a Translator
    # call on a new shape re-runs shape-only checks that cost more than this tiny network
    pictures = [noise(40, 36, seed=100 + k) for k in range(5)]
    images = [pictures[k % 5] for k in range(20)]
    directions = ["a2b" if k % 10 < 5 else "b2a" for k in range(20)]
    answers = {(k, d): expected(translator, pictures[k], d)[0] for k in range(5) for d in ("a2b", "b2a")}
    wanted = [answers[k % 5, directions[k]] for k in range(20)]
    start = threading.Barrier(20)

    def one(k: int) -> np.ndarray:
        with httpx.Client(base_url=url, timeout=60) as c:
            start.wait()
            r = c.post("/api/translate", files={"file": (f"{k}.png", png(images[k]), "image/png")},
                       data={"direction": directions[k]})
            assert r.status_code == 200, r.text
            return from_data_url(r.json()["translation"])

    with ThreadPoolExecutor(20) as pool:
        got = list(pool.map(one, range(20)))
    for k in range(20):
        assert np.array_equal(got[k], wanted[k]), k


def test_a_full_queue_answers_busy_at_once(server: Any, client: httpx.Client) -> None:
    _, service = server
    held = [service.slot() for _ in range(LIMITS.max_queue)]
    for h in held:
        h.__enter__()
    try:
        r = client.post("/api/translate", content=png(noise(32, 32)), headers={"content-type": "image/png"})
        assert r.status_code == 503 and "the server is busy (32 requests in progress)" in r.json()["error"]
    finally:
        for h in held:
            h.__exit__(None, None, None)
    assert client.post("/api/translate", content=png(noise(32, 32)),
                       headers={"content-type": "image/png"}).status_code == 200


# --- models and bundles -----------------------------------------------------------------------------------------


def test_a_one_direction_bundle_offers_only_its_direction(saved: Path, tmp_path: Path) -> None:
    from nicegan.deploy.export import export

    export(saved, tmp_path / "bundle", direction="b2a", progress=lambda line: None)
    service = TranslationService(Translator.load(tmp_path / "bundle", "cpu"), LIMITS)
    page = render_page(service)
    assert 'value="b2a"' in page and 'value="a2b"' not in page
    assert service.options({})["direction"] == "b2a"  # the default is a direction it has
    with pytest.raises(UploadError, match="this model translates b2a only, not 'a2b'"):
        service.options({"direction": "a2b"})
    img = noise(36, 36)
    result = service.translate(png(img), direction="b2a")
    assert np.array_equal(np.asarray(result.image), np.asarray(Translator.load(saved, "cpu")(img, "b2a")))


def test_a_style_model_gets_a_seed_that_names_its_style(saved: Path) -> None:
    """MUNIT-like models do not exist yet: a NICE-GAN given a style code (an offset drawn from the prior) stands in
    for one, to check the seed path of the page and the service."""
    loaded = Translator.load(saved, "cpu")
    model = loaded.model
    base = type(model)

    class Styled(base):
        style_dim = 4

        def translate(self, x: torch.Tensor, direction: str, style: torch.Tensor | None = None) -> torch.Tensor:
            if style is None:
                style = torch.randn(x.shape[0], self.style_dim, device=x.device)
            return (base.translate(self, x, direction) + 0.2 * style.mean(1).view(-1, 1, 1, 1)).clamp(-1, 1)

        def encode_style(self, x: torch.Tensor, domain: str) -> torch.Tensor:
            return torch.zeros(x.shape[0], self.style_dim)

    model.__class__ = Styled
    translator = Translator(model, loaded.config, 11)
    service = TranslationService(translator, LIMITS)
    assert service.has_style and 'id="seed"' in render_page(service)
    data = png(noise(32, 32, seed=5))
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    one = service.translate(data, **service.options({"style_seed": "7"}))
    assert torch.equal(torch.rand(3), before)  # the global generator is left as it was
    again = service.translate(data, **service.options({"style_seed": "7"}))
    other = service.translate(data, **service.options({"style_seed": "8"}))
    assert one.style_seed == 7 and np.array_equal(np.asarray(one.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(one.image), np.asarray(other.image))
    drawn = service.translate(data, **service.options({}))
    assert drawn.style_seed is not None
    replay = service.translate(data, **service.options({"style_seed": str(drawn.style_seed)}))
    assert np.array_equal(np.asarray(drawn.image), np.asarray(replay.image))
    with pytest.raises(UploadError, match="style_seed must be a whole number"):
        service.options({"style_seed": "-1"})


def test_uploads_decode_like_files_do() -> None:
    """The formats a browser sends, as upright 8-bit RGB: transparency on white, EXIF rotation applied."""
    for fmt in ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "PPM"):
        buf = io.BytesIO()
        noise(20, 12).save(buf, format=fmt)
        assert decode_upload(buf.getvalue(), 1000).size == (20, 12), fmt
    buf = io.BytesIO()
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(buf, format="PNG")
    clear = decode_upload(buf.getvalue(), 1000)
    assert clear.mode == "RGB" and clear.getpixel((0, 0)) == (255, 255, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to be upright
    buf = io.BytesIO()
    noise(20, 12).save(buf, format="JPEG", exif=exif)
    assert decode_upload(buf.getvalue(), 1000).size == (12, 20)


def test_limits_are_checked() -> None:
    from nicegan.data.images import MAX_PIXELS as DECODER_LIMIT

    assert MAX_PIXELS == DECODER_LIMIT
    with pytest.raises(NiceganError, match="^max_pixels must be between 1 and 89,478,485"):
        ServeLimits(max_pixels=MAX_PIXELS + 1)


# --- the command line -------------------------------------------------------------------------------------------


def test_cli_serves_the_model_and_warns_off_loopback(saved: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    import nicegan.web.common

    served: list[tuple[Any, str, int]] = []
    monkeypatch.setattr(nicegan.web.common, "run_app",
                        lambda app, host, port, on_stop=None: served.append((app, host, port)))
    port = free_port()
    assert main(["serve", "--checkpoint", str(saved), "--device", "cpu", "--port", str(port)]) == 0
    err = capsys.readouterr().err
    assert f"open http://127.0.0.1:{port}/" in err and "serving nicegan (step 11, 32 px, a2b/b2a, heatmap)" in err
    assert "warning" not in err and served[0][1:] == ("127.0.0.1", port)
    assert main(["serve", "--checkpoint", str(saved), "--device", "cpu", "--host", "0.0.0.0", "--port",
                 str(port)]) == 0
    assert "warning: listening on 0.0.0.0: anyone who can reach this machine" in capsys.readouterr().err


def test_cli_refuses_bad_options_in_one_line(saved: Path, capsys: pytest.CaptureFixture) -> None:
    for args, message in ((["--max-pixels", "100000000"], "--max-pixels must be between 1 and 89,478,485"),
                          (["--host", "no.such.host.invalid"], "--host no.such.host.invalid")):
        assert main(["serve", "--checkpoint", str(saved), *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("nicegan: error: ") and message in err and len(err.splitlines()) == 1
    for args, message in ((["--max-upload-mb", "0"], "argument --max-upload-mb: must be above 0"),
                          (["--max-upload-mb", "nan"], "argument --max-upload-mb: must be above 0"),
                          (["--port", "70000"], "argument --port: a port is 1-65535")):
        with pytest.raises(SystemExit) as exit_info:
            main(["serve", "--checkpoint", str(saved), *args])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_cli_says_when_the_port_is_taken(saved: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--checkpoint", str(saved), "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nicegan: error: cannot listen on 127.0.0.1:{port}") and len(err.splitlines()) == 1


# --- a real browser ---------------------------------------------------------------------------------------------


def test_the_page_in_headless_chromium(chrome: Any, server: Any, translator: Translator, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, _ = server
    img = noise(48, 40, seed=7)
    (tmp_path / "cat.png").write_bytes(png(img))
    wait = WebDriverWait(chrome, 20)
    state = lambda: chrome.find_element(By.TAG_NAME, "body").get_attribute("data-state")
    message = lambda: chrome.find_element(By.ID, "message").text
    src = lambda name: chrome.find_element(By.ID, name).get_attribute("src")

    chrome.get(url + "/")
    assert state() == "idle" and [o.get_attribute("value") for o in
                                  chrome.find_elements(By.CSS_SELECTOR, "#direction option")] == ["a2b", "b2a"]
    chrome.find_element(By.ID, "file").send_keys(str(tmp_path / "cat.png"))
    wait.until(lambda d: state() in ("done", "error"))
    assert state() == "done", message()
    out, heat = expected(translator, img, "a2b")
    assert np.array_equal(from_data_url(src("output")), out)
    assert np.array_equal(from_data_url(src("heatmap")), heat)
    assert chrome.execute_script("return document.getElementById('output').naturalWidth") == out.shape[1]
    link = chrome.find_element(By.ID, "download")
    assert link.get_attribute("href").startswith("blob:") and link.get_attribute("download") == "cat_a2b.png"
    assert "48\u00d740 \u2192" in chrome.find_element(By.ID, "status").text

    Select(chrome.find_element(By.ID, "direction")).select_by_value("b2a")  # translates the same image again
    wait.until(lambda d: state() == "done" and link.get_attribute("download") == "cat_b2a.png")
    assert np.array_equal(from_data_url(src("output")), expected(translator, img, "b2a")[0])
    # the download link saves that PNG
    downloads = tmp_path / "downloads"
    chrome.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    link.click()
    wait.until(lambda d: (downloads / "cat_b2a.png").is_file())
    assert np.array_equal(np.asarray(Image.open(downloads / "cat_b2a.png")), expected(translator, img, "b2a")[0])

    bad = {"notes.txt": (b"a shopping list", "notes.txt is text/plain, not an image"),
           "fake.png": (b"\x89PNG but not really", "fake.png is not an image this server can read"),
           "huge.png": (os.urandom(LIMITS.max_upload_bytes + 1), "huge.png is over this server's upload limit")}
    for name, (content, text) in bad.items():
        (tmp_path / name).write_bytes(content)
        chrome.find_element(By.ID, "file").send_keys(str(tmp_path / name))
        wait.until(lambda d: state() == "error")
        assert text in message(), message()
        assert src("output") is None and link.get_attribute("href") is None  # the old result is gone
        chrome.find_element(By.ID, "file").send_keys(str(tmp_path / "cat.png"))  # and a good file works again
        wait.until(lambda d: state() == "done")
        assert message() == ""
