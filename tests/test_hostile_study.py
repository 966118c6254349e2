"""Fault injection on ``nicegan user-study serve`` (issue 25): a database that is not this study's is refused and
left byte for byte untouched, hostile vote bodies get a 4xx (never a 500), and a body that stops arriving is
answered 408 instead of holding its connection for ever. The promises that held before (no acknowledged vote lost
or doubled across kill -9, 409 on double votes) are pinned in tests/test_study.py."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from nicegan.core.errors import NiceganError
from nicegan.web.study import create_app, open_study
from nicegan.web.study_db import _SCHEMA
from tests.browser import serve_app
from tests.hostile import deadline
from tests.test_study import make_study


@pytest.fixture(scope="module")
def design(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    return make_study(tmp_path_factory.mktemp("hostile_study") / "s", n=4)


def _fingerprint(folder: Path) -> dict[str, str]:
    """Every file beside (and including) the database, with its SHA-256: nothing may be written, not even -wal."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _foreign(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);"
                      "INSERT INTO customers (name) VALUES ('ada'), ('grace');")
    con.commit()
    con.close()


def _votes_without_meta(path: Path, n: int = 1205) -> None:
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA)
    con.execute("DROP TABLE meta")
    con.executemany("INSERT INTO votes (participant, trial, item, shown, choice, check_of, response_ms, created) "
                    "VALUES (?, ?, 'x', '[\"a\", \"b\"]', 'a', NULL, 900, '2026-01-01')",
                    [(f"P{k // 10}", k % 10 + 1) for k in range(n)])
    con.commit()
    con.close()


def _meta_of_something_else(path: Path) -> None:
    con = sqlite3.connect(path)
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "INSERT INTO meta VALUES ('app', 'someone else');")
    con.commit()
    con.close()


@pytest.mark.parametrize(("make", "message"), [
    (_foreign, "another program's SQLite database"),
    (_votes_without_meta, "holds 1,205 votes but no study description"),
    (_meta_of_something_else, "not a nicegan user-study database"),
])
def test_a_database_that_is_not_this_studys_is_refused_untouched(make, message: str, design, tmp_path: Path) -> None:
    methods, sources = design
    folder = tmp_path / "db"
    folder.mkdir()
    db = folder / "study.sqlite"
    make(db)
    before = _fingerprint(folder)
    with pytest.raises(NiceganError, match=message):
        open_study(methods, sources, db, trials=2, checks=0, progress=False)
    assert _fingerprint(folder) == before  # the same bytes, and no -wal or -shm file beside it


def test_a_first_start_killed_before_its_description_is_reused(design, tmp_path: Path) -> None:
    """Tables created, description not yet stored, no vote: what a kill -9 during creation leaves; it is reused."""
    methods, sources = design
    db = tmp_path / "study.sqlite"
    con = sqlite3.connect(db)
    con.executescript(_SCHEMA)
    con.close()
    study = open_study(methods, sources, db, trials=2, checks=0, progress=False)
    assert study is not None


def _raw(url: str, request: bytes, timeout: float = 15) -> bytes:
    host, port = url.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(request)
        reply = b""
        while more := s.recv(65536):
            reply += more
    return reply


def test_hostile_vote_bodies_get_a_4xx_and_a_stalled_body_408(design, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import nicegan.web.study as study_module

    monkeypatch.setattr(study_module, "BODY_TIMEOUT_S", 1.0)
    methods, sources = design
    study = open_study(methods, sources, tmp_path / "s.sqlite", trials=2, checks=0, progress=False)
    bodies = {
        "2000 nested arrays": "[" * 2000 + "]" * 2000,
        "4000 nested arrays, unclosed": "[" * 4000,
        "nested objects": '{"a":' * 1000 + "1" + "}" * 1000,
        "5000-digit trial": '{"participant": "P1", "trial": ' + "9" * 5000 + "}",
        "NaN": '{"participant": "P1", "trial": NaN}',
        "not UTF-8": b"\xff\xfe{}",
        "a list": "[1, 2]",
        "empty": "",
    }
    with serve_app(create_app(study)) as url, httpx.Client(base_url=url, timeout=20) as client:
        for name, body in bodies.items():
            r = client.post("/api/vote", content=body, headers={"Content-Type": "application/json"})
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            assert r.json().keys() == {"error"}, name
        t0 = time.monotonic()
        with deadline(30):
            reply = _raw(url, b"POST /api/vote HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 100\r\n\r\n" + b'{"partici')  # 9 of 100 bytes, then nothing
        assert reply.startswith(b"HTTP/1.1 408") and b"stalled" in reply, reply[:200]
        assert time.monotonic() - t0 < 10
        assert client.get("/api/trial", params={"pid": "P9"}).status_code == 200  # and the server carries on
        assert json.loads(client.get("/api/trial", params={"pid": "P9"}).text)["trial"] == 1
