"""The documentation: the site builds in strict mode, the commands it shows parse, the README's links resolve.

* ``mkdocs build --strict`` (mkdocs.yml; MkDocs, Material and mkdocstrings come with the ``[dev]`` extra): a broken
  link or anchor, a page missing from the navigation or a docstring that does not render fails it.
* Every ``nicegan ...`` line of a fenced code block in README.md and docs/ is parsed by the real argument parser
  (nothing is run), so a renamed command or option, or a wrong value in an example, fails here instead of on a
  reader's machine. Placeholders (``DIR``, ``RUN``, ``FILE...``, ``<path>``) become a dummy value, optional parts
  (``[--keep-size]``) are taken, and of alternatives (``a2b|b2a|both``) the first.
* Every relative link of README.md points to an existing file, and an anchor in it to an existing heading.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from nicegan.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOC_FILES = [README, *sorted((REPO / "docs").rglob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
PLACEHOLDER = re.compile(r"^(<[^>]+>|[A-Z][A-Z0-9_]*(\.\.\.)?)$")  # DIR, REAL_DIR, FILE..., <path>
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
DUMMY = "1"  # a value every str, int, float or path option takes


def fenced_command_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, command)`` for every line of a fenced code block that starts with ``nicegan ``; a line
    ending in a backslash is joined with the next, as the shell would."""
    inside = False
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        i += 1
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            continue
        text = line.strip().removeprefix("$ ")
        while text.endswith("\\") and i < len(lines):
            text = text[:-1] + " " + lines[i].strip()
            i += 1
        if text.startswith("nicegan "):
            yield number, text


def argv_of(command: str) -> list[str] | None:
    """The arguments after ``nicegan`` as the docs mean them, or None for a line that only asks for help."""
    argv: list[str] = []
    for token in shlex.split(command, comments=True)[1:]:
        if token == "|":  # a pipe ends the nicegan command
            break
        if token in ("...", "\u2026"):  # "more options", as in `nicegan train ... --set x=1`
            continue
        token = token.strip("[]")  # optional parts: [--keep-size], [--max-steps N]
        if not token:
            continue
        if "|" in token:  # alternatives: a2b|b2a|both, safetensors|onnx|torchscript
            token = token.split("|")[0]
        if token in ("-h", "--help", "--version"):
            return None
        argv.append(DUMMY if PLACEHOLDER.match(token) else token)
    return argv


def slug(heading: str) -> str:
    """The anchor MkDocs (and GitHub, for these headings) gives a Markdown heading."""
    from markdown.extensions.toc import slugify

    return slugify(re.sub(r"[`*_]", "", heading).strip(), "-")


def anchors(path: Path) -> set[str]:
    found, inside = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside and (m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)):
            found.add(slug(m.group(1)))
    return found


def prose(path: Path) -> str:
    """The file without its fenced code blocks and inline code spans (links are not read there)."""
    kept, inside = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def readme_link_problems(readme: Path) -> list[str]:
    problems = []
    for target in LINK.findall(prose(readme)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        dest = (readme.parent / file_part).resolve() if file_part else readme
        if not dest.exists():
            problems.append(f"{target}: {dest} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading of {dest.name} has the anchor #{anchor}")
    return problems


def test_docs_site_builds_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    output = (proc.stdout + proc.stderr)[-6000:]
    assert proc.returncode == 0, (f"mkdocs build --strict failed (the docs need the [docs] extra, included in "
                                  f"[dev]: pip install -e '.[dev]'):\n{output}")
    # mkdocstrings ran: a model's page shows its model file's header, the API reference the Translator
    assert "Reusing Discriminators for Encoding" in (site / "models" / "nicegan" / "index.html").read_text()
    assert "Translator" in (site / "api" / "index.html").read_text()


def test_every_documented_nicegan_command_parses() -> None:
    parser = build_parser()
    checked, failures = 0, []
    for path in DOC_FILES:
        for number, command in fenced_command_lines(path):
            argv = argv_of(command)
            if argv is None:
                continue
            err = io.StringIO()
            try:
                with contextlib.redirect_stderr(err):
                    parser.parse_args(argv)
            except SystemExit:
                message = err.getvalue().strip().splitlines()[-1:] or ["(no message)"]
                failures.append(f"{path.relative_to(REPO)}:{number}: {command}\n    -> {message[0]}")
            checked += 1
    assert checked >= 50, f"only {checked} documented commands found: is the extraction broken?"
    assert not failures, "documented commands the parser refuses:\n" + "\n".join(failures)


def test_readme_relative_links_resolve() -> None:
    problems = readme_link_problems(README)
    assert not problems, "README links that lead nowhere:\n" + "\n".join(problems)


def test_the_checks_catch_what_they_should(tmp_path: Path) -> None:
    """The helpers above fail on a broken link, a missing anchor and a wrong option (so the tests can fail)."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## A `code` heading\n")
    readme = tmp_path / "README.md"
    readme.write_text("[ok](docs/page.md#a-code-heading) [gone](docs/missing.md) [bad](docs/page.md#nowhere) "
                      "[web](https://example.org/x) `[not a link](nowhere.md)`\n\n```bash\n"
                      "nicegan translate --checkpoint RUN --input DIR --output out/ --direction a2b|b2a [--heatmap]\n"
                      "nicegan export --help\n```\n")
    problems = readme_link_problems(readme)
    assert len(problems) == 2 and "missing.md" in problems[0] and "#nowhere" in problems[1], problems
    (number, command), (_, help_line) = fenced_command_lines(readme)
    assert number == 4
    assert argv_of(command) == ["translate", "--checkpoint", DUMMY, "--input", DUMMY, "--output", "out/",
                                "--direction", "a2b", "--heatmap"]
    assert argv_of(help_line) is None
    parser = build_parser()
    parser.parse_args(argv_of(command))
    with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(SystemExit):
        parser.parse_args(["translate", "--no-such-option"])
        raise AssertionError("the parser accepted an unknown option")


def test_readme_stays_a_front_door() -> None:
    """Issue 23: the README is the front door (at most about 300 lines); details live in docs/."""
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= 300, f"README.md has {lines} lines: move details into a page of docs/ (mkdocs.yml nav)"
