"""The service probe of issue 26: download timeouts that hold, pinned hashes that forgive whitespace, Host headers
parsed as host and port, empty and oversized images refused before allocating, a prompt stop of ``nicegan serve``,
and messages that say what happened. Each test failed on the code before its fix (docs/reliability.md lists them).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests import test_data_tools, test_serve
from tests.conftest import REPO
from tests.hostile import deadline
from tests.test_data_tools import LAYOUT, Served, assert_layout, download, error_line, make_tar, make_zip

# fixtures of other modules, used here under their own names: the local HTTP server, a tiny NICE-GAN checkpoint
server = test_data_tools.server
saved = test_serve.saved

# --- 1. a download has a total deadline and a minimum rate ----------------------------------------------------------


@contextmanager
def dripping_server(header: bytes, body_bytes: int, interval: float, limit_s: float = 20.0) -> Iterator[str]:
    """A server that sends ``header`` at once (or, when it is empty, its status line one byte per ``interval``),
    then one body byte per ``interval`` of the ``body_bytes`` it announces; every connection ends after ``limit_s``
    at most, so the code before the fix (which waited for it) ends too. Yields the URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        end = time.monotonic() + limit_s
        # the bytes sent one at a time: the body after a prompt header, or the status line itself
        slow = b"x" * body_bytes if header else b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % body_bytes
        with conn:
            try:
                conn.settimeout(5)
                conn.recv(65536)  # the request
                conn.sendall(header)
                for k in range(len(slow)):
                    if stop.is_set() or time.monotonic() > end:
                        return
                    conn.sendall(slow[k:k + 1])
                    time.sleep(interval)
            except OSError:  # the client went away
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.zip"
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_a_server_sending_a_byte_per_second_is_dropped_for_its_rate(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """The probe's command: --timeout 3 --retries 0 against 1 byte/s. Each read got its byte within the timeout, so
    the old code kept reading (1.5 kB would take 25 minutes); the default --min-rate ends it after one period."""
    with dripping_server(b"HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n", 1500, 1.0) as url, deadline(60):
        started = time.monotonic()
        code, _, err = download(["horse2zebra", str(tmp_path), "--url", url, "--timeout", "3", "--retries", "0"],
                                capsys)
        took = time.monotonic() - started
    line = error_line(err)
    assert code == 2 and took < 10, (took, err)
    assert "too slow" in line and "(--min-rate)" in line and "run the same command again to resume" in line
    assert 1 <= (tmp_path / "horse2zebra.part").stat().st_size <= 10  # what arrived is kept for the next run


@pytest.mark.parametrize("where", ["body", "status line"])
def test_the_deadline_holds_whatever_the_transfer_is_blocked_in(where: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture) -> None:
    """--min-rate 0 lets the trickle through: the deadline alone must end it, in the body or in the headers."""
    header = b"HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n" if where == "body" else b""
    with dripping_server(header, 1500, 0.5) as url, deadline(60):
        started = time.monotonic()
        code, _, err = download(["horse2zebra", str(tmp_path), "--url", url, "--timeout", "3", "--min-rate", "0",
                                 "--deadline", "2"], capsys)
        took = time.monotonic() - started
    line = error_line(err)
    assert code == 2 and took < 6, (took, err)
    assert "not complete within the deadline of 2 s (--deadline)" in line and "run the same command again" in line


def test_deadline_and_rate_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for args, words in ((["--deadline", "0"], "the deadline must be a positive number"),
                        (["--deadline", "nan"], "the deadline must be a positive number"),
                        (["--min-rate", "-1"], "the minimum rate must be 0 or more")):
        code, _, err = download(["horse2zebra", str(tmp_path), "--url", "http://127.0.0.1:9/x.zip", *args], capsys)
        assert code == 2 and words in error_line(err), (args, err)


# --- 2. a pinned hash forgives whitespace and case; a matching download is never deleted -----------------------------


def test_a_pinned_sha256_with_its_line_break_is_the_same_hash(server: Served, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    archive = make_zip(LAYOUT)
    server.files["/h.zip"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    for k, pin in enumerate((digest + "\n", f"  {digest.upper()}\t")):
        code, out, err = download([f"ds{k}", str(tmp_path), "--url", server.base + "/h.zip", "--sha256", pin], capsys)
        assert code == 0, err
        assert f"sha256 {digest} (matches the pinned value)" in out
        assert_layout(tmp_path / f"ds{k}")
    code, _, err = download(["ds9", str(tmp_path), "--url", server.base + "/h.zip", "--sha256", digest + "\nab"],
                            capsys)
    assert code == 2 and "--sha256 must be 64 hexadecimal digits" in error_line(err)


def test_a_download_matching_its_pin_is_never_deleted(server: Served, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    """An unsafe archive is refused; with a pin it matches, the bytes are what the user asked for: kept."""
    archive = make_zip({**LAYOUT, "../evil.txt": b"x"})
    server.files["/u.zip"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    code, _, err = download(["maps", str(tmp_path), "--url", server.base + "/u.zip", "--sha256", digest], capsys)
    line = error_line(err)
    assert code == 2 and "would be written outside" in line
    assert f"matches the pinned sha256 and was kept in {tmp_path / 'maps.part'}" in line
    assert (tmp_path / "maps.part").read_bytes() == archive
    assert not (tmp_path / "maps").exists()


# --- 6 (downloads). messages that say what happened ----------------------------------------------------------------


def link_first_tar(link: str, target: str) -> bytes:
    """A tar.gz whose hard link ``link`` comes before the members (a tar link can refer only to an earlier one)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo(link)
        info.type, info.linkname = tarfile.LNKTYPE, target
        t.addfile(info)
        for name, data in LAYOUT.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_a_hard_link_out_of_the_archive_is_named_not_called_damage(server: Served, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    archives = [(make_tar(LAYOUT, {"trainA/link.png": (tarfile.LNKTYPE, "../../etc/passwd")}),
                 "link 'trainA/link.png' points outside it ('../../etc/passwd')"),
                (make_tar(LAYOUT, {"trainA/link.png": (tarfile.LNKTYPE, "/etc/passwd")}),
                 "link 'trainA/link.png' points to the absolute path '/etc/passwd'"),
                (make_tar(LAYOUT, {"trainA/link.png": (tarfile.LNKTYPE, "trainA/missing.png")}),
                 "hard link 'trainA/link.png' points to 'trainA/missing.png', which is not a file stored before it"),
                (link_first_tar("trainA/link.png", "trainB/img_0.png"),
                 "hard link 'trainA/link.png' points to 'trainB/img_0.png', which is not a file stored before it")]
    for k, (archive, words) in enumerate(archives):
        server.files[f"/l{k}.tar.gz"] = archive
        code, _, err = download(["cat2dog", str(tmp_path / f"d{k}"), "--url", server.base + f"/l{k}.tar.gz"], capsys)
        line = error_line(err)
        assert code == 2 and f"refusing the archive: {words}" in line, line
        assert "damaged" not in line and "KeyError" not in line


def test_a_line_break_in_the_url_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """http.client refuses it as an InvalidURL, an HTTPException, which was retried three times and then called
    resumable."""
    for url in ("http://127.0.0.1:9/x.zip\r\nX-Injected: 1", "http://127.0.0.1:9/a b.zip",
                "http://127.0.0.1:99999/x.zip", "http://[::1/x.zip"):
        with deadline(30):
            code, _, err = download(["horse2zebra", str(tmp_path), "--url", url], capsys)
        line = error_line(err)
        assert code == 2 and "resume" not in line and "retry" not in err, (url, err)
        assert "line break or other control character" in line or "not a valid address" in line, line
        assert not list(tmp_path.glob("*.part")), url


# --- 3. the loopback Host guard parses a host and an optional numeric port -------------------------------------------


def guard_status(headers: list[tuple[bytes, bytes]]) -> tuple[int, dict]:
    """The status and JSON body :func:`loopback_hosts_only` answers to a request with these headers."""
    import json

    from nicegan.web.common import loopback_hosts_only

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(loopback_hosts_only(app)({"type": "http", "headers": headers}, None, send))
    return sent[0]["status"], json.loads(sent[1]["body"])


def test_the_host_guard_refuses_what_is_not_a_host_and_port() -> None:
    from nicegan.web.common import host_of

    for bad in ("localhost:evil.com", "localhost:1@evil.com", "127.0.0.1:x@evil.com", "[::1]:80@evil.com",
                "localhost:", "localhost:99999", "[127.0.0.1]:80", "[::1", "local host", "::1"):
        assert host_of(bad) is None, bad
        status, body = guard_status([(b"host", bad.encode())])
        assert status == 400 and "is not a host name or address with an optional port" in body["error"], bad
    for good, host in (("localhost", "localhost"), ("LOCALHOST:7860", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
                       ("[::1]", "::1"), ("[::1]:7860", "::1"), ("127.0.0.2", "127.0.0.2")):
        assert host_of(good) == host, good
        assert guard_status([(b"host", good.encode())])[0] == 200, good
    assert guard_status([(b"host", b"evil.com:7860")])[0] == 421
    status, body = guard_status([(b"host", b"localhost"), (b"host", b"evil.com")])
    assert status == 400 and "more than one Host header" in body["error"]


# --- 5. nicegan serve stops promptly, answering the translation in flight with 503 ------------------------------------

# a child process running `nicegan serve`, each network layer slowed down so that one full-resolution translation
# of a small image takes about half a minute, as a large image does on a CPU; it says when the translation begins
SLOW_SERVE = """
import sys, time
import torch
from torch.nn.modules.module import register_module_forward_pre_hook

started = []

def slow(module, args):
    if args and isinstance(args[0], torch.Tensor) and args[0].device.type == "cpu":
        if not started:
            started.append(True)
            print("TRANSLATION STARTED", file=sys.stderr, flush=True)
        time.sleep(0.01)

register_module_forward_pre_hook(slow)
from nicegan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def raw_get(port: int, host: bytes, timeout: float = 10) -> int:
    """The status of ``GET /health`` sent with this exact Host header."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: " + host + b"\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_serve_stops_promptly_and_answers_the_translation_in_flight_503(sig: int, saved: Path,
                                                                       tmp_path: Path) -> None:
    import queue

    import httpx

    from nicegan.web.serve import STOPPING
    from tests.browser import free_port

    script = tmp_path / "slow_serve.py"
    script.write_text(SLOW_SERVE)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, str(script), "serve", "--checkpoint", str(saved), "--device", "cpu",
                             "--port", str(port)], stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    answers: list[httpx.Response | BaseException] = []
    try:
        end = time.monotonic() + 90
        while True:  # up: the page answers
            assert proc.poll() is None, "the server ended: " + "".join(lines.queue)
            try:
                if raw_get(port, b"127.0.0.1:%d" % port, timeout=2) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < end, "the server did not come up"
            time.sleep(0.2)
        # the running command's Host guard (item 3) on the way
        assert [raw_get(port, h) for h in (b"localhost:evil.com", b"localhost:1@evil.com", b"127.0.0.1:x@evil.com",
                                           b"evil.com", b"localhost:%d" % port)] == [400, 400, 400, 421, 200]

        def translate() -> None:
            img = Image.fromarray(np.random.RandomState(0).randint(0, 256, (400, 400, 3), np.uint8))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
            try:
                answers.append(httpx.post(f"http://127.0.0.1:{port}/api/translate", timeout=90,
                                          files={"file": ("big.png", buf.getvalue(), "image/png")},
                                          data={"full_resolution": "1"}))
            except BaseException as e:  # reported by the assertion below
                answers.append(e)

        client = threading.Thread(target=translate, daemon=True)
        client.start()
        while "TRANSLATION STARTED" not in lines.get(timeout=60):
            pass
        time.sleep(1.0)  # well inside the translation
        asked = time.monotonic()
        proc.send_signal(sig)
        proc.wait(timeout=60)
        took = time.monotonic() - asked
        client.join(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        proc.stderr.close()
    log = "".join(lines.queue)
    assert took < 8, f"the server took {took:.1f} s to stop\n{log}"
    assert answers and isinstance(answers[0], httpx.Response), answers
    assert answers[0].status_code == 503 and answers[0].json() == {"error": STOPPING}, answers[0].text
    assert proc.returncode == (0 if sig == signal.SIGINT else -signal.SIGTERM), log
    assert "Traceback" not in log


# --- 6 (web). the user study answers unknown paths and methods with {"error": ...} -----------------------------------


def test_study_404_and_405_use_error_like_every_other_answer(tmp_path: Path) -> None:
    import httpx

    from nicegan.web.study import create_app, open_study
    from tests.browser import serve_app
    from tests.test_study import make_study

    methods, sources = make_study(tmp_path / "s", n=4)
    study = open_study(methods, sources, tmp_path / "s.sqlite", trials=2, checks=0, progress=False)
    with serve_app(create_app(study)) as url, httpx.Client(base_url=url, timeout=20) as client:
        missing = client.get("/nope")
        assert (missing.status_code, missing.json()) == (404, {"error": "not found"})
        wrong = client.post("/api/trial")
        assert (wrong.status_code, wrong.json()) == (405, {"error": "method not allowed"})
        assert wrong.headers["allow"] == "GET" and wrong.headers["cache-control"] == "no-store"
        assert client.get("/img/nope").json().keys() == {"error"}  # as before


# --- 4. every entry point refuses what it cannot translate, with one reason, before allocating ---------------------


@pytest.fixture(scope="module")
def translator(saved: Path) -> Any:
    from nicegan import Translator

    return Translator.load(saved, device="cpu")


def test_the_api_refuses_empty_and_unallocatable_images_in_one_line(translator: Any,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from nicegan.core.errors import NiceganError

    empty = "an empty image cannot be translated"
    cases = [(np.zeros((0, 0, 3), np.uint8), "0 x 0 pixels: " + empty),
             (np.zeros((0, 0)), "0 x 0 pixels: " + empty),
             (Image.new("RGB", (0, 0)), "0 x 0 pixels: " + empty),
             (np.zeros((1, 0, 3), np.uint8), "0 x 1 pixels: " + empty),
             (torch.zeros(3, 0, 5), "5 x 0 pixels: " + empty),
             ([np.zeros((8, 8, 3), np.uint8), np.zeros((0, 4, 3), np.uint8)], "4 x 0 pixels: " + empty),
             (torch.zeros(3, 8, 8, device="meta"), "on the meta device"),
             (torch.zeros(3, 8, 8).to_sparse(), "must be dense"),
             # a view of 3 bytes standing for 300 MB: refused before it is copied
             (np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (10_000, 10_000, 3)),
              "10000 x 10000 = 100,000,000 pixels, over the 89,478,485-pixel limit")]
    for bad, words in cases:
        with deadline(30), pytest.raises(NiceganError) as info:
            translator(bad, "a2b")
        assert words in str(info.value) and "\n" not in str(info.value), (words, info.value)

    def no_resize(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an image was resized before the size was refused")

    monkeypatch.setattr(Image.Image, "resize", no_resize)
    for size, words in ((10**6, "size 1000000 is over the 16,384 px this toolkit translates at"),
                        (0, "size must be a positive whole number"), (-5, "size must be a positive whole number"),
                        (True, "size must be a positive whole number")):
        with deadline(30), pytest.raises(NiceganError, match=words):
            translator(np.zeros((40, 30, 3), np.uint8), "a2b", size=size)
    with deadline(30), pytest.raises(NiceganError, match="an input fitted to 32x320000 px is over the 16,384 px"):
        translator(np.zeros((10_000, 1, 3), np.uint8), "a2b")  # an extreme aspect ratio, fitted to the size
    with deadline(30), pytest.raises(NiceganError, match="enlarged to 32 px, 3200000 x 32 = 102,400,000 pixels"):
        translator(np.zeros((1, 100_000, 3), np.uint8), "a2b", keep_size=True)


def test_the_cli_refuses_the_size_with_the_apis_reason(saved: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    from nicegan.cli import main

    Image.new("RGB", (40, 30)).save(tmp_path / "x.png")
    code = main(["translate", "--checkpoint", str(saved), "--input", str(tmp_path / "x.png"), "--output",
                 str(tmp_path / "out"), "--direction", "a2b", "--size", "1000000", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the info lines
    assert code == 2 and err == ("nicegan: error: --size 1000000 is over the 16,384 px this toolkit translates at "
                                 "(the networks see size x size images; translate at the training size and keep the "
                                 "input's resolution with --keep-size)"), err  # the API's reason, in the CLI's flags


def test_the_server_refuses_an_empty_image_with_the_same_reason(translator: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """No decoder yields a 0 x 0 image from bytes; should one, the translation refuses it as the API does."""
    import nicegan.web.serve as serve

    service = serve.TranslationService(translator)
    monkeypatch.setattr(serve, "decode_upload", lambda data, max_pixels, name: Image.new("RGB", (0, 0)))
    with pytest.raises(serve.UploadError) as info:
        service.translate(b"x", "e.png")
    assert info.value.status == 400 and str(info.value) == ("the image is 0 x 0 pixels: an empty image cannot be "
                                                            "translated")


# --- 6 (images). running out of memory while decoding is not a damaged image ------------------------------------------


def test_a_memory_error_while_decoding_is_not_called_damage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    from nicegan.data.images import ImageDecodeError, load_rgb, scan_images
    from nicegan.web.serve import UploadError, decode_upload

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, format="PNG")
    (tmp_path / "a.png").write_bytes(buf.getvalue())

    def out_of_memory(self: Any) -> None:
        raise MemoryError

    with monkeypatch.context() as m:
        m.setattr(ImageFile.ImageFile, "load", out_of_memory)
        with pytest.raises(UploadError) as info:
            decode_upload(buf.getvalue(), 10**6, "a.png")
        assert info.value.status == 503 and str(info.value) == ("the server ran out of memory decoding a.png; try a "
                                                                "smaller image or try again later")
        with pytest.raises(ImageDecodeError) as decode_info:
            load_rgb(tmp_path / "a.png")
        assert (decode_info.value.kind, str(decode_info.value)) == ("memory", "not enough memory to decode it")
        cache = tmp_path / "scan.json"
        assert scan_images([tmp_path / "a.png"], cache, progress=False).bad == [(tmp_path / "a.png",
                                                                                   "not enough memory to decode it")]
    # the memory shortage was not remembered as the file's fault
    assert scan_images([tmp_path / "a.png"], cache, progress=False).good == [tmp_path / "a.png"]
