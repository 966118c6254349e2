"""The user study (``nicegan user-study``): the vote database, the report's numbers, blinding, bad requests, the
command line, and a scripted participant clicking through the real page in headless Chromium."""

from __future__ import annotations

import importlib.util
import io
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.web.study import StudyItem, create_app, design, open_study, plan_trials
from nicegan.web.study_db import AlreadyVoted, StudyDB, Vote, build_report, report_from_db, wilson_interval
from tests.browser import free_port, save_screenshot, serve_app

# distinctive names: any of them in a participant-visible response is a leak
METHODS = ("alphagan", "betanet", "gammaflow")


def _pictures(n: int) -> list[np.ndarray]:
    """``n`` 96x96 photo crops (scikit-learn's bundled sample photos: no network), for a screenshot worth showing.

    The files are read straight from the installed package: importing scikit-learn would cost seconds."""
    spec = importlib.util.find_spec("sklearn")
    assert spec is not None and spec.submodule_search_locations, "scikit-learn (a dependency) is not installed"
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "images"
    photos = [np.asarray(Image.open(folder / name).convert("RGB")) for name in ("china.jpg", "flower.jpg")]
    out = []
    for i in range(n):
        photo = photos[i % 2]
        y, x = 40 + 37 * (i // 2) % 300, 60 + 53 * i % 500
        out.append(np.asarray(Image.fromarray(photo[y:y + 192, x:x + 192]).resize((96, 96), Image.BILINEAR)))
    return out


def _outputs(img: np.ndarray) -> dict[str, Image.Image]:
    """Three recognisably different "translations" of one input."""
    f = img.astype(np.float32)
    winter = np.clip(0.55 * f + 0.45 * f.mean(axis=2, keepdims=True) + [30, 40, 70], 0, 255)
    return {"alphagan": Image.fromarray(winter.astype(np.uint8)),
            "betanet": Image.fromarray(img).resize((24, 24), Image.BILINEAR).resize((96, 96), Image.BILINEAR),
            "gammaflow": Image.fromarray((img // 64 * 64 + 32).astype(np.uint8))}


def make_study(root: Path, n: int = 24, missing: dict[str, int] | None = None) -> tuple[list[str], Path]:
    """Sources (some in a sub-folder) and each method's outputs with the same relative names; one method writes
    JPEGs and PNG outputs carry their method's name in a text chunk, so blinding must strip both."""
    sources = root / "sources"
    for i, img in enumerate(_pictures(n)):
        rel = Path("sub" if i % 3 == 0 else ".") / f"in_{i:02d}"
        (sources / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save((sources / rel).with_suffix(".png"))
        for name, out in _outputs(img).items():
            if missing and i < missing.get(name, 0):
                continue
            target = root / "outputs" / name / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if name == "betanet":
                out.save(target.with_suffix(".jpg"), quality=90)
            else:
                info = PngImagePlugin.PngInfo()
                info.add_text("Software", f"{name} generator")
                out.save(target.with_suffix(".png"), pnginfo=info)
    return [f"{m}={root / 'outputs' / m}" for m in METHODS], sources


@pytest.fixture(scope="module")
def study_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], Path]:
    return make_study(tmp_path_factory.mktemp("study"))


# -- the report's numbers ------------------------------------------------------------------------------------------


def test_wilson_interval_matches_hand_computed_values() -> None:
    # p = k/n, centre = (p + z^2/2n) / (1 + z^2/n), half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2), z = 1.96
    for k, n, lo, hi in [(8, 20, 0.2188, 0.6134), (45, 100, 0.3561, 0.5476), (0, 10, 0.0, 0.2775),
                         (10, 10, 0.7225, 1.0), (1, 1, 0.2065, 1.0), (7, 18, 0.2030, 0.6138)]:
        got = wilson_interval(k, n)
        assert got == pytest.approx((lo, hi), abs=1e-4), (k, n)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def _v(participant: str, trial: int, shown: str, choice: str, check_of: int | None = None) -> Vote:
    return Vote(participant, trial, f"in_{trial}", tuple(shown.split()), choice, check_of, 1000)


def test_report_shares_win_matrix_and_attention_checks() -> None:
    a, b, c = "a", "b", "c"
    votes = [_v("p1", 1, "a b c", a), _v("p1", 2, "c a b", a), _v("p1", 3, "b c a", b),
             _v("p1", 4, "a c b", a, check_of=1),                            # consistent with trial 1
             _v("p2", 1, "a b c", c), _v("p2", 2, "b a c", a),
             _v("p2", 3, "c b a", b, check_of=1),                            # inconsistent: trial 1 was c
             _v("p3", 1, "b a c", b)]
    rep = build_report(votes, ["a", "b", "c"])
    assert [(s.name, s.chosen, s.shown) for s in rep.shares] == [("a", 3, 6), ("b", 2, 6), ("c", 1, 6)]
    assert rep.votes == 6 and rep.participants == ["p1", "p2", "p3"]
    assert rep.wins == [[0, 3, 3], [2, 0, 2], [1, 1, 0]]
    assert (rep.checks_answered, rep.checks_consistent, rep.failed, rep.excluded) == (2, 1, ["p2"], [])
    assert rep.shares[0].interval == pytest.approx(wilson_interval(3, 6))
    text = rep.text()
    assert "attention checks: 1 of 2 consistent (50 %); participants failing one: 1 (p2)" in text
    assert "participants: 3   votes: 6" in text

    strict = build_report(votes, ["a", "b", "c"], exclude_failed=True)
    assert [(s.chosen, s.shown) for s in strict.shares] == [(2, 4), (2, 4), (0, 4)]
    assert strict.excluded == ["p2"] and strict.participants == ["p1", "p3"] and strict.votes == 4
    assert "excluded (failed an attention check): p2" in strict.text()

    pairs = build_report([_v("p", 1, "a b", a), _v("p", 2, "b c", c), _v("p", 3, "c a", a), _v("q", 1, "a b", b)],
                         ["a", "b", "c"], pairs=True)
    assert [(s.chosen, s.shown) for s in pairs.shares] == [(2, 3), (1, 3), (1, 2)]
    assert pairs.wins == [[0, 1, 1], [1, 0, 0], [0, 1, 0]]


def test_a_missing_browser_fails_the_browser_tests_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.browser import browser_paths

    monkeypatch.setenv("NICEGAN_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y chromium chromium-driver"):
        browser_paths()


def test_trial_plans_are_per_participant_reproducible_with_attention_checks() -> None:
    items = [StudyItem(f"in_{i}", Path(f"in_{i}.png"), {m: Path(f"{m}/in_{i}.png") for m in METHODS})
             for i in range(12)]
    for pairs, per_trial in ((False, 3), (True, 2)):
        study = design(METHODS, items, pairs, trials=None, checks=None)
        assert (study.trials, study.checks) == ((14, 2) if not pairs else (20, 2))
        plan = plan_trials(study, "secret", "P1")
        assert plan == plan_trials(study, "secret", "P1") != plan_trials(study, "secret", "P2")
        assert plan != plan_trials(study, "other secret", "P1")
        assert [t.number for t in plan] == list(range(1, study.trials + 1))
        assert all(len(t.shown) == per_trial == len(set(t.shown)) for t in plan)
        regular = [(t.item, frozenset(t.shown)) for t in plan if t.check_of is None]
        assert len(regular) == len(set(regular)) == study.trials - 2  # no trial twice, except as a check
        checks = [t for t in plan if t.check_of is not None]
        assert len(checks) == 2
        for t in checks:
            orig = plan[t.check_of - 1]
            assert orig.check_of is None and orig.item == t.item and set(orig.shown) == set(t.shown)
            assert t.number - t.check_of >= 3 and orig.shown != t.shown  # later, and re-shuffled
    with pytest.raises(NiceganError, match="use trials=14 or fewer"):
        design(METHODS, items, False, trials=15, checks=None)


# -- the database --------------------------------------------------------------------------------------------------


def _meta(fingerprint: str = "f1") -> dict[str, str]:
    return {"methods": json.dumps(["a", "b"]), "fingerprint": fingerprint, "secret": "s", "items": "2",
            "trials": "2", "checks": "0", "pairs": "0"}


def test_database_survives_restart_and_refuses_a_second_vote(tmp_path: Path) -> None:
    path = tmp_path / "new" / "study.sqlite"
    db = StudyDB.open_for_study(path, _meta())
    db.record(_v("p1", 1, "a b", "a"))
    db.record(_v("p1", 2, "b a", "b"))
    with pytest.raises(AlreadyVoted, match="already answered trial 2"):
        db.record(_v("p1", 2, "b a", "a"))
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    del db
    again = StudyDB.open_for_study(path, {**_meta(), "secret": "other"})  # a restart keeps the stored secret
    assert again.meta()["secret"] == "s"
    assert [(v.participant, v.trial, v.choice, v.shown) for v in again.votes()] == [
        ("p1", 1, "a", ("a", "b")), ("p1", 2, "b", ("b", "a"))]
    assert StudyDB.open_existing(path).answered("p1") == {1, 2}
    with pytest.raises(NiceganError, match="holds another study"):
        StudyDB.open_for_study(path, _meta("f2"))


def test_database_concurrent_writers(tmp_path: Path) -> None:
    db = StudyDB.open_for_study(tmp_path / "study.sqlite", _meta())
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def participant(k: int) -> None:
        start.wait()
        for t in range(1, 16):
            db.record(_v(f"p{k}", t, "a b", "ab"[t % 2]))
        try:  # everyone races for the same (participant, trial): exactly one may win
            db.record(_v("shared", 1, "a b", "a"))
            outcomes.append("stored")
        except AlreadyVoted:
            outcomes.append("refused")

    threads = [threading.Thread(target=participant, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["refused"] * 7 + ["stored"]
    votes = StudyDB.open_existing(db.path).votes()
    assert len(votes) == 8 * 15 + 1
    assert Counter(v.participant for v in votes)["p3"] == 15


# -- blinding and bad requests over real HTTP ---------------------------------------------------------------------


def _leaks(text: str | bytes) -> list[str]:
    low = text.lower() if isinstance(text, str) else text.lower().decode("latin-1")
    return [m for m in (*METHODS, "outputs") if m in low]


def test_participants_never_see_method_names_and_bad_requests_are_answered(study_dirs: tuple[list[str], Path],
                                                                           tmp_path: Path) -> None:
    methods, sources = study_dirs
    db_path = tmp_path / "study.sqlite"
    server = open_study(methods, sources, db_path, trials=8, checks=2, progress=False)
    seen: list[tuple[str, str | bytes, str]] = []

    def get(client: httpx.Client, url: str, **kw: object) -> httpx.Response:
        r = client.get(url, **kw)
        seen.append((str(r.url), r.content, str(r.headers)))
        return r

    def post(client: httpx.Client, url: str, **kw: object) -> httpx.Response:
        r = client.post(url, **kw)
        seen.append((str(r.url), r.content, str(r.headers)))
        return r

    with serve_app(create_app(server)) as url, httpx.Client(base_url=url, timeout=20) as client:
        page = get(client, "/")
        assert page.status_code == 200 and "<title>Image study</title>" in page.text
        trial = get(client, "/api/trial", params={"pid": "P01"}).json()
        assert (trial["trial"], trial["total"], len(trial["options"])) == (1, 8, 3)
        for k in range(1, 5):
            for src in (trial["source"], *(o["src"] for o in trial["options"])):
                img = get(client, "/" + src)
                assert img.headers["content-type"] == "image/png"  # the JPEG method is not told apart by format
                assert Image.open(io.BytesIO(img.content)).size == (96, 96)
            choice = trial["options"][k % 3]["id"]
            trial = post(client, "/api/vote", json={"participant": "P01", "trial": k, "choice": choice,
                                                    "response_ms": 800 + k}).json()
            assert trial["trial"] == k + 1

        bad = {  # request -> (status, words of the message)
            "double vote": (post(client, "/api/vote", json={"participant": "P01", "trial": 4, "choice": "x",
                                                            "response_ms": 5}), 409, "already answered trial 4"),
            "skipping ahead": (post(client, "/api/vote", json={"participant": "P01", "trial": 7, "choice": "x",
                                                               "response_ms": 5}), 409, "not your current one"),
            "foreign choice": (post(client, "/api/vote", json={"participant": "P01", "trial": 5,
                                                               "choice": trial["source"].removeprefix("img/"),
                                                               "response_ms": 5}),
                               400, "not one of the images"),
            "no trial": (post(client, "/api/vote", json={"participant": "P01", "trial": 99, "choice": "x",
                                                         "response_ms": 5}), 400, "no trial 99"),
            "bad time": (post(client, "/api/vote", json={"participant": "P01", "trial": 5, "choice": "x",
                                                         "response_ms": -3}), 400, "response_ms"),
            "not json": (post(client, "/api/vote", content=b"{oops"), 400, "JSON object"),
            "json list": (post(client, "/api/vote", json=[1, 2]), 400, "JSON object"),
            "huge body": (post(client, "/api/vote", content=b"x" * 100_000), 413, "too large"),
            "bad id": (get(client, "/api/trial", params={"pid": "../../etc"}), 400, "participant id"),
            "no id": (get(client, "/api/trial"), 400, "participant id"),
            "unknown image": (get(client, "/img/0123456789abcdef0123456789abcdef"), 404, "no such image"),
        }
        for what, (r, status, words) in bad.items():
            assert r.status_code == status, (what, r.text)
            assert words in r.json()["error"], (what, r.text)
        for path in ("/docs", "/openapi.json", "/img/../study.sqlite"):
            assert get(client, path).status_code == 404

        # many participants at once: every vote lands, none is lost or doubled
        def participant(pid: str) -> None:
            with httpx.Client(base_url=url, timeout=20) as c:
                t = c.get("/api/trial", params={"pid": pid}).json()
                while not t["done"]:
                    t = c.post("/api/vote", json={"participant": pid, "trial": t["trial"],
                                                  "choice": t["options"][0]["id"], "response_ms": 10}).json()

        threads = [threading.Thread(target=participant, args=(f"C{k}",)) for k in range(10)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert get(client, "/api/trial", params={"pid": "C3"}).json() == {"done": True, "total": 8}

    # a restart: same tokens, and P01 continues at trial 5
    again = open_study(methods, sources, db_path, trials=8, checks=2, progress=False)
    with serve_app(create_app(again)) as url, httpx.Client(base_url=url, timeout=20) as client:
        resumed = get(client, "/api/trial", params={"pid": "P01"}).json()
        assert resumed["trial"] == 5 and resumed["options"] == trial["options"]

    for where, body, headers in seen:
        assert not _leaks(where) and not _leaks(body) and not _leaks(headers), (where, _leaks(body))
    votes = StudyDB.open_existing(db_path).votes()
    assert len(votes) == 4 + 10 * 8
    assert {v.choice for v in votes} <= set(METHODS)


# -- the command line ---------------------------------------------------------------------------------------------


def _serve(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = main(["user-study", "serve", *args])
    err = capsys.readouterr().err
    return code, err


def test_serve_input_errors_are_one_line(study_dirs: tuple[list[str], Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("bad input was accepted: the server started")

    monkeypatch.setattr(uvicorn, "run", never)
    methods, sources = study_dirs
    uneven, uneven_src = make_study(tmp_path / "uneven", n=6, missing={"betanet": 2})
    (tmp_path / "empty").mkdir()
    (tmp_path / "a_file").write_text("x")
    db = str(tmp_path / "ok.sqlite")
    cases = {
        "missing sources": (["--methods", *methods, "--sources", str(tmp_path / "nope"), "--db", db],
                            "--sources folder not found"),
        "missing method dir": (["--methods", methods[0], f"x={tmp_path / 'gone'}", "--sources", str(sources),
                                "--db", db], "method x folder not found"),
        "one method": (["--methods", methods[0], "--sources", str(sources), "--db", db], "at least 2 methods"),
        "no matching images": (["--methods", methods[0], f"empty={tmp_path / 'empty'}", "--sources", str(sources),
                                "--db", db], "method empty"),
        "mismatched files": (["--methods", *uneven, "--sources", str(uneven_src), "--db", db],
                             "betanet lacks 2 (in_01, sub/in_00)"),
        "bad spec": (["--methods", methods[0], "noequals", "--sources", str(sources), "--db", db], "NAME=DIR"),
        "same name": (["--methods", methods[0], methods[0], "--sources", str(sources), "--db", db], "twice"),
        "unwritable db": (["--methods", *methods, "--sources", str(sources), "--db",
                           str(tmp_path / "a_file" / "s.sqlite")], "--db"),
        "db is a folder": (["--methods", *methods, "--sources", str(sources), "--db", str(tmp_path)], "is a folder"),
        "not a database": (["--methods", *methods, "--sources", str(sources), "--db", str(tmp_path / "a_file")],
                           "exists and is not an SQLite database"),
        "too many trials": (["--methods", *methods, "--sources", str(sources), "--db", db, "--trials", "40"],
                            "use --trials 26 or fewer"),
        "too many checks": (["--methods", *methods, "--sources", str(sources), "--db", db, "--trials", "6",
                             "--checks", "4"], "too many"),
        "name in question": (["--methods", *methods, "--sources", str(sources), "--db", db, "--question",
                              "Is BetaNet better?"], "names the method"),
    }
    for what, (args, words) in cases.items():
        code, err = _serve(args, capsys)
        assert code == 2 and err.startswith("nicegan: error: ") and words in err, (what, err)
        assert len(err.strip().splitlines()) == 1, (what, err)
    assert not Path(db).exists() and (tmp_path / "a_file").read_text() == "x"  # nothing created or overwritten

    with socket.socket() as taken:  # a port in use is a one-line error too, not uvicorn's log line and exit
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _serve(["--methods", *methods, "--sources", str(sources), "--db", db, "--port", str(port)], capsys)
        assert code == 2 and f"cannot listen on 127.0.0.1:{port}" in err, err
    assert not Path(db).exists(), "a taken port leaves no empty study database behind"

    # --common-only proceeds without the inputs a method lacks (and the trial cap follows)
    server = open_study(uneven, uneven_src, tmp_path / "c.sqlite", common_only=True, progress=False)
    assert len(server.study.items) == 4 and server.study.trials == 6 and server.study.checks == 2

    made = tmp_path / "made.sqlite"
    open_study(methods, sources, made, trials=4, checks=0, progress=False)
    for args, words in [([str(tmp_path / "none.sqlite")], "not found"), ([str(tmp_path / "a_file")], "not a nicegan"),
                        ([str(tmp_path)], "not a file"),
                        ([str(made), "--csv", str(tmp_path / "a_file" / "v.csv")], "cannot create the folder of")]:
        assert main(["user-study", "report", *args]) == 2
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err


def test_serve_without_the_web_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if it were not installed
    for name in ("x", "y", "s"):  # folders that exist: the missing extra is what is left to say
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["user-study", "serve", "--methods", "a=x", "b=y", "--sources", "s", "--db", "d"]) == 2
    err = capsys.readouterr().err
    assert 'fastapi is missing): pip install "nicegan[web]"' in err and len(err.strip().splitlines()) == 1, err


def test_serve_command_runs_until_interrupted(study_dirs: tuple[list[str], Path], tmp_path: Path) -> None:
    methods, sources = study_dirs
    port = free_port()
    cmd = [sys.executable, "-m", "nicegan", "user-study", "serve", "--methods", *methods, "--sources", str(sources),
           "--db", str(tmp_path / "s.sqlite"), "--port", str(port), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/trial?pid=x", timeout=2).json()["total"] == 20:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"open http://127.0.0.1:{port}/" in err and "3 methods, 24 inputs" in err


# -- a real participant in a real browser ---------------------------------------------------------------------------


def test_scripted_participant_in_headless_chromium(chrome: object, study_dirs: tuple[list[str], Path],
                                                   tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    methods, sources = study_dirs
    db_path = tmp_path / "study.sqlite"
    server = open_study(methods, sources, db_path, trials=20, checks=2, progress=False)
    plan = plan_trials(server.study, server.secret, "browser-1")
    picked: dict[int, str] = {}
    with serve_app(create_app(server)) as url:
        chrome.get(f"{url}/?pid=browser-1")
        wait = WebDriverWait(chrome, 20, poll_frequency=0.02)
        for k in range(1, 21):
            wait.until(lambda d, k=k: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == str(k))
            progress, tokens = chrome.execute_script(  # one round trip instead of one per element
                "return [document.getElementById('progress').textContent,"
                " Array.from(document.querySelectorAll('button.option'), b => b.dataset.choice)]")
            assert progress == f"Trial {k} of 20"
            shown = [server.method_of(t) for t in tokens]
            assert tuple(shown) == plan[k - 1].shown  # the page shows the planned order
            if k == 1:
                save_screenshot(chrome, "user-study.png")
            choice = METHODS[plan[k - 1].item % 3]  # a consistent taste: the same input gets the same answer
            chrome.find_elements(By.CSS_SELECTOR, "button.option")[shown.index(choice)].click()
            picked[k] = choice
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "done")
        assert "Thank you" in chrome.find_element(By.ID, "done").text
        assert not _leaks(chrome.page_source)

    votes = StudyDB.open_existing(db_path).votes()
    assert [(v.participant, v.trial, v.choice) for v in votes] == [("browser-1", k, picked[k]) for k in range(1, 21)]
    assert all(0 <= v.response_ms < 60_000 for v in votes)
    checks = [v for v in votes if v.check_of is not None]
    assert len(checks) == 2 and all(picked[v.check_of] == v.choice for v in checks)

    counted = Counter(picked[k] for k in range(1, 21) if plan[k - 1].check_of is None)
    rep = report_from_db(StudyDB.open_existing(db_path))
    assert {s.name: (s.chosen, s.shown) for s in rep.shares} == {m: (counted[m], 18) for m in METHODS}
    assert (rep.votes, len(rep.participants), rep.checks_answered, rep.checks_consistent) == (18, 1, 2, 2)

    chart = tmp_path / "chart.png"
    assert main(["user-study", "report", str(db_path), "--out", str(chart), "--csv", str(tmp_path / "v.csv")]) == 0
    out = capsys.readouterr().out
    assert "participants: 1   votes: 18" in out and "attention checks: 2 of 2 consistent" in out
    for m in METHODS:
        assert any(line.split()[:3] == [m, str(counted[m]), "18"] for line in out.splitlines()), out
    with Image.open(chart) as im:
        assert im.format == "PNG" and im.size[0] > 300
    assert len((tmp_path / "v.csv").read_text().splitlines()) == 21
