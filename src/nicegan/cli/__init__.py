"""Command line: ``nicegan <command> ...`` (also ``python -m nicegan`` and ``torchrun -m nicegan``).

Each command module has ``add_parser(subparsers)`` and ``run(args) -> int``. Errors a user can cause
(:class:`~nicegan.core.errors.NiceganError`) are printed as one line, ``nicegan: error: ...``, with exit status 2;
the setting an error or a log record names neutrally (its ``option``) is written as the command's flag
(:mod:`nicegan.cli.flags`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable

from nicegan.cli.flags import command_flags, name_flag
from nicegan.core.errors import NiceganError
from nicegan.core.version import __version__


class _Formatter(logging.Formatter):
    def __init__(self, flags: dict[str, str] | None = None) -> None:
        super().__init__()
        self.flags = flags or {}

    def format(self, record: logging.LogRecord) -> str:
        msg = name_flag(record.getMessage(), getattr(record, "option", None), self.flags)
        return f"{record.levelname.lower()}: {msg}" if record.levelno >= logging.WARNING else msg


def _setup_logging(quiet: bool, flags: dict[str, str] | None = None) -> Callable[[], None]:
    """Route the ``nicegan`` logger to stderr for one command; returns the function that undoes it.

    Undoing matters when ``main`` is called in-process (tests, notebooks): the handler holds the stderr of that
    moment, and a logger left non-propagating would hide later records from the caller's own handlers.
    """
    logger = logging.getLogger("nicegan")
    saved = (logger.level, logger.propagate)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(flags))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

    return restore


def build_parser() -> argparse.ArgumentParser:
    from nicegan.cli import (
        analysis,
        data,
        demo,
        export,
        import_official,
        metrics,
        models,
        resume,
        serve,
        study,
        sweep,
        train,
        translate,
    )

    parser = argparse.ArgumentParser(prog="nicegan", description="Unpaired image-to-image translation: NICE-GAN and "
                                     "the systems it compares with.")
    parser.add_argument("--version", action="version", version=f"nicegan {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in (train, resume, translate, export, demo, sweep, import_official, metrics, analysis, models, data,
                   serve, study):
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 must print, not crash
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")
    restore_logging: Callable[[], None] = lambda: None
    flags: dict[str, str] = {}  # dest -> flag of the command given, for the settings that errors name neutrally
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return 2
        flags = command_flags(parser, args)
        restore_logging = _setup_logging(args.quiet, flags)
        from nicegan.core.process import tune_malloc

        images = sys.modules.get("nicegan.data.images")  # not loaded yet: no warnings to forget
        if images is not None:
            images.reset_skip_warnings()
        tune_malloc()
        if hasattr(args, "threads"):  # a long-running command: settle its threads before torch loads
            from nicegan.core.process import configure_threads

            configure_threads(args.threads)  # announced when the command starts computing (its first step or batch)
        from nicegan.cli.precheck import check_paths

        check_paths(args)  # a wrong path is reported before torch is loaded
        return int(args.func(args) or 0)
    except NiceganError as e:
        print(f"nicegan: error: {one_line(name_flag(str(e), getattr(e, 'option', None), flags))}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine's doing (disk full, permissions): say what and where, not a traceback
        from nicegan.core.files import describe_os_error

        print(f"nicegan: error: {one_line(describe_os_error(e))}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"nicegan: error: {OUT_OF_MEMORY}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # torch reports failed allocations (CPU and CUDA) as RuntimeErrors
        if not _is_out_of_memory(e):
            raise
        print(f"nicegan: error: {OUT_OF_MEMORY} ({one_line(str(e), 200)})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nicegan: interrupted", file=sys.stderr)
        return 130
    finally:
        restore_logging()


OUT_OF_MEMORY = "out of memory (use a smaller image size, batch size or model)"


def _is_out_of_memory(e: RuntimeError) -> bool:
    import torch

    return isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e) or "out of memory" in str(e)


def one_line(text: str, limit: int = 2000) -> str:
    """A message on one line, cut at ``limit`` characters (a value's repr can be huge)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 20] + " ... (cut)"
