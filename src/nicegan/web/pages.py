"""The web pages' markup, style and script, kept as files in ``nicegan/web/assets/`` (package data) and filled in.

Each page is one self-contained HTML document: its Content-Security-Policy (:data:`nicegan.web.common.PAGE_POLICY`)
allows inline script and style and nothing fetched, so :func:`render` inlines the files. A page is
``assets/<name>.html``, whose ``{{HEAD}}`` is the shared ``head.html`` (the title, then ``base.css``, the style
both pages share, and ``<name>.css``) and whose ``{{SCRIPT}}`` is ``<name>.js``. The files are read once, through
:mod:`importlib.resources`, so they are found inside an installed wheel as well as in a checkout.

Templating is one pass over ``{{NAME}}`` markers: a plain ``str`` value is HTML-escaped, a :class:`Markup` value
(markup built from escaped parts, or :func:`nicegan.web.common.script_json`'s output) goes in as it is, and a marker
without a value, or a value without a marker, is an error. A value is never searched for markers itself.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

from nicegan.web.common import html_escape

#: the asset files, in the package ``nicegan.web``
ASSETS = "assets"
#: every asset file a page is built from (tests check that each is found through importlib.resources)
ASSET_FILES = ("head.html", "base.css", "serve.html", "serve.css", "serve.js", "study.html", "study.css",
               "study.js")
_MARKER = re.compile(r"\{\{([A-Z_]+)\}\}")


class Markup(str):
    """A value that is already safe where it goes (built from escaped parts): :func:`fill` inserts it unescaped."""


@functools.cache
def asset(name: str) -> str:
    """The text of ``assets/<name>`` (UTF-8), read once."""
    if name not in ASSET_FILES:
        raise KeyError(f"no page asset {name!r}; the assets are {', '.join(ASSET_FILES)}")
    return (resources.files(__package__) / ASSETS / name).read_text(encoding="utf-8")


def fill(template: str, **values: str) -> str:
    """``template`` with every ``{{NAME}}`` replaced by ``values[NAME]``: escaped, unless it is :class:`Markup`."""
    used: set[str] = set()

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"the page marker {{{{{key}}}}} has no value")
        used.add(key)
        text = values[key]
        return text if isinstance(text, Markup) else html_escape(text)

    out = _MARKER.sub(value, template)
    if unused := sorted(values.keys() - used):
        raise KeyError(f"no page marker for {', '.join(unused)}")
    return out


def render(name: str, title: str, **values: str) -> str:
    """The page ``assets/<name>.html`` with the shared head (titled ``title``), its style and script inline, and
    ``values`` filled in (see :func:`fill`)."""
    head = fill(asset("head.html"), TITLE=title, CSS=Markup(asset("base.css") + asset(f"{name}.css")))
    # the page's own file puts {{HEAD}} on a line of its own
    return fill(asset(f"{name}.html"), HEAD=Markup(head.removesuffix("\n")), SCRIPT=Markup(asset(f"{name}.js")),
                **values)
