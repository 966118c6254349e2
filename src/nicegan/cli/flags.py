"""The command line's half of the error convention: lower layers name a setting neutrally (``option="tile"``, the
Python API keyword or config key) and the command line writes the flag of the command the user typed in its place.

The flags come from the argument parser itself (each action's ``dest`` and option strings), so there is no second
table to keep in step with the commands.
"""

from __future__ import annotations

import argparse
import re

#: Python API keywords that name what a command's option of another ``dest`` sets (``export(..., fmt=)`` is
#: ``nicegan export --format``): the only names not read from the parser
API_NAMES = {"fmt": "format", "output_dir": "output", "out_dir": "out", "db_path": "db"}


def command_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """``dest -> flag`` (e.g. ``"batch_size" -> "--batch-size"``) of the options of the command in ``args``.

    The chosen subcommands are followed down from ``parser`` (``nicegan data download``); a ``dest`` that several
    flags share (``--light``/``--full``) is left out, as no single flag is the one the user typed.
    """
    flags: dict[str, str] = {}
    shared: set[str] = set()
    current: argparse.ArgumentParser | None = parser
    while current is not None:
        chosen = None
        for action in getattr(current, "_actions", ()):  # (a parser of another make names no flags)
            if isinstance(action, argparse._SubParsersAction):
                name = getattr(args, action.dest, None) if action.dest != argparse.SUPPRESS else None
                chosen = action.choices.get(name) if isinstance(name, str) else None
                continue
            if not action.option_strings or action.dest == argparse.SUPPRESS:
                continue
            long = [s for s in action.option_strings if s.startswith("--")]
            flag = max(long or action.option_strings, key=len)
            if action.dest in flags and flags[action.dest] != flag:
                shared.add(action.dest)
            flags[action.dest] = flag
            if isinstance(action, argparse._StoreConstAction) and action.const is not None:
                flags[f"{action.dest}={action.const}"] = flag  # "light=False" -> "--full", "progress=False" ...
        current = chosen
    for dest in shared:
        del flags[dest]
    for api, dest in API_NAMES.items():
        if dest in flags and api not in flags:
            flags[api] = flags[dest]
    return flags


_EDGE = r"\w.\-/\\"  # a name inside a word, a flag, a dotted config key or a path is not the setting


def _word(name: str) -> re.Pattern[str]:
    """``name`` standing alone: not part of a longer word, a flag, a dotted config key (``train.batch_size``) or a
    path (``/data/sources/``)."""
    return re.compile(rf"(?<![{_EDGE}]){re.escape(name)}(?![{_EDGE}])")


def _with_value(name: str) -> re.Pattern[str]:
    """``name=value`` (``tile=256``, ``light=False``): a setting with its value, never English."""
    return re.compile(rf"(?<![{_EDGE}]){re.escape(name)}=(?=\S)")


def name_flag(message: str, option: str | None, flags: dict[str, str]) -> str:
    """``message`` with the settings it names neutrally written as the command's flags.

    ``option`` (the setting at fault) becomes its flag where the message refers to it, so the line reads as it
    always did on the command line: the name in parentheses ("within the deadline of 9 s (deadline)" -> "... of 9 s
    (--deadline)"), else the name with a value ("drop tile=256" -> "drop --tile 256"), else the first time it stands
    alone ("tile must be a multiple of 8" -> "--tile must be a multiple of 8"). A message that does not use the name
    gets the flag in front ("--out: ..."), the way argparse names the argument at fault; an option the command has
    no flag for leaves the message as it is.

    Other settings a message with an ``option`` suggests become flags too where the command has them and the name
    cannot be English:
    every ``name=value`` (``use trials=14 or fewer`` -> ``use --trials 14 or fewer``; ``light=False``, which one
    flag stands for, -> ``--full``) and every name with an underscore (``keep_size`` -> ``--keep-size``).
    """
    if option is None:  # not written to the convention (e.g. a sweep file's keys): left as it is
        return message
    flag = flags.get(option)
    if flag is not None:
        if f"({option})" in message:
            message = message.replace(f"({option})", f"({flag})", 1)
        elif not _with_value(option).search(message):  # "name=value" forms are rewritten below
            word = _word(option)
            message = word.sub(flag, message, count=1) if word.search(message) else f"{flag}: {message}"
    for name, other in flags.items():
        if "=" in name:  # a value only one flag gives: "(light=False)" -> "(--full)"
            message = re.sub(rf"(?<![{_EDGE}]){re.escape(name)}(?![{_EDGE}])", other, message)
    for name, other in flags.items():
        if "=" not in name:
            message = _with_value(name).sub(f"{other} ", message)
            if "_" in name:
                message = _word(name).sub(other, message)
    return message
