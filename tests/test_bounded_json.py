"""Every JSON the toolkit reads goes through the one bounded reader (issue 25): no module but core/limits.py calls
``json.load``/``json.loads``, and a damaged, huge or deeply nested file the toolkit wrote itself (a sweep's
evaluation or failure record, a metrics.jsonl line, a download's resume record, the image scan cache) is refused
in one line or read as missing and computed again, never a traceback or a gigabyte read into memory."""

from __future__ import annotations

import ast
import json
import logging
import resource
from pathlib import Path

import pytest

from nicegan.core.errors import NiceganError
from nicegan.core.limits import RECORD_BOUNDS, DamagedFileError, read_json_file

SRC = Path(__file__).resolve().parents[1] / "src" / "nicegan"


def _plain_json_readers(tree: ast.AST) -> list[int]:
    """Lines calling ``json.load``/``json.loads`` (or names imported from json that read)."""
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "json" for alias in node.names if alias.name in ("load", "loads", "JSONDecoder")}
    modules = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
               for alias in node.names if alias.name == "json"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        via_module = (isinstance(f, ast.Attribute) and f.attr in ("load", "loads", "JSONDecoder")
                      and isinstance(f.value, ast.Name) and f.value.id in modules)
        if via_module or (isinstance(f, ast.Name) and f.id in imported):
            lines.append(node.lineno)
    return lines


def test_only_the_bounded_reader_parses_json() -> None:
    offenders = [f"{p.relative_to(SRC)}:{line}" for p in sorted(SRC.rglob("*.py"))
                 if p.relative_to(SRC).as_posix() != "core/limits.py"
                 for line in _plain_json_readers(ast.parse(p.read_text(), str(p)))]
    assert not offenders, f"read JSON with nicegan.core.limits.load_json / read_json_file instead: {offenders}"


def test_the_scan_catches_every_spelling() -> None:
    code = ("import json\nimport json as j\nfrom json import loads as L\n"
            "json.loads('1')\nj.load(fh)\nL('2')\njson.dumps(3)\n")
    assert _plain_json_readers(ast.parse(code)) == [4, 5, 6]


NESTED = "[" * 100_000 + "]" * 100_000  # json's own parser raises RecursionError on this (not a ValueError)


@pytest.mark.parametrize(("content", "words"), [
    ('{"step": 2, "metrics": {"acc": 0.5', "is not valid JSON"),
    (NESTED, "is nested deeper than 32 levels"),
    ('{"step": ' + "9" * 5000 + "}", "holds an integer of 5,000 digits"),
    (b"\xff\xfe{}", "is not UTF-8 text"),
], ids=["torn", "nested", "5000 digits", "not UTF-8"])
def test_a_damaged_toolkit_json_is_one_line(tmp_path: Path, content: str | bytes, words: str) -> None:
    path = tmp_path / "step_0000002.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DamagedFileError) as e:
        read_json_file(path, **RECORD_BOUNDS)
    msg = str(e.value)
    assert isinstance(e.value, NiceganError) and isinstance(e.value, ValueError)
    assert msg.startswith(f"{path} is damaged: it ") and words in msg and "\n" not in msg and len(msg) < 400, msg


def test_a_huge_toolkit_json_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "failed.json"
    with open(path, "wb") as fh:  # a sparse 8 GiB file: read whole, it would take 8 GiB of memory
        fh.truncate(8 << 30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DamagedFileError, match="is over 16,777,216 bytes"):
        read_json_file(path, **RECORD_BOUNDS)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB: the bound, not the file


def test_a_damaged_sweep_record_is_evaluated_again_and_reported(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from nicegan.experiments.sweep.jobs import RunSpec, eval_done, eval_path, read_eval
    from nicegan.experiments.sweep.report import collect

    run = tmp_path / "runs" / "base" / "seed0"
    spec = RunSpec("base", 0, str(run), {"train": {"device": "cpu"}}, (2, 4), ("label_preservation",), 10)
    good = {"step": 2, "metrics": {"acc": 0.5}, "settings": spec.settings(2)}
    eval_path(run, 2).parent.mkdir(parents=True)
    eval_path(run, 2).write_text(json.dumps(good))
    eval_path(run, 4).write_text(NESTED)
    (run / "failed.json").write_text("[" * 50_000)
    with caplog.at_level(logging.WARNING, "nicegan"):
        assert read_eval(run, 2) == good and eval_done(spec, 2)
        assert read_eval(run, 4) is None and not eval_done(spec, 4)  # done again, no RecursionError
        col = collect([spec])
    assert col.rows == [{"variant": "base", "seed": 0, "step": 2, "acc": 0.5}]
    assert col.runs[0]["status"] == "incomplete" and col.runs[0]["error"] is None
    warned = [r.getMessage() for r in caplog.records if "step_0000004.json" in r.getMessage()]
    assert len(warned) == 1 and "is damaged: it is nested deeper than" in warned[0], warned  # said once


def test_damaged_metrics_log_lines_are_skipped_not_a_traceback(tmp_path: Path) -> None:
    from nicegan.experiments.demo import read_train_log
    from nicegan.formats.run_folder import RunFolder
    from nicegan.training.logging import repair_log

    log_path = RunFolder(tmp_path).metrics
    lines = ['{"event": "train", "step": 1, "gen/adv": 0.5}', NESTED, '{"step": ' + "9" * 5000 + "}",
             '{"event": "train", "step": 2, "gen/adv": NaN}', '{"event": "train", "step": 3, "gen/adv": 0.25}']
    log_path.write_text("\n".join(lines) + "\n")
    recs = list(RunFolder(tmp_path).records())
    assert [r["step"] for r in recs] == [1, 2, 3]  # the NaN record (a diverged loss) is still a record
    assert read_train_log(log_path) == {"gen/adv": [(1, 0.5), (3, 0.25)]}
    assert repair_log(log_path, resume_step=2) == 3  # the two damaged lines and step 3
    assert [json.loads(line)["step"] for line in log_path.read_text().splitlines()] == [1, 2]


def test_damaged_caches_and_resume_records_are_rebuilt(tmp_path: Path) -> None:
    from PIL import Image

    from nicegan.data.download import _read_meta
    from nicegan.data.images import scan_images

    meta = tmp_path / "x.tar.gz.part.json"
    meta.write_text(NESTED)
    assert _read_meta(meta) == {}  # a fresh download instead of a RecursionError
    img = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(img)
    cache = tmp_path / "scan.json"
    for damaged in (NESTED, "[1, 2]", '{"x": '):
        cache.write_text(damaged)
        res = scan_images([img], cache_file=cache, progress=False)
        assert res.good == [img] and not res.bad
