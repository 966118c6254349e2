"""``nicegan data check`` on a small flawed dataset, and ``nicegan data download`` end to end against a local HTTP
server on 127.0.0.1 (ranges, dropped connections, bad hashes, damaged and hostile archives; no internet)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import shutil
import socket
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicegan.cli import main
from nicegan.data import download as dl
from nicegan.data import open_domain
from nicegan.data.check import dataset_summary
from tests.conftest import TINY, write_images


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(err: str) -> str:
    """The one-line error a failed command ends with (info lines may come before it; never a traceback)."""
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("nicegan: error: "), err
    return last


def png_bytes(seed: int, size: tuple[int, int] = (12, 10), mode: str = "RGB") -> bytes:
    rng = np.random.RandomState(seed)
    arr = rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------------ data check

@pytest.fixture
def flawed(tmp_path: Path) -> Path:
    """trainA: 3 images (RGB, L, RGBA), a truncated PNG, a text file; testA repeats a trainA image (leakage);
    trainB repeats a trainA image (cross-domain) and holds a named pipe; testB is clean."""
    root = tmp_path / "flawed"
    write_images(root / "trainA", 1, seed=1, size=(40, 30))
    (root / "trainA" / "gray.png").write_bytes(png_bytes(2, (20, 16), "L"))
    (root / "trainA" / "alpha.png").write_bytes(png_bytes(3, (64, 48), "RGBA"))
    (root / "trainA" / "broken.png").write_bytes(png_bytes(4, (30, 30))[:60])
    (root / "trainA" / "notes.txt").write_text("not an image")
    write_images(root / "testA", 2, seed=5)
    shutil.copy(root / "trainA" / "gray.png", root / "testA" / "copy_of_gray.png")
    write_images(root / "trainB", 2, seed=6)
    shutil.copy(root / "trainA" / "alpha.png", root / "trainB" / "same_as_a.png")
    os.mkfifo(root / "trainB" / "pipe.png")
    write_images(root / "testB", 2, seed=7)
    return root


def test_check_reports_what_training_sees(flawed: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["data", "check", str(flawed), "--img-size", "32", "--no-progress"], capsys)
    assert code == 0, err
    assert "trainA: 5 files, 3 usable" in out
    assert "size (w x h): min 20x16, median 40x30, max 64x48" in out
    assert "modes: " in out and "RGBA 1" in out and "L 1" in out and "RGB 1" in out
    assert "unreadable (2, training skips them)" in out
    assert re.search(r"trainA/broken\.png: cannot decode", out)
    assert "trainA/notes.txt: not an image (unknown format)" in out
    assert "trainB: 3 files, 3 usable" in out
    assert "trainB/pipe.png: a named pipe (FIFO), not a regular file" in out
    assert "trainA and testA share 1 image(s): test leakage" in out
    assert "trainA/gray.png = testA/copy_of_gray.png" in out
    assert "trainA and trainB share 1 image(s)" in out and "trainA/alpha.png = trainB/same_as_a.png" in out
    assert "1 image(s) under 32 px on a side" in out  # gray.png, 20x16
    assert "warning: test leakage: 1 image(s) of testA are also in trainA" in err
    # the check's last line is the trainer's summary, with the counts training itself gets
    counts = {f"{s}{d}": len(open_domain(str(flawed), s, d)) for s in ("train", "test") for d in "AB"}
    assert out.strip().splitlines()[-1] == dataset_summary(flawed, counts)
    assert counts == {"trainA": 3, "trainB": 3, "testA": 3, "testB": 2}


def test_check_json_and_strict(flawed: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["data", "check", str(flawed), "--json", "--no-progress"], capsys)
    assert code == 0
    rep = json.loads(out)
    assert rep["folders"]["trainA"]["usable"] == 3 and len(rep["folders"]["trainA"]["unreadable"]) == 2
    assert rep["folders"]["trainB"]["not_files"] == [["trainB/pipe.png", "a named pipe (FIFO), not a regular file"]]
    assert {d["kind"] for d in rep["duplicates"]} == {"leakage", "cross-domain"}
    code, out, err = run_cli(["data", "check", str(flawed), "--strict", "--no-progress"], capsys)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("nicegan: error: ") and "--strict" in err
    assert "trainA has 2 unusable entries" in err and "trainB has 1 unusable entry" in err


def test_check_unusable_datasets_exit_2(flawed: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    shutil.rmtree(flawed / "testB")
    (flawed / "testB").mkdir()
    for p in (flawed / "trainB").iterdir():
        p.unlink()
    (flawed / "trainB" / "bad.jpg").write_bytes(b"")
    code, out, err = run_cli(["data", "check", str(flawed), "--no-progress"], capsys)
    assert code == 2 and "testB: 0 files, 0 usable" in out
    assert err.splitlines()[-1] == (f"nicegan: error: {flawed} is not usable for training: trainB has no usable images "
                                    "(1 unusable entry); testB is empty")
    shutil.rmtree(flawed / "testA")
    assert run_cli(["data", "check", str(flawed), "--no-progress"], capsys)[2].count("testA is missing") == 1
    for args, message in ([str(tmp_path / "nowhere")], "data folder not found"), ([str(tmp_path)], "has none of"):
        code, _, err = run_cli(["data", "check", *args], capsys)
        assert code == 2 and message in error_line(err)


def test_trainer_logs_the_same_summary(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                      caplog: pytest.LogCaptureFixture) -> None:
    from nicegan.configs.schema import resolve_config
    from nicegan.training.loop import Trainer

    code, out, _ = run_cli(["data", "check", str(tiny_data), "--no-progress"], capsys)
    assert code == 0
    summary = out.strip().splitlines()[-1]
    assert summary == f"data {tiny_data}: trainA 7 images, trainB 6, testA 5, testB 5"
    with caplog.at_level(logging.INFO, logger="nicegan"):  # the trainer logs it when it opens the data
        Trainer(resolve_config({}, [*TINY, f"data.root={tiny_data}"]), tmp_path / "run", progress=False,
                tensorboard=False)
    assert summary in [r.getMessage() for r in caplog.records]


def test_check_large_folder_reports_progress(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NICEGAN_PROGRESS_INTERVAL", "0")
    monkeypatch.setattr("nicegan.data.check.QUIET_BELOW", 3)
    for split in ("trainA", "trainB", "testA", "testB"):
        write_images(tmp_path / split, 3, seed=len(split), size=(8, 8))
    code, _, err = run_cli(["data", "check", str(tmp_path), "--no-progress"], capsys)
    assert code == 0 and "checking trainA: 3/3 (100 %) img" in err and "eta" in err


# --------------------------------------------------------------------------------------------- the server

@dataclass
class Served:
    """What the local server holds and how it misbehaves; ``requests`` logs (path, Range header) per request."""

    files: dict[str, bytes] = field(default_factory=dict)
    drops: dict[str, list[int]] = field(default_factory=dict)  # path -> cut the next responses after N body bytes
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    base: str = ""


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # http.server calls it by this name
        s = self.served
        s.requests.append((self.path, self.headers.get("Range")))
        data = s.files.get(self.path)
        if data is None:
            self.send_error(404, "Not Found")
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start, m = 0, re.match(r"^bytes=(\d+)-$", self.headers.get("Range") or "")
        if_range = self.headers.get("If-Range")
        if m and (if_range is None or if_range == etag):
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cuts = s.drops.get(self.path)
        if cuts:
            body = body[: cuts.pop(0)]  # then the connection closes: fewer bytes than announced
        self.wfile.write(body)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    served.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(dl, "RETRY_DELAY", 0.0)
    monkeypatch.delenv(dl.MIRROR_ENV, raising=False)
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


LAYOUT = {f"{split}/img_{i}.png": png_bytes(10 * k + i) for k, split in enumerate(("trainA", "trainB", "testA",
                                                                                    "testB")) for i in range(2)}


def make_zip(entries: dict[str, bytes], prefix: str = "horse2zebra/") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(prefix + "trainA/", b"")
        for name, data in entries.items():
            z.writestr(prefix + name if not name.startswith(("/", "..", "__MACOSX")) else name, data)
    return buf.getvalue()


def make_tar(entries: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            t.addfile(info)
    return buf.getvalue()


def download(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    return run_cli(["data", "download", *args, "--no-progress"], capsys)


def assert_layout(target: Path) -> None:
    got = {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    assert got == LAYOUT


# ------------------------------------------------------------------------------------------------ download

def test_download_extracts_the_layout_and_prints_the_sha256(server: Served, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_zip({**LAYOUT, "__MACOSX/._junk": b"x"})
    server.files["/h2z.zip"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    code, out, err = download(["horse2zebra", str(tmp_path / "ds"), "--url", server.base + "/h2z.zip"], capsys)
    assert code == 0, err
    assert_layout(tmp_path / "ds" / "horse2zebra")
    assert f"sha256 {digest} (nothing pinned: size and archive checked; pin it with --sha256 {digest})" in out
    assert "trainA 2, trainB 2, testA 2, testB 2 files" in out
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["horse2zebra"]  # no .part, .json or lock left
    assert run_cli(["data", "check", str(tmp_path / "ds" / "horse2zebra")], capsys)[0] == 0

    # an existing non-empty target is kept unless --force; the mirror variable serves a known name too
    monkeypatch.setenv(dl.MIRROR_ENV, server.base + "/mirror/")
    server.files["/mirror/horse2zebra.zip"] = archive
    code, _, err = download(["horse2zebra", str(tmp_path / "ds")], capsys)
    assert code == 2 and "exists and is not empty; pass --force" in error_line(err)
    code, out, err = download(["horse2zebra", str(tmp_path / "ds"), "--force", "--sha256", digest.upper()], capsys)
    assert code == 0, err
    assert f"sha256 {digest} (matches the pinned value)" in out
    assert server.requests[-1] == ("/mirror/horse2zebra.zip", None)
    assert_layout(tmp_path / "ds" / "horse2zebra")


def test_download_resumes_after_an_interrupted_transfer(server: Served, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    archive = make_zip(LAYOUT)
    server.files["/a.zip"] = archive
    cut = len(archive) // 3
    server.drops["/a.zip"] = [cut]
    args = ["apple2orange", str(tmp_path), "--url", server.base + "/a.zip"]
    code, _, err = download([*args, "--retries", "0"], capsys)
    assert code == 2 and "interrupted after" in err and "run the same command again to resume" in err
    assert (tmp_path / "apple2orange.part").stat().st_size == cut
    assert not (tmp_path / "apple2orange").exists()

    code, out, err = download(args, capsys)
    assert code == 0, err
    assert server.requests == [("/a.zip", None), ("/a.zip", f"bytes={cut}-")]
    assert hashlib.sha256(archive).hexdigest() in out
    assert_layout(tmp_path / "apple2orange")

    # within one run, dropped connections are resumed automatically
    server.requests.clear()
    server.drops["/a.zip"] = [100, 200]
    code, _, err = download([*args, "--force"], capsys)
    assert code == 0, err
    assert server.requests == [("/a.zip", None), ("/a.zip", "bytes=100-"), ("/a.zip", "bytes=300-")]
    assert err.count("connection lost") == 2


def test_a_changed_file_on_the_server_restarts_the_download(server: Served, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    server.files["/m.zip"] = make_zip({**LAYOUT, "trainA/extra.png": png_bytes(99)})
    server.drops["/m.zip"] = [500]
    args = ["monet2photo", str(tmp_path), "--url", server.base + "/m.zip"]
    assert download([*args, "--retries", "0"], capsys)[0] == 2
    server.files["/m.zip"] = make_zip(LAYOUT)  # new ETag: If-Range makes the server send it all again
    code, _, err = download(args, capsys)
    assert code == 0, err
    assert server.requests[-1] == ("/m.zip", "bytes=500-")
    assert_layout(tmp_path / "monet2photo")


def test_a_verified_download_is_kept_when_the_disk_is_full(server: Served, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/f.zip"] = make_zip(LAYOUT)
    args = ["facades", str(tmp_path), "--url", server.base + "/f.zip"]
    real, asked = shutil.disk_usage, []
    with monkeypatch.context() as m:
        m.setattr(dl.shutil, "disk_usage", lambda path: real(path)._replace(free=10))
        code, _, err = download(args, capsys)
    assert code == 2 and "not enough disk space" in error_line(err) and "the download needs" in err
    server.requests.clear()

    def full_after_download(path: str) -> object:  # room for the archive, none left for what it holds
        asked.append(path)
        return real(path)._replace(free=real(path).free if len(asked) == 1 else 10)

    with monkeypatch.context() as m:
        m.setattr(dl.shutil, "disk_usage", full_after_download)
        code, _, err = download(args, capsys)
    assert code == 2 and "not enough disk space" in err and "extracting needs" in err
    assert (tmp_path / "facades.part").exists()
    code, _, err = download(args, capsys)
    assert code == 0, err
    assert len(server.requests) == 1  # the complete .part was not fetched again
    assert_layout(tmp_path / "facades")


def test_sha256_mismatch_deletes_the_download(server: Served, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = make_zip(LAYOUT)
    server.files["/z.zip"] = archive
    code, _, err = download(["maps", str(tmp_path), "--url", server.base + "/z.zip", "--sha256", "ab" * 32], capsys)
    assert code == 2
    err = error_line(err)
    assert f"sha256 mismatch for maps: expected {'ab' * 32}, got {hashlib.sha256(archive).hexdigest()}" in err
    assert "the download was deleted" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("archive", "message"), [
    (lambda: _corrupt(make_zip(LAYOUT)), "archive is damaged: member 'horse2zebra/trainA/img_0.png' fails its CRC"),
    (lambda: b"<!DOCTYPE html><html>moved</html>", "not a zip or tar archive (it looks like a web page"),
    (lambda: make_zip({**LAYOUT, "../evil.txt": b"x"}), "member '../evil.txt' would be written outside"),
    (lambda: make_zip({**LAYOUT, "/abs.txt": b"x"}), "member '/abs.txt' has an absolute path"),
    (lambda: make_tar({**LAYOUT}, {"trainA/link": (tarfile.SYMTYPE, "../../outside")}), "points outside it"),
    (lambda: make_tar({**LAYOUT}, {"trainA/link": (tarfile.SYMTYPE, "/etc/passwd")}), "points to the absolute"),
    (lambda: make_zip({"trainA/x.png": b"x", "testA/y.png": b"y"}), "does not hold trainA/, trainB/, testA/, testB/"),
], ids=["corrupt", "html", "traversal", "absolute", "tar-link-out", "tar-link-abs", "layout"])
def test_bad_archives_are_refused(archive, message: str, server: Served, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    server.files["/bad"] = archive()
    code, _, err = download(["vangogh2photo", str(tmp_path / "ds"), "--url", server.base + "/bad"], capsys)
    assert code == 2
    err = error_line(err)
    assert message in err and "the download was deleted (sha256 " in err
    assert list((tmp_path / "ds").iterdir()) == []  # no target, no .part, no temporary folder
    assert not (tmp_path / "evil.txt").exists() and not Path("/abs.txt").exists()


def _corrupt(archive: bytes) -> bytes:
    """Flip a byte inside the first stored image (the zip's structure stays intact, its CRC does not)."""
    i = archive.index(b"IDAT") + 8
    return archive[:i] + bytes([archive[i] ^ 0xFF]) + archive[i + 1:]


def test_tar_archives_links_inside_and_a_top_level_layout(server: Served, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    links = {"trainA/again.png": (tarfile.LNKTYPE, "trainA/img_0.png"), "testB/alias": (tarfile.SYMTYPE, "img_0.png")}
    server.files["/c.tar.gz"] = make_tar(LAYOUT, links)
    code, out, err = download(["cat2dog", str(tmp_path), "--url", server.base + "/c.tar.gz"], capsys)
    assert code == 0, err
    target = tmp_path / "cat2dog"
    assert (target / "trainA" / "again.png").read_bytes() == LAYOUT["trainA/img_0.png"]  # a hard link: a copy
    assert not (target / "testB" / "alias").exists() and "skipped 1 symbolic link(s)" in err
    assert "trainA 3, trainB 2, testA 2, testB 2 files" in out


def test_download_errors_are_one_line(server: Served, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now: connection refused, as without a network
    silent = socket.socket()  # accepts connections (the kernel's backlog) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        cases = [
            (["nope", str(tmp_path)], "unknown dataset 'nope'; known: apple2orange, cat2dog, cezanne2photo"),
            (["horse2zebra", str(tmp_path), "--url", f"http://127.0.0.1:{port}/x.zip"], "cannot reach 127.0.0.1"),
            (["horse2zebra", str(tmp_path), "--url", server.base + "/missing.zip"], "HTTP error 404"),
            (["horse2zebra", str(tmp_path), "--url", f"http://127.0.0.1:{silent.getsockname()[1]}/x.zip",
              "--timeout", "0.3"], "no answer from 127.0.0.1 within 0.3 s"),
            (["horse2zebra", str(tmp_path), "--sha256", "1234"], "--sha256 must be 64 hexadecimal digits"),
            (["horse2zebra", str(tmp_path), "--url", "ftp://example.org/x.zip"], "not an http:// or https://"),
            (["../up", str(tmp_path), "--url", server.base + "/x.zip"], "bad dataset name '../up'"),
            (["horse2zebra"], "give NAME and DIR"),
        ]
        for args, message in cases:
            code, _, err = download(args, capsys)
            assert code == 2 and message in error_line(err), (args, err)
    finally:
        silent.close()
    (tmp_path / "horse2zebra").write_text("a file")
    code, _, err = download(["horse2zebra", str(tmp_path), "--force"], capsys)
    assert code == 2 and "exists and is not a folder" in err


def test_download_list(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = download(["--list"], capsys)
    assert code == 0
    for name in ("horse2zebra", "apple2orange", "summer2winter_yosemite", "monet2photo", "vangogh2photo", "cat2dog"):
        assert re.search(rf"^{name} +http://\S+/{name}\.zip", out, re.M)
    assert "no pinned sha256" in out and dl.MIRROR_ENV in out
    assert set(dl.DATASETS) >= {"cezanne2photo", "ukiyoe2photo", "maps", "facades", "iphone2dslr_flower"}
