"""The web pages' markup lives in asset files (``src/nicegan/web/assets/``), not in Python strings: the files are
found through importlib.resources and shipped as package data, the templating escapes what it inserts, and both
pages share one head."""

from __future__ import annotations

import ast
import fnmatch
import re
from importlib import resources
from types import SimpleNamespace

import pytest

from nicegan.web import pages, serve, study
from tests.conftest import REPO

WEB = REPO / "src" / "nicegan" / "web"
MARKUP = ("<!doctype", "<html", "<head", "<body", "<style", "<script")


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions (prose may name a tag)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def test_no_page_markup_in_the_python_modules() -> None:
    modules = sorted(WEB.glob("*.py"))
    assert {"serve.py", "study.py", "common.py", "pages.py"} <= {m.name for m in modules}
    found = []
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
                found += [f"{module.name}:{node.lineno}: {tag}" for tag in MARKUP if tag in node.value.lower()]
    assert not found, f"page markup belongs in src/nicegan/web/assets/, not in Python strings: {found}"


def test_the_assets_are_found_through_importlib_resources_and_shipped() -> None:
    folder = resources.files("nicegan.web") / pages.ASSETS
    on_disk = {f.name for f in folder.iterdir() if f.is_file()}
    assert on_disk == set(pages.ASSET_FILES), "every asset file is listed in pages.ASSET_FILES and vice versa"
    for name in pages.ASSET_FILES:
        assert (folder / name).read_text(encoding="utf-8").strip(), name
        assert pages.asset(name) == (folder / name).read_text(encoding="utf-8")
    # the wheel and the sdist carry them: pyproject's package data names each file
    config = (REPO / "pyproject.toml").read_text(encoding="utf-8")  # (no tomllib before Python 3.11)
    table = config[config.index("[tool.setuptools.package-data]"):]
    globs = ast.literal_eval(re.search(r"^nicegan = (\[.*?\])", table, re.M | re.S).group(1))
    for name in pages.ASSET_FILES:
        assert any(fnmatch.fnmatch(f"web/{pages.ASSETS}/{name}", g) for g in globs), f"{name} is not package data"
    with pytest.raises(KeyError, match="no page asset"):
        pages.asset("../pages.py")


def test_scripts_and_styles_can_be_inlined_and_load_nothing() -> None:
    for name in pages.ASSET_FILES:
        text = pages.asset(name).lower()
        assert "://" not in text, f"{name} refers to the network; the pages' CSP allows this server only"
        if name.endswith((".js", ".css")):
            assert "</script" not in text and "</style" not in text and "{{" not in text, name


def test_fill_escapes_values_and_refuses_missing_or_unused_markers() -> None:
    template = "<p title=\"{{A}}\">{{B}}</p>"
    assert pages.fill(template, A='"x" & <y>', B=pages.Markup("<b>ok</b>")) == \
        '<p title="&quot;x&quot; &amp; &lt;y&gt;"><b>ok</b></p>'
    assert pages.fill("{{A}}{{B}}", A="{{B}}", B="b") == "{{B}}b"  # one pass: a value is never filled in itself
    with pytest.raises(KeyError, match="B"):
        pages.fill(template, A="a")
    with pytest.raises(KeyError, match="C"):
        pages.fill(template, A="a", B="b", C="c")


def test_both_pages_share_one_head_and_escape_what_they_insert() -> None:
    service = object.__new__(serve.TranslationService)
    service.translator = SimpleNamespace(name="<evil>&", step=12_345, img_size=64, directions=["b2a"],
                                         has_heatmap=False, device="cpu", source=None)
    service.limits = serve.ServeLimits()
    service.has_style = True
    app = serve.render_page(service)
    participant = study.render_page('Which is "best" <b>?</b>')
    assert "model &lt;evil&gt;&amp; \u00b7 step 12,345" in app and "<evil>" not in app
    assert "<h1>Which is &quot;best&quot; &lt;b&gt;?&lt;/b&gt;</h1>" in participant
    assert 'value="b2a"' in app and 'value="a2b"' not in app and 'id="seed"' in app and 'id="heatfig" hidden' in app
    for page, title, name in ((app, "nicegan serve", "serve"), (participant, "Image study", "study")):
        assert page.startswith("<!doctype html>\n") and page.endswith("</html>\n") and "{{" not in page
        assert page.count("<head>") == page.count("<style>") == 1 and f"<title>{title}</title>" in page
        assert pages.asset("base.css") + pages.asset(f"{name}.css") in page
        assert f"<script>\n{pages.asset(f'{name}.js')}</script>" in page
    head = lambda page: page[: page.index("<title>")]
    assert head(app) == head(participant)
