"""Hostile archives for ``nicegan data download`` (issue 25), against a local server: archive bombs (a zip member of
zeros, a tar of hard links each extracted as a copy) are refused before a byte is extracted, by the ratio of what
they would take to the archive's own size. Zip-slip, absolute paths, links out of the archive, wrong checksums,
short transfers and stalls are pinned in tests/test_data_tools.py and tests/test_service_probe.py."""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests import test_data_tools
from tests.test_data_tools import LAYOUT, Served, assert_layout, download, error_line, make_tar

server = test_data_tools.server  # the local HTTP server fixture


def zip_bomb(member_bytes: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in LAYOUT.items():
            z.writestr("horse2zebra/" + name, data)
        with z.open("horse2zebra/trainA/zeros.png", "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            for _ in range(member_bytes >> 20):
                fh.write(chunk)
    return buf.getvalue()


def hardlink_bomb(links: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in {**LAYOUT, "trainA/big.png": bytes(1 << 20)}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for i in range(links):
            info = tarfile.TarInfo(f"trainB/copy{i}.png")
            info.type, info.linkname = tarfile.LNKTYPE, "trainA/big.png"
            t.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize(("archive", "words"), [
    (lambda: zip_bomb(64 << 20), "an archive bomb?"),
    (lambda: hardlink_bomb(200), "an archive bomb?"),
], ids=["zip of zeros", "tar of hard links"])
def test_archive_bombs_are_refused_before_extracting(archive, words: str, server: Served, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import nicegan.data.download as dl

    monkeypatch.setattr(dl, "MIN_BOMB_BYTES", 8 << 20)  # the same ratio test at test sizes (the default is 512 MB)
    data = archive()
    assert len(data) < 1 << 20  # a small download...
    server.files["/bomb"] = data
    code, _, err = download(["horse2zebra", str(tmp_path / "ds"), "--url", server.base + "/bomb"], capsys)
    assert code == 2 and words in error_line(err), err  # ...that would expand to 64 MB or 200 MB
    assert list((tmp_path / "ds").iterdir()) == []


def test_an_ordinary_archive_with_hard_links_still_extracts(server: Served, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    server.files["/ok.tar.gz"] = make_tar(LAYOUT, {"trainA/again.png": (tarfile.LNKTYPE, "trainA/img_0.png")})
    code, _, err = download(["cat2dog", str(tmp_path), "--url", server.base + "/ok.tar.gz"], capsys)
    assert code == 0, err


class _Overlong(BaseHTTPRequestHandler):
    """Announces ``announced`` bytes of ``body`` in Content-Length, then sends all of ``body`` and 1 MB of junk."""

    body = b""
    announced = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # http.server calls it by this name
        self.send_response(200)
        self.send_header("Content-Length", str(self.announced))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(self.body + b"\x00junk" * (1 << 18))


@pytest.fixture
def overlong() -> Iterator[tuple[str, type[_Overlong]]]:
    handler = type("Handler", (_Overlong,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/a.tar.gz", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_bytes_past_the_content_length_are_never_taken_for_the_file(overlong, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """A server that sends more than it announces: what follows the announced length is not read (the archive
    extracts, its SHA-256 is the archive's and a pin of it holds); announcing less than the archive keeps only a
    cut archive, which the pin or the archive check refuses: a corrupt file is never extracted."""
    url, handler = overlong
    archive = make_tar(LAYOUT)
    digest = hashlib.sha256(archive).hexdigest()
    handler.body, handler.announced = archive, len(archive)
    code, _, err = download(["cat2dog", str(tmp_path / "ok"), "--url", url, "--sha256", digest], capsys)
    assert code == 0, err
    assert_layout(tmp_path / "ok" / "cat2dog")

    handler.announced = len(archive) // 2  # the rest of the archive (and the junk) follows the announced end
    code, _, err = download(["cat2dog", str(tmp_path / "pinned"), "--url", url, "--sha256", digest], capsys)
    assert code == 2 and "sha256 mismatch" in error_line(err), err
    code, _, err = download(["cat2dog", str(tmp_path / "unpinned"), "--url", url, "--retries", "0"], capsys)
    assert code == 2 and "damaged" in error_line(err), err
    for target in ("pinned", "unpinned"):  # nothing extracted, and the cut download deleted
        assert sorted(p.name for p in (tmp_path / target).rglob("*")) == [], target
