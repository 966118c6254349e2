"""The user study's stored votes: the SQLite database, and the report computed from it.

One row per vote (participant, trial, input, the methods in screen order, the choice, response time, time stamp).
The database runs in WAL mode so the web server's threads and a ``report`` run can read while votes are written,
and a ``UNIQUE (participant, trial)`` constraint makes a second vote on one trial impossible even when two requests
race. The study's secret (which seeds the trial order and the image tokens) lives in the ``meta`` table, so a
restarted server shows every participant the same trials and URLs as before.

This module needs nothing beyond the standard library (matplotlib only for the chart), so the report works
without the ``[web]`` extra.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sqlite3
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nicegan.core.errors import NiceganError
from nicegan.core.files import describe_os_error, entry_problem, replacing
from nicegan.core.limits import BoundsError, load_json

#: bump when the tables change; a database of another version is refused with a clear message
SCHEMA_VERSION = 1

#: z of a two-sided 95 % interval
Z95 = 1.959963984540054

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    id          INTEGER PRIMARY KEY,
    participant TEXT    NOT NULL,
    trial       INTEGER NOT NULL,          -- 1-based position in the participant's sequence
    item        TEXT    NOT NULL,          -- the input's relative path without extension
    shown       TEXT    NOT NULL,          -- JSON list of method names in screen order (left to right)
    choice      TEXT    NOT NULL,          -- the method picked
    check_of    INTEGER,                   -- attention checks: the trial this one repeats; NULL otherwise
    response_ms INTEGER NOT NULL,          -- from all images loaded to the click
    created     TEXT    NOT NULL,          -- ISO 8601, UTC
    UNIQUE (participant, trial)
);
"""


class AlreadyVoted(NiceganError):
    """The participant has already answered this trial."""


@dataclass(frozen=True)
class Vote:
    """One stored answer."""

    participant: str
    trial: int
    item: str
    shown: tuple[str, ...]
    choice: str
    check_of: int | None
    response_ms: int
    created: str = ""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class StudyDB:
    """A study's SQLite file. Every call opens its own short-lived connection, so one object serves many threads."""

    def __init__(self, path: str | os.PathLike, create: bool = False) -> None:
        self.path = Path(path).expanduser()
        self._create = create

    # -- opening -----------------------------------------------------------------------------------------------

    @classmethod
    def open_for_study(cls, path: str | os.PathLike, meta: dict[str, str]) -> StudyDB:
        """Create the database (with ``meta``) or reopen one made for the same study.

        ``meta["fingerprint"]`` identifies the study (methods, inputs, trial design); a database made for another
        study is refused rather than mixing votes of two designs. A new database gets ``meta`` stored as given;
        an existing one keeps its own values (its secret in particular)."""
        db = cls(path, create=True)
        if db.path.is_dir():
            raise NiceganError(f"db_path {db.path} is a folder; give a file name such as {db.path / 'study.sqlite'}",
                               option="db_path")
        parent = db.path.parent
        if not parent.exists():
            try:
                parent.mkdir(parents=True)
            except OSError as e:
                raise NiceganError(f"cannot create the folder of db_path {db.path}: {describe_os_error(e)}",
                                   option="db_path") from None
        elif not parent.is_dir():
            raise NiceganError(f"cannot create db_path {db.path}: {parent} is a file, not a folder", option="db_path")
        elif not os.access(parent, os.W_OK | os.X_OK):  # WAL mode writes -wal and -shm files next to the database
            raise NiceganError(f"cannot write the study database {db.path}: its folder {parent} is not writable")
        if not _is_sqlite_or_new(db.path):  # SQLite would happily write its tables into a short text file
            raise NiceganError(f"db_path {db.path} exists and is not an SQLite database; give a new file name",
                               option="db_path")
        db._refuse_foreign()  # before anything is written: another program's database is left untouched
        try:
            with db._connect() as con:
                mode = con.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise NiceganError(f"the study database {db.path} cannot use WAL mode (got {mode!r})")
                con.executescript(_SCHEMA)
                with db._write(con):
                    stored = dict(con.execute("SELECT key, value FROM meta").fetchall())
                    if not stored:
                        con.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                                        sorted({**meta, "schema": str(SCHEMA_VERSION)}.items()))
                        return db
        except sqlite3.DatabaseError as e:
            raise NiceganError(f"cannot use the study database {db.path}: {e}") from None
        db._check_schema(stored)
        if stored.get("fingerprint") != meta.get("fingerprint"):
            raise NiceganError(f"the study database {db.path} holds another study ({_describe(stored)}); this one is "
                               f"{_describe(meta)}: pass a new db_path, or the options that database was made with",
                               option="db_path")
        return db

    @classmethod
    def open_existing(cls, path: str | os.PathLike) -> StudyDB:
        """Open a database that must already exist (for the report); nothing is created."""
        db = cls(path)
        if not db.path.exists():
            raise NiceganError(f"study database not found: {db.path}")
        if not db.path.is_file():
            raise NiceganError(f"{db.path} is not a file (expected a study database made by nicegan user-study serve)")
        if not _is_sqlite_or_new(db.path) or db.path.stat().st_size == 0:
            raise NiceganError(f"{db.path} is not a nicegan user-study database (not an SQLite file)")
        try:
            stored = db.meta()
        except sqlite3.DatabaseError as e:
            raise NiceganError(f"{db.path} is not a nicegan user-study database ({e})") from None
        db._check_schema(stored)
        return db

    def _refuse_foreign(self) -> None:
        """Refuse, reading only, an existing SQLite file that is not this kind of study database: tables other than
        ``meta`` and ``votes`` (someone else's database would get the study's tables added), or votes without the
        study description (a new secret over old votes would reshuffle every participant's trials). A file whose
        description is missing and that holds no vote is what a first start killed mid-creation leaves: reused."""
        try:
            if not self.path.is_file() or self.path.stat().st_size == 0:
                return
        except OSError as e:
            raise NiceganError(describe_os_error(e, f"cannot read the study database {self.path}")) from None
        uri = f"file:{self.path.resolve().as_posix()}?mode=ro"
        try:
            con = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
            try:
                names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
                foreign = sorted(names - {"meta", "votes"})
                if foreign:
                    raise NiceganError(f"db_path {self.path} is another program's SQLite database (it has the tables "
                                       f"{', '.join(map(repr, foreign[:5]))}); it is left untouched: give a new file "
                                       "name", option="db_path")
                stored = dict(con.execute("SELECT key, value FROM meta").fetchall()) if "meta" in names else {}
                votes = con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] if "votes" in names else 0
            finally:
                con.close()
        except sqlite3.DatabaseError as e:
            raise NiceganError(f"cannot use the study database {self.path}: {e}; it is left untouched") from None
        if not stored and votes:
            raise NiceganError(f"the study database {self.path} holds {votes:,} votes but no study description (its "
                               "meta table is missing or empty): it is not this study's database, or it is damaged; "
                               "it is left untouched: give a new db_path", option="db_path")
        if stored:
            self._check_schema(stored)

    def _check_schema(self, stored: dict[str, str]) -> None:
        if "schema" not in stored or "methods" not in stored:
            raise NiceganError(f"{self.path} is not a nicegan user-study database (no study description in it)")
        if stored["schema"] != str(SCHEMA_VERSION):
            raise NiceganError(f"the study database {self.path} has format {stored['schema']}; this nicegan reads "
                               f"format {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._create:
            target, uri = str(self.path), False
        else:  # never create a database by reading one
            target, uri = f"file:{self.path.resolve().as_posix()}?mode=rw", True
        try:
            con = sqlite3.connect(target, timeout=30.0, isolation_level=None, uri=uri, check_same_thread=False)
        except sqlite3.OperationalError as e:
            raise NiceganError(f"cannot open the study database {self.path}: {e}") from None
        try:
            con.execute("PRAGMA busy_timeout=30000")  # concurrent writers wait for each other instead of failing
            yield con
        finally:
            con.close()

    @staticmethod
    @contextlib.contextmanager
    def _write(con: sqlite3.Connection) -> Iterator[None]:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    # -- reading and writing -----------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        """The study description stored at creation (methods, fingerprint, secret, design)."""
        with self._connect() as con:
            return dict(con.execute("SELECT key, value FROM meta").fetchall())

    def record(self, vote: Vote) -> Vote:
        """Store ``vote`` (time-stamped now); :class:`AlreadyVoted` if this participant answered this trial."""
        vote = Vote(vote.participant, vote.trial, vote.item, tuple(vote.shown), vote.choice, vote.check_of,
                    int(vote.response_ms), vote.created or _now())
        try:
            with self._connect() as con, self._write(con):
                con.execute("INSERT INTO votes (participant, trial, item, shown, choice, check_of, response_ms, "
                            "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (vote.participant, vote.trial, vote.item, json.dumps(list(vote.shown)), vote.choice,
                             vote.check_of, vote.response_ms, vote.created))
        except sqlite3.IntegrityError:
            raise AlreadyVoted(f"you have already answered trial {vote.trial}") from None
        return vote

    def answered(self, participant: str) -> set[int]:
        """Trial numbers this participant has answered."""
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT trial FROM votes WHERE participant = ?", (participant,))}

    def votes(self) -> list[Vote]:
        """Every vote, by participant then trial."""
        with self._connect() as con:
            rows = con.execute("SELECT participant, trial, item, shown, choice, check_of, response_ms, created "
                               "FROM votes ORDER BY participant, trial").fetchall()
        return [Vote(p, t, i, tuple(_stored_list(s)), c, k, ms, at) for p, t, i, s, c, k, ms, at in rows]

    def write_csv(self, path: Path) -> int:
        """All votes as CSV (shown order joined with ``|``), written atomically; returns the number of rows."""
        rows = self.votes()
        try:
            with replacing(Path(path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["participant", "trial", "item", "shown", "choice", "check_of", "response_ms", "created"])
                for v in rows:
                    w.writerow([v.participant, v.trial, v.item, "|".join(v.shown), v.choice,
                                "" if v.check_of is None else v.check_of, v.response_ms, v.created])
        except OSError as e:
            raise NiceganError(describe_os_error(e, f"cannot write {path}")) from None
        return len(rows)


def _is_sqlite_or_new(path: Path) -> bool:
    """Whether ``path`` is missing, empty, or starts with SQLite's file header."""
    problem = entry_problem(path)
    if problem not in (None, "file not found"):  # never open a FIFO or a device: it may block forever
        raise NiceganError(f"cannot use {path} as the study database: {problem}")
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except FileNotFoundError:
        return True
    except OSError as e:
        raise NiceganError(f"cannot read the study database {path}: {describe_os_error(e)}") from None
    return head in (b"", b"SQLite format 3\x00")


def _stored_list(text: str) -> list[str]:
    """A JSON list of names stored in the database (the methods, a vote's screen order), read within bounds: the
    file may have been edited by anyone."""
    try:
        value = load_json(text, max_bytes=1 << 20, max_nodes=10_000, max_depth=2)
    except BoundsError as e:
        raise NiceganError(f"the study database holds a damaged list of methods: it {e}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise NiceganError("the study database holds a damaged list of methods (not a list of names)")
    return value


def _describe(meta: dict[str, str]) -> str:
    try:
        methods = ", ".join(map(str, _stored_list(meta.get("methods", "[]"))))
    except NiceganError:
        methods = "?"
    return (f"methods {methods}; {meta.get('items', '?')} inputs; {meta.get('trials', '?')} trials with "
            f"{meta.get('checks', '?')} checks; {'pairs' if meta.get('pairs') == '1' else 'all methods'} per trial")


# -- the report ------------------------------------------------------------------------------------------------


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (``(0, 1)`` when ``n == 0``).

    Unlike the normal approximation it stays inside [0, 1] and is sensible for small ``n`` and shares near 0 or 1,
    which is what a small user study has."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class MethodShare:
    """How often a method was picked when it was shown."""

    name: str
    chosen: int
    shown: int

    @property
    def share(self) -> float:
        return self.chosen / self.shown if self.shown else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.chosen, self.shown)


@dataclass
class StudyReport:
    """Preference shares, the pairwise win matrix and attention-check results of a study's votes."""

    methods: list[str]
    pairs: bool
    participants: list[str]
    votes: int                                     # counted votes (attention-check repeats not included)
    shares: list[MethodShare]
    wins: list[list[int]]                          # wins[i][j]: i picked while j was shown too
    checks_answered: int = 0
    checks_consistent: int = 0
    failed: list[str] = field(default_factory=list)  # participants with at least one inconsistent check
    excluded: list[str] = field(default_factory=list)
    median_ms: float | None = None

    def text(self) -> str:
        """The report as printed by ``nicegan user-study report``."""
        lines = [f"participants: {len(self.participants)}   votes: {self.votes} (attention-check repeats not "
                 f"counted)   trials show {'pairs of methods' if self.pairs else 'all methods'}"]
        if self.median_ms is not None:
            lines.append(f"median response time: {self.median_ms / 1000:.1f} s")
        if self.checks_answered:
            lines.append(f"attention checks: {self.checks_consistent} of {self.checks_answered} consistent "
                         f"({100 * self.checks_consistent / self.checks_answered:.0f} %); participants failing one: "
                         f"{len(self.failed)}" + (f" ({', '.join(self.failed)})" if self.failed else ""))
        else:
            lines.append("attention checks: none answered")
        if self.excluded:
            lines.append(f"excluded (failed an attention check): {', '.join(self.excluded)}")
        width = max(6, *(len(m) for m in self.methods))
        lines += ["", "preference (picked when shown, 95 % Wilson interval):",
                  f"  {'method':<{width}}  {'picked':>6}  {'shown':>6}  {'share':>7}  95 % interval"]
        for s in self.shares:
            lo, hi = s.interval
            share = f"{100 * s.share:6.1f}%" if s.shown else "    n/a"
            lines.append(f"  {s.name:<{width}}  {s.chosen:>6}  {s.shown:>6}  {share}  "
                         f"[{100 * lo:5.1f}%, {100 * hi:5.1f}%]")
        lines += ["", "pairwise wins (row picked over column, when both were shown):",
                  "  " + " " * width + "".join(f"  {m:>{width}}" for m in self.methods)]
        for i, m in enumerate(self.methods):
            cells = "".join(f"  {'-' if i == j else self.wins[i][j]:>{width}}" for j in range(len(self.methods)))
            lines.append(f"  {m:<{width}}{cells}")
        return "\n".join(lines)


def build_report(votes: Sequence[Vote], methods: Sequence[str], pairs: bool = False,
                 exclude_failed: bool = False) -> StudyReport:
    """Count ``votes`` of a study of ``methods``.

    Attention checks repeat an earlier trial; a check is consistent when the same method is picked both times
    (answered checks whose original is missing are not judged). Repeats are left out of the shares and the win
    matrix, so a repeated input does not weigh double. With ``exclude_failed``, participants who failed any check
    are left out entirely."""
    index = {m: i for i, m in enumerate(methods)}
    by_trial = {(v.participant, v.trial): v for v in votes}
    answered = consistent = 0
    failed: set[str] = set()
    for v in votes:
        if v.check_of is None:
            continue
        original = by_trial.get((v.participant, v.check_of))
        if original is None:
            continue
        answered += 1
        if original.choice == v.choice:
            consistent += 1
        else:
            failed.add(v.participant)
    excluded = sorted(failed) if exclude_failed else []
    counted = [v for v in votes if v.check_of is None and v.participant not in excluded]
    chosen, shown = [0] * len(methods), [0] * len(methods)
    wins = [[0] * len(methods) for _ in methods]
    for v in counted:
        if v.choice not in index or any(m not in index for m in v.shown):
            raise NiceganError(f"vote of {v.participant} on trial {v.trial} names a method the study does not have")
        c = index[v.choice]
        chosen[c] += 1
        for m in v.shown:
            shown[index[m]] += 1
            if m != v.choice:
                wins[c][index[m]] += 1
    times = [v.response_ms for v in counted]
    return StudyReport(methods=list(methods), pairs=pairs,
                       participants=sorted({v.participant for v in votes} - set(excluded)), votes=len(counted),
                       shares=[MethodShare(m, chosen[i], shown[i]) for i, m in enumerate(methods)], wins=wins,
                       checks_answered=answered, checks_consistent=consistent, failed=sorted(failed),
                       excluded=excluded, median_ms=statistics.median(times) if times else None)


def report_from_db(db: StudyDB, exclude_failed: bool = False) -> StudyReport:
    """:func:`build_report` over everything stored in ``db``."""
    meta = db.meta()
    return build_report(db.votes(), _stored_list(meta["methods"]), pairs=meta.get("pairs") == "1",
                        exclude_failed=exclude_failed)


def save_chart(report: StudyReport, path: Path, title: str = "") -> Path:
    """Bar chart of the preference shares with their 95 % intervals as error bars (PNG, written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.name for s in report.shares]
    values = [100 * s.share if s.shown else 0.0 for s in report.shares]
    # clamped: at a share of 0 or 1 rounding can leave a bound a hair on the wrong side, and matplotlib refuses
    # negative error bars
    lows = [max(0.0, 100 * (s.share - s.interval[0])) if s.shown else 0.0 for s in report.shares]
    highs = [max(0.0, 100 * (s.interval[1] - s.share)) if s.shown else 0.0 for s in report.shares]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 1.5), 4.0), dpi=120)
    colours = [plt.get_cmap("tab10")(i % 10) for i in range(len(names))]
    bars = ax.bar(names, values, yerr=[lows, highs], capsize=6, color=colours, edgecolor="black", linewidth=0.6)
    for bar, s, top in zip(bars, report.shares, highs, strict=True):  # above the error bar, where nothing overlaps
        label = f"{bar.get_height():.1f}%\n({s.chosen}/{s.shown})" if s.shown else "n/a"
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() + top + 1.5, label, ha="center", va="bottom",
                fontsize=8)
    if not report.pairs and names:
        ax.axhline(100 / len(names), color="grey", linestyle="--", linewidth=0.8, label="chance")
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_ylim(0, 115)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("preferred (%)" if not report.pairs else "preferred when shown (%)")
    ax.set_title(title or f"Human preference\n{len(report.participants)} participants, {report.votes} votes, "
                 "95 % Wilson intervals", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, format="png")
    except OSError as e:
        raise NiceganError(describe_os_error(e, f"cannot write {path}")) from None
    finally:
        plt.close(fig)
    return path
