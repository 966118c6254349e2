"""File-system facts and guards shared by every command: what an entry really is, names that fit, folders that
can be written, one-line messages for OS errors, and the clean-up of temporary files left by killed writers."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from nicegan.core.errors import NiceganError

#: the longest file name (in bytes) common file systems accept
NAME_MAX = 255

_TEMP_RE = re.compile(r"^\..+\.tmp(\d+)$")


def user_cache_dir() -> Path:
    """The toolkit's cache of derived files (converted weights, features, compiled kernels): ``$NICEGAN_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/nicegan``, else ``~/.cache/nicegan``. Not created here."""
    env = os.environ.get("NICEGAN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "nicegan"


def entry_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a regular file that can be read (after following links), or None if it is one.

    Named pipes are the dangerous case: opening one blocks until a writer appears, so they are never opened.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if e.errno == errno.ENOENT:
            return "dangling symbolic link" if os.path.islink(path) else "file not found"
        if e.errno == errno.ENAMETOOLONG:
            return "file name too long"
        return f"cannot read ({e.strerror or type(e).__name__})"
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def fit_name(path: Path) -> Path:
    """``path`` with its file name shortened (stem cut, a short hash added) if it is longer than :data:`NAME_MAX`
    bytes, so an output derived from a long input name (``<stem>_heatmap.png``) can still be written."""
    name = os.fsencode(path.name)
    if len(name) <= NAME_MAX:
        return path
    suffix = os.fsencode(path.suffix)
    tag = b"~" + hashlib.sha1(name).hexdigest()[:10].encode()
    stem = name[: NAME_MAX - len(suffix) - len(tag)]
    while stem:  # do not cut a UTF-8 sequence in two
        try:
            stem.decode("utf-8")
            break
        except UnicodeDecodeError:
            stem = stem[:-1]
    return path.with_name(os.fsdecode(stem + tag + suffix))


def describe_os_error(e: OSError, doing: str = "") -> str:
    """One line for an OS error: what failed, where, and why (disk full, permission, read-only file system...)."""
    reasons = {errno.ENOSPC: "no space left on the device", errno.EACCES: "permission denied",
               errno.EPERM: "operation not permitted", errno.EROFS: "read-only file system",
               errno.EDQUOT: "disk quota exceeded", errno.ENAMETOOLONG: "file name too long",
               errno.ELOOP: "symbolic link loop", errno.ENOTDIR: "a path component is not a folder",
               errno.EISDIR: "is a folder", errno.ENOENT: "no such file or folder",
               errno.EEXIST: "already exists"}
    why = reasons.get(e.errno or 0) or e.strerror or str(e) or type(e).__name__
    where = e.filename if e.filename is not None else ""
    head = f"{doing}: " if doing else ""
    return f"{head}{why}" + (f" ({os.fsdecode(where)})" if where != "" else "")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB pieces (any size in constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` (``.NAME.tmp<PID>``, which :func:`stale_temp_files` recognises) to
    write to: it replaces ``path`` in one rename when the block ends without an error, and is removed otherwise, so
    ``path`` is never left half-written."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def replace_folder(new: Path, target: Path) -> None:
    """Move the finished folder ``new`` to ``target``. A non-empty ``target`` is moved aside first and removed only
    once ``new`` is in place; if the move fails, it is put back and the ``OSError`` propagates."""
    old = None
    try:
        if target.is_dir():
            if any(target.iterdir()):
                old = target.with_name(f".{target.name}.old{os.getpid()}")
                os.replace(target, old)
            else:
                target.rmdir()
        os.replace(new, target)
    except OSError:
        if old is not None and not target.exists():
            with contextlib.suppress(OSError):
                os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def writable_dir(folder: str | os.PathLike, what: str) -> Path:
    """Create ``folder`` (and parents) and prove a file can be written in it, before long work starts."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise NiceganError(f"{what} {folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".nicegan-write-test", dir=folder)
        try:
            os.write(fd, b"\0" * 4096)  # a full disk often still allows an empty file
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as e:
        raise NiceganError(f"cannot write the {what} {folder}: {describe_os_error(e)}") from None
    return folder


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or an id we cannot ask about: keep it
        return True
    return True


def stale_temp_files(folder: Path, min_age: float = 0.0) -> list[Path]:
    """Temporary files ``.NAME.tmp<PID>`` in ``folder`` whose writer process is gone (killed mid-write), and, with
    ``min_age``, untouched for that many seconds (for folders other hosts may share, where a process id says
    nothing about another machine's writers)."""
    if not folder.is_dir():
        return []
    out, now = [], time.time()
    for p in folder.iterdir():
        m = _TEMP_RE.match(p.name)
        if not m or int(m.group(1)) == os.getpid() or pid_alive(int(m.group(1))):
            continue
        try:
            if min_age and now - p.lstat().st_mtime < min_age:
                continue
        except OSError:
            continue
        out.append(p)
    return sorted(out)


def remove_stale_temp_files(*folders: Path, min_age: float = 0.0) -> list[Path]:
    """Delete :func:`stale_temp_files` of each folder; returns what was removed (a live writer's file is kept)."""
    removed = []
    for folder in folders:
        for p in stale_temp_files(folder, min_age):
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass  # not ours to fight over: it is reported again at the next start
    return removed
