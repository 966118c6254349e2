"""The paper's user study: a blinded preference test of K methods' translations of the same inputs.

A study is a folder of source images and, per method, a folder of its outputs with the same relative names (any
image extension), such as the folders ``nicegan translate`` writes. Each participant gets their own random but
reproducible sequence of trials (seeded by the study's secret and their id): a trial shows the source and the
methods' outputs (all of them, or a pair) in random order, and the participant clicks the best. A few trials are
attention checks: an earlier trial shown again later, in a new order.

Blinding: the page, its JSON and its image URLs never carry a method name, a file name or anything derived from
them a participant could decode. Images are served at ``img/<token>``, where the token is an HMAC of the study's
secret (kept in the database, never sent), and every image is re-encoded as a metadata-free PNG so file formats
and embedded text cannot give a method away. The server maps tokens back to methods when a vote arrives.

FastAPI and uvicorn are imported only when the app is built (``pip install "nicegan[web]"``). This module does not
use ``from __future__ import annotations``: FastAPI must see the real ``Request`` class of the routes defined in
:func:`create_app`, which string annotations would hide (it is imported inside the function).
"""

import asyncio
import functools
import hashlib
import hmac
import io
import itertools
import json
import logging
import random
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nicegan.core.errors import NiceganError
from nicegan.core.limits import BoundsError, load_json
from nicegan.web.common import BASE_HEADERS, PAGE_POLICY, ByteBoundedCache, require_web
from nicegan.web.pages import render
from nicegan.web.study_db import AlreadyVoted, StudyDB, Vote

log = logging.getLogger("nicegan")

#: image files a study folder may hold (others, such as notes or JSON, are ignored)
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
METHOD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")
PARTICIPANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
DEFAULT_TRIALS = 20
DEFAULT_CHECKS = 2
DEFAULT_QUESTION = "Which image is the best translation of the input?"
#: the longest response time stored; a larger value is refused (a tab left open overnight is not a response time)
MAX_RESPONSE_MS = 3_600_000
MAX_BODY_BYTES = 4096
#: the longest a vote's body may take to arrive (it is under 4 KB): a client that stops sending is answered 408
BODY_TIMEOUT_S = 10.0
#: re-encoded images kept in memory (full-resolution outputs can be megabytes each)
PNG_CACHE_BYTES = 256 * 2**20


class StudyRequestError(NiceganError):
    """A participant's request that cannot be served; ``status`` is its HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# -- the study: which images, which methods ----------------------------------------------------------------------


@dataclass(frozen=True)
class StudyItem:
    """One input: its relative name (no extension), the source image and each method's output."""

    stem: str
    source: Path
    outputs: dict[str, Path]


@dataclass(frozen=True)
class Trial:
    """One screen of a participant's sequence: an input and the methods in screen order (left to right)."""

    number: int                 # 1-based
    item: int                   # index into Study.items
    shown: tuple[str, ...]
    check_of: int | None = None  # attention checks: the trial number this one repeats


@dataclass(frozen=True)
class Study:
    """What is being compared and how each participant's sequence is made."""

    methods: tuple[str, ...]
    items: tuple[StudyItem, ...]
    pairs: bool = False
    trials: int = DEFAULT_TRIALS   # per participant, attention checks included
    checks: int = DEFAULT_CHECKS

    @property
    def pool(self) -> list[tuple[int, tuple[str, ...]]]:
        """Every distinct trial: (input, methods shown), before shuffling."""
        combos = list(itertools.combinations(self.methods, 2)) if self.pairs else [self.methods]
        return [(i, c) for i in range(len(self.items)) for c in combos]

    def fingerprint(self) -> str:
        """Identifies the design: a database made for another design is refused."""
        design = {"methods": list(self.methods), "items": [it.stem for it in self.items], "pairs": self.pairs,
                  "trials": self.trials, "checks": self.checks}
        return hashlib.sha256(json.dumps(design, sort_keys=True).encode()).hexdigest()

    def meta(self, secret: str) -> dict[str, str]:
        """The description stored in a new database."""
        return {"methods": json.dumps(list(self.methods)), "items": str(len(self.items)),
                "pairs": "1" if self.pairs else "0", "trials": str(self.trials), "checks": str(self.checks),
                "fingerprint": self.fingerprint(), "secret": secret}


def parse_methods(specs: list[str]) -> list[tuple[str, Path]]:
    """``NAME=DIR`` strings as (name, folder); names must be unique and plain."""
    out: list[tuple[str, Path]] = []
    seen: dict[str, str] = {}
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not folder:
            raise NiceganError(f"methods {spec!r}: expected NAME=DIR, e.g. nicegan=out/nicegan", option="methods")
        if not METHOD_NAME.fullmatch(name):
            raise NiceganError(f"methods {spec!r}: a method name is 1-40 letters, digits or _ . + - (starting "
                               "with a letter or digit)", option="methods")
        if name.lower() in seen:
            raise NiceganError(f"methods names {seen[name.lower()]!r} twice; give each method its own name",
                               option="methods")
        seen[name.lower()] = name
        out.append((name, Path(folder).expanduser()))
    if len(out) < 2:
        raise NiceganError(f"a study compares at least 2 methods, each NAME=DIR; got {len(out)} (methods)",
                           option="methods")
    return out


def _images_by_stem(folder: Path, what: str) -> dict[str, Path]:
    from nicegan.data.images import list_files

    option = what if what.isidentifier() else None  # "sources": a setting, named as such in the errors
    if not folder.exists():
        raise NiceganError(f"{what} folder not found: {folder}", option=option)
    if not folder.is_dir():
        raise NiceganError(f"{what} {folder} is not a folder", option=option)
    skipped: list[tuple[Path, str]] = []
    out: dict[str, Path] = {}
    for f in list_files(folder, skipped):
        if f.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        stem = f.relative_to(folder).with_suffix("").as_posix()
        if stem in out:
            raise NiceganError(f"{what} {folder} has two images for {stem!r} ({out[stem].name} and {f.name}); "
                               "keep one", option=option)
        out[stem] = f
    if skipped:
        log.warning("%s %s: %d entries that are not readable files were skipped (first: %s, %s)", what, folder,
                    len(skipped), skipped[0][0], skipped[0][1], extra={"option": option})
    return out


def _some(names: list[str] | set[str], n: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def find_items(sources: Path, methods: list[tuple[str, Path]], common_only: bool = False,
               progress: bool | None = None) -> list[StudyItem]:
    """Match each source image with every method's output of the same relative name, and check they all decode.

    A method missing outputs is an error naming the inputs (with ``common_only``, those inputs are left out with
    a warning); outputs that match no source are ignored with a warning."""
    from nicegan.data.images import scan_images

    src = _images_by_stem(sources, "sources")
    if not src:
        raise NiceganError(f"no images in sources={sources}", option="sources")
    outputs: dict[str, dict[str, Path]] = {}
    missing: dict[str, set[str]] = {}
    for name, folder in methods:
        outs = _images_by_stem(folder, f"method {name}")
        matched = outs.keys() & src.keys()
        if not matched:
            example = next(iter(src))
            raise NiceganError(f"method {name} ({folder}) has no image matching an input of sources={sources}: "
                               f"outputs need the input's relative name with any image extension, e.g. "
                               f"{folder / example}.png for {src[example]}", option="sources")
        if extra := outs.keys() - src.keys():
            log.warning("method %s: %d images match no input and are not used (%s)", name, len(extra), _some(extra))
        if lacking := src.keys() - outs.keys():
            missing[name] = lacking
        outputs[name] = outs
    common = sorted(set(src).difference(*missing.values()))
    if missing:
        where = "; ".join(f"{name} lacks {len(s)} ({_some(s)})" for name, s in missing.items())
        if not common_only:
            raise NiceganError(f"not every input has an output of every method: {where}; add them, or pass "
                               "common_only to use only the inputs all methods have", option="common_only")
        if not common:
            raise NiceganError(f"no input has an output of every method: {where}")
        log.warning("using the %d of %d inputs that every method has (%s)", len(common), len(src), where)
    items = [StudyItem(stem, src[stem], {name: outputs[name][stem] for name, _ in methods}) for stem in common]
    files = [p for it in items for p in (it.source, *it.outputs.values())]
    bad = scan_images(files, desc="checking study images", progress=progress).bad
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise NiceganError(f"cannot use {bad[0][0]}: {bad[0][1]}{more}")
    return items


def design(methods: tuple[str, ...], items: list[StudyItem], pairs: bool, trials: int | None,
           checks: int | None) -> Study:
    """The study with ``trials`` per participant (``checks`` of them attention checks), checked against what the
    inputs allow. Defaults: 20 trials (fewer when there are fewer distinct ones), 2 of them checks."""
    study = Study(tuple(methods), tuple(items), pairs, 0, 0)
    distinct = len(study.pool)
    if checks is None:
        checks = DEFAULT_CHECKS if trials is None else min(DEFAULT_CHECKS, trials // 2)
    if trials is None:
        regular = min(DEFAULT_TRIALS - checks, distinct)
        checks = min(checks, regular)
        trials = regular + checks
    regular = trials - checks
    if trials < 1:
        raise NiceganError(f"trials must be at least 1, got {trials}", option="trials")
    if checks < 0 or regular < max(1, checks):
        raise NiceganError(f"checks={checks} is too many for trials={trials}: each attention check repeats one "
                           f"of the other {regular} trials (at most {trials // 2} checks)", option="checks")
    if regular > distinct:
        what = f"{len(items)} inputs x {len(study.pool) // max(1, len(items))} pairs" if pairs else \
            f"{len(items)} inputs"
        raise NiceganError(f"trials={trials} with {checks} attention checks needs {regular} distinct trials, but "
                           f"this study has {distinct} ({what}); use trials={distinct + checks} or fewer",
                           option="trials")
    return Study(study.methods, study.items, pairs, trials, checks)


def _hmac(secret: str, *parts: str) -> bytes:
    return hmac.new(secret.encode(), "\0".join(parts).encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


def plan_trials(study: Study, secret: str, participant: str) -> list[Trial]:
    """The participant's sequence: the same for the same secret and id (so a reload or a server restart changes
    nothing), different between participants.

    Attention checks repeat an earlier regular trial at least a few screens later when possible, with the methods
    shuffled again, so a consistent answer means the same method, not the same position."""
    rng = random.Random(int.from_bytes(_hmac(secret, "plan", participant)[:8], "big"))
    regular = study.trials - study.checks
    seq: list[list[Any]] = [[item, tuple(rng.sample(combo, len(combo))), None]
                            for item, combo in rng.sample(study.pool, regular)]
    originals = rng.sample(seq[: max(study.checks, 2 * regular // 3)], study.checks)
    for orig in originals:
        pos = next(i for i, e in enumerate(seq) if e is orig)
        at = rng.randint(min(pos + 3, len(seq)), len(seq))
        shown = tuple(rng.sample(orig[1], len(orig[1])))
        if shown == orig[1]:  # rotating distinct names always gives another order
            shown = shown[1:] + shown[:1]
        seq.insert(at, [orig[0], shown, orig])
    number = {id(e): n for n, e in enumerate(seq, 1)}
    return [Trial(n, e[0], e[1], None if e[2] is None else number[id(e[2])]) for n, e in enumerate(seq, 1)]


# -- serving: what a participant may see ---------------------------------------------------------------------


class StudyServer:
    """The study's logic behind the web page, free of HTTP: next trial, vote, image bytes.

    Everything it returns to a participant is built from tokens, trial numbers and the question text only."""

    def __init__(self, study: Study, db: StudyDB, question: str = DEFAULT_QUESTION) -> None:
        self.study, self.db, self.question = study, db, question
        self.secret = db.meta()["secret"]
        self._token_of: dict[tuple[str, int], str] = {}
        self._path_of: dict[str, Path] = {}
        for i, item in enumerate(study.items):
            for who, path in (("", item.source), *item.outputs.items()):
                token = _hmac(self.secret, "image", who, item.stem).hex()[:32]
                self._token_of[(who, i)] = token
                self._path_of[token] = path
        self._png_cache = ByteBoundedCache(PNG_CACHE_BYTES)
        self._plan = functools.lru_cache(maxsize=4096)(lambda pid: plan_trials(study, self.secret, pid))

    @staticmethod
    def check_participant(participant: object) -> str:
        if not isinstance(participant, str) or not PARTICIPANT_ID.fullmatch(participant):
            raise StudyRequestError("a participant id is 1-64 letters, digits or _ . @ - (starting with a letter or "
                                    "digit); use the link you were given")
        return participant

    def _payload(self, participant: str, plan: list[Trial], answered: set[int]) -> dict[str, Any]:
        pending = [t for t in plan if t.number not in answered]
        if not pending:
            return {"done": True, "total": len(plan)}
        t = pending[0]
        options = [self._token_of[(m, t.item)] for m in t.shown]
        return {"done": False, "trial": t.number, "total": len(plan), "participant": participant,
                "source": f"img/{self._token_of[('', t.item)]}",
                "options": [{"id": tok, "src": f"img/{tok}"} for tok in options]}

    def next_trial(self, participant: object) -> dict[str, Any]:
        """The participant's first unanswered trial, or ``{"done": true}``."""
        pid = self.check_participant(participant)
        return self._payload(pid, self._plan(pid), self.db.answered(pid))

    def vote(self, participant: object, trial: object, choice: object, response_ms: object) -> dict[str, Any]:
        """Store a vote, then return the next trial. Refuses a second vote on a trial (409), a trial that is not
        the participant's current one (409) and a choice that was not on screen (400)."""
        pid = self.check_participant(participant)
        plan = self._plan(pid)
        if isinstance(trial, bool) or not isinstance(trial, int) or not 1 <= trial <= len(plan):
            raise StudyRequestError(f"there is no trial {trial!r}; trials are numbered 1 to {len(plan)}")
        if isinstance(response_ms, bool) or not isinstance(response_ms, int | float) or \
                not 0 <= response_ms <= MAX_RESPONSE_MS:
            raise StudyRequestError(f"response_ms must be a number of milliseconds from 0 to {MAX_RESPONSE_MS}")
        answered = self.db.answered(pid)
        if trial in answered:
            raise StudyRequestError(f"you have already answered trial {trial}; your answer is kept", 409)
        current = min(t.number for t in plan if t.number not in answered)
        if trial != current:
            raise StudyRequestError(f"trial {trial} is not your current one (trial {current} is); reload the page",
                                    409)
        t = plan[trial - 1]
        by_token = {self._token_of[(m, t.item)]: m for m in t.shown}
        if not isinstance(choice, str) or choice not in by_token:
            raise StudyRequestError(f"that choice is not one of the images of trial {trial}")
        try:
            self.db.record(Vote(pid, trial, self.study.items[t.item].stem, t.shown, by_token[choice], t.check_of,
                                round(response_ms)))
        except AlreadyVoted as e:  # a second tab won the race between the check above and the insert
            raise StudyRequestError(f"{e}; your answer is kept", 409) from None
        return self._payload(pid, plan, answered | {trial})

    def method_of(self, token: str) -> str | None:
        """The method behind an image token (``""`` for a source image); for tests and the operator, never sent."""
        for (who, _), tok in self._token_of.items():
            if tok == token:
                return who
        return None

    def image(self, token: str) -> bytes:
        """The PNG bytes behind a token."""
        if token not in self._path_of:
            raise StudyRequestError("no such image", 404)
        return self._png_cache.get(token, lambda: self._encode(token))

    def _encode(self, token: str) -> bytes:
        from nicegan.data.images import ImageDecodeError, load_rgb

        path = self._path_of[token]
        try:
            im = load_rgb(path)
        except ImageDecodeError as e:  # changed on disk since the start: say so to the operator, not to the page
            log.warning("user study: cannot show %s: %s", path, e)
            raise StudyRequestError("this image cannot be shown; please tell the study's organiser", 500) from None
        buf = io.BytesIO()
        im.save(buf, format="PNG", compress_level=3)  # a fresh PNG: no metadata, same format for every method
        return buf.getvalue()


def open_study(methods: list[str], sources: str | Path, db_path: str | Path, *, pairs: bool = False,
               trials: int | None = None, checks: int | None = None, common_only: bool = False,
               question: str = DEFAULT_QUESTION, progress: bool | None = None) -> StudyServer:
    """Check the folders, then create or reopen the study's database: the server, ready to be put on the web."""
    named = parse_methods(methods)
    lowered = question.lower() if question != DEFAULT_QUESTION else ""  # a method may be called "input"
    for name, _ in named:
        if re.search(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", lowered):
            raise NiceganError(f"question names the method {name!r}; participants must not see method names",
                               option="question")
    items = find_items(Path(sources).expanduser(), named, common_only, progress)
    study = design(tuple(n for n, _ in named), items, pairs, trials, checks)
    db = StudyDB.open_for_study(db_path, study.meta(secrets.token_hex(32)))
    return StudyServer(study, db, question)


# -- the web app -------------------------------------------------------------------------------------------------


def create_app(server: StudyServer) -> Any:
    """The FastAPI app: the page at ``/``, ``api/trial``, ``api/vote`` and ``img/<token>``."""
    require_web("the user study")
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.requests import ClientDisconnect

    # no /docs (it loads scripts from a CDN) and no schema: the participant's browser needs only these routes
    app = FastAPI(title="study", docs_url=None, redoc_url=None, openapi_url=None)
    no_store = {**BASE_HEADERS, "Cache-Control": "no-store"}

    async def answer(work: Any, *args: Any) -> Any:
        try:
            return JSONResponse(await run_in_threadpool(work, *args), headers=no_store)
        except StudyRequestError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status, headers=no_store)
        except (NiceganError, sqlite3.Error) as e:  # the database said no (disk full, locked too long): carry on
            log.warning("user study: %s", e)
            return JSONResponse({"error": "the answer could not be stored; please try again"}, status_code=503,
                                headers=no_store)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Any:
        # an unknown path or method (404, 405) is answered like every other refusal: {"error": ...}, not FastAPI's
        # {"detail": ...}
        message = str(exc.detail).lower() if exc.status_code in (404, 405) else str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers={**no_store, **(exc.headers or {})})  # a 405 names the allowed methods

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Any:
        log.exception("user study: internal error on %s", request.url.path)
        return JSONResponse({"error": "internal error (logged on the server)"}, status_code=500, headers=no_store)

    page = render_page(server.question)

    @app.get("/", response_class=HTMLResponse)
    def index() -> Any:
        return HTMLResponse(page, headers={**no_store, "Content-Security-Policy": PAGE_POLICY})

    @app.get("/favicon.ico")
    def favicon() -> Any:
        return Response(status_code=204)

    @app.get("/api/trial")
    async def trial(request: Request) -> Any:
        return await answer(server.next_trial, request.query_params.get("pid"))

    @app.post("/api/vote")
    async def vote(request: Request) -> Any:
        async def read() -> bytes | None:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return None
            return body

        try:  # a client that stops sending holds no connection for ever
            body = await asyncio.wait_for(read(), BODY_TIMEOUT_S)
        except TimeoutError:
            return JSONResponse({"error": f"the vote stalled: not complete after {BODY_TIMEOUT_S:.0f} s"},
                                status_code=408, headers={**no_store, "Connection": "close"})
        except ClientDisconnect:
            return Response(status_code=400)
        if body is None:
            return JSONResponse({"error": "request too large"}, status_code=413, headers=no_store)
        try:  # bounded: thousands of nested arrays in 4 KB are a 400, not a RecursionError
            data = load_json(body, max_bytes=MAX_BODY_BYTES, max_nodes=64, max_depth=2)
        except BoundsError:
            return JSONResponse({"error": "the vote must be a JSON object"}, status_code=400, headers=no_store)
        if not isinstance(data, dict):
            return JSONResponse({"error": "the vote must be a JSON object"}, status_code=400, headers=no_store)
        return await answer(server.vote, data.get("participant"), data.get("trial"), data.get("choice"),
                            data.get("response_ms"))

    @app.get("/img/{token}")
    async def image(token: str) -> Any:
        try:
            data = await run_in_threadpool(server.image, token)
        except StudyRequestError as e:
            return JSONResponse({"error": str(e)}, status_code=e.status, headers=no_store)
        return Response(data, media_type="image/png", headers={**BASE_HEADERS,
                                                                "Cache-Control": "private, max-age=86400"})

    return app


def render_page(question: str) -> str:
    """The participant's page (``assets/study.html``), asking ``question``."""
    return render("study", "Image study", QUESTION=question)
