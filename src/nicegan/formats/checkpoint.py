"""The checkpoint format: one typed record, written atomically and read safely, here and nowhere else.

A checkpoint is a :class:`Checkpoint` saved as a dict of plain tensors and containers, so it loads with
``torch.load(weights_only=True)``; a file that needs arbitrary unpickling is refused. Fields:

``format`` / ``format_version``
    ``"nicegan-checkpoint"`` and :data:`FORMAT_VERSION`; older versions are migrated on load (:data:`MIGRATIONS`),
    newer ones refused with a hint to upgrade.
``content_sha256``
    a SHA-256 of every other entry, tensors byte by byte (:func:`content_digest`), checked on load: torch does
    not check its archive's CRCs, so without it flipped bytes in a weight would load silently (format 3 on).
``toolkit_version``
    the nicegan version that wrote the file.
``model``, ``config``
    registry name and the whole run config as a plain dict (the model is rebuilt from it).
``step``
    completed training steps.
``nets``
    one state dict per network of ``model.nets``.
``optimizers``, ``scalers``
    one optimizer (and fp16 gradient-scaler) state dict per phase.
``model_extra``, ``model_extra_per_rank``
    training state outside the nets (e.g. CycleGAN's image pools), of rank 0 and of every rank.
``rng``, ``rng_per_rank``
    torch, CUDA, NumPy and Python generator states (:func:`capture_rng`), of rank 0 and of every rank.
``extra``
    bookkeeping of the run: the best FID per direction, where an imported file came from.

Files live in ``RUN/checkpoints/``: ``latest.pt`` is replaced atomically (temporary file, fsync, ``os.replace``) so a
crash mid-write never destroys the previous one; numbered ``step_XXXXXXX.pt`` files are hard links to the same
data and only the newest ``keep_last`` are kept; ``best_<direction>.pt`` holds the state with the best FID. A
killed writer leaves its ``.NAME.tmp<PID>`` file behind; runs delete those of dead processes when they start.
Loading a run folder whose ``latest.pt`` is damaged falls back to the newest intact numbered checkpoint.

Changing the format: add the field to :class:`Checkpoint`, bump :data:`FORMAT_VERSION` and add a migration from the
previous version to :data:`MIGRATIONS` (docs/overview.md, "How to add a checkpoint field").
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
import random
import re
import shutil
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from nicegan.core.errors import CheckpointError, NiceganError
from nicegan.core.files import describe_os_error, entry_problem
from nicegan.core.limits import exceeds
from nicegan.core.version import __version__
from nicegan.formats.run_folder import RunFolder

log = logging.getLogger("nicegan")

FORMAT = "nicegan-checkpoint"
FORMAT_VERSION = 3
LATEST = "latest.pt"
_STEP_RE = re.compile(r"step_(\d+)\.pt$")
#: the top-level keys of a checkpoint of the official NICE-GAN code (alpc91/NICE-GAN-pytorch)
OFFICIAL_KEYS = frozenset({"gen2B", "gen2A", "disA", "disB"})


@dataclass(eq=False)  # records hold tensors: compare fields explicitly
class Checkpoint:
    """Everything needed to rebuild a model and continue its training exactly (see the module docstring)."""

    model: str
    config: dict[str, Any]
    step: int
    nets: dict[str, dict[str, Tensor]]
    optimizers: dict[str, dict[str, Any]] = field(default_factory=dict)
    scalers: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_extra: dict[str, Any] = field(default_factory=dict)
    model_extra_per_rank: list[dict[str, Any]] = field(default_factory=list)
    rng: dict[str, Any] = field(default_factory=dict)
    rng_per_rank: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    toolkit_version: str = __version__
    #: where the record was read from ("" for one built in memory); not saved
    path: str = ""

    def to_payload(self) -> dict[str, Any]:
        """The dict that is written to disk (with its content hash)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "path"}
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **d}
        return {**payload, HASH_KEY: content_digest(payload)}

    @classmethod
    def from_payload(cls, payload: Any, where: str = "checkpoint") -> Checkpoint:
        """Check, migrate and validate a loaded dict; :class:`CheckpointError` in one line if it is unusable."""
        if isinstance(payload, dict) and set(payload) >= OFFICIAL_KEYS:
            raise CheckpointError(f"{where} is an official NICE-GAN checkpoint; convert it first: "
                                  f"nicegan import-official {where} --out converted.pt")
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise CheckpointError(f"{where} is not a nicegan checkpoint")
        check_structure(payload, where)
        verify_digest(payload, where)
        d = migrate(payload, where)
        names = {f.name for f in dataclasses.fields(cls)} - {"path"}
        ck = cls(**{k: v for k, v in d.items() if k in names}, path=where)
        ck.validate(where)
        return ck

    def validate(self, where: str = "checkpoint") -> None:
        """Raise :class:`CheckpointError` naming the first field of the wrong type."""
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise CheckpointError(f"{where} is damaged or not a nicegan checkpoint: {what}")

        need(isinstance(self.model, str) and bool(self.model), "'model' is not a model name")
        need(isinstance(self.toolkit_version, str), "'toolkit_version' is not a version string")
        need(isinstance(self.config, dict), "'config' is not a mapping")
        need(isinstance(self.step, int) and not isinstance(self.step, bool) and self.step >= 0,
             "'step' is not a non-negative integer")
        need(isinstance(self.nets, dict) and all(isinstance(k, str) and isinstance(v, dict)
                                                 and all(isinstance(t, Tensor) for t in v.values())
                                                 for k, v in self.nets.items()),
             "'nets' is not a mapping of state dicts of tensors")
        for name in ("optimizers", "scalers"):
            value = getattr(self, name)
            need(isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()),
                 f"'{name}' is not a mapping of state dicts")
        for name in ("model_extra", "rng", "extra"):
            need(isinstance(getattr(self, name), dict), f"'{name}' is not a mapping")
        for name in ("model_extra_per_rank", "rng_per_rank"):
            value = getattr(self, name)
            need(isinstance(value, list) and all(isinstance(v, dict) for v in value), f"'{name}' is not a list")
        for state in (self.rng, *self.rng_per_rank):
            need(not state or _rng_state_ok(state), "the random-generator state is damaged")


def _rng_state_ok(state: dict[str, Any]) -> bool:
    """Whether ``state`` has the shape :func:`capture_rng` gives (checked on load, not first at resume)."""
    def is_int(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    try:
        n, p = state["numpy"], state["python"]
        return (isinstance(state["torch"], Tensor) and state["torch"].dtype == torch.uint8
                and isinstance(state.get("cuda", []), list)
                and all(isinstance(t, Tensor) for t in state.get("cuda", []))
                and isinstance(n["keys"], Tensor) and n["keys"].numel() == 624 and is_int(n["pos"])
                and is_int(n["has_gauss"]) and isinstance(n["cached_gaussian"], float)
                and is_int(p["version"]) and isinstance(p["state"], list) and len(p["state"]) == 625
                and all(is_int(v) for v in p["state"]) and (p["gauss"] is None or isinstance(p["gauss"], float)))
    except (KeyError, TypeError, AttributeError):
        return False


class CheckpointDamaged(CheckpointError):
    """A checkpoint file whose bytes are damaged (hash mismatch, unreadable archive): a run may fall back to an
    older intact checkpoint. Foreign, unsafe, newer-format or unreadable-by-permission files are not this."""


# --- content hash ----------------------------------------------------------------------------------------------

HASH_KEY = "content_sha256"


def content_digest(payload: Any) -> str:
    """SHA-256 of a payload's content: structure, keys, scalars, and every tensor's dtype, shape and bytes."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            if t.numel():
                h.update(t.reshape(-1).view(torch.uint8).numpy().data)
        elif isinstance(x, dict):
            keys = [k for k in x if not (x is payload and k == HASH_KEY)]  # the hash does not hash itself
            h.update(f"D{len(keys)}".encode())
            for k in sorted(keys, key=lambda k: (type(k).__name__, repr(k))):
                feed(k)
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"{'L' if isinstance(x, list) else 'U'}{len(x)}".encode())
            for v in x:
                feed(v)
        elif isinstance(x, np.ndarray):
            h.update(f"N{x.dtype}{x.shape}".encode() + np.ascontiguousarray(x).tobytes())
        else:  # str, int, float, bool, None, torch.dtype/device/Size...
            h.update(f"S{type(x).__name__}:{x!r}".encode())
        h.update(b";")

    feed(payload)
    return h.hexdigest()


#: a checkpoint's containers hold a few thousand entries; shared references (pickle's memo) can make a small
#: file describe billions, which any walk (hashing, validation, the config) would take forever over
MAX_ENTRIES = 1_000_000


def check_structure(payload: Any, where: str) -> None:
    """Refuse a payload with more than :data:`MAX_ENTRIES` container entries (shared references counted each time
    they are reached) or nested deeper than 64 levels, stopping at the first entry over the budget."""
    if exceeds(payload, MAX_ENTRIES, 64):
        raise CheckpointError(f"{where} is damaged or hostile: its structure has over {MAX_ENTRIES:,} entries "
                              "or 64 levels (a checkpoint has a few thousand)")


def verify_digest(payload: dict[str, Any], where: str) -> None:
    """Refuse a payload whose content does not match its stored hash (format 3 on; older files have none)."""
    version = payload.get("format_version")
    if not (isinstance(version, int) and 3 <= version <= FORMAT_VERSION):
        return  # older files have no hash; unknown versions are refused by migrate()
    stored = payload.get(HASH_KEY)
    if not isinstance(stored, str):
        raise CheckpointDamaged(f"{where} is damaged: it has no content hash")
    if content_digest(payload) != stored:
        raise CheckpointDamaged(f"{where} is damaged: its content does not match its hash (flipped or overwritten "
                                "bytes)")


# --- migrations: one function per old version, each lifting a payload by one version ---------------------------


def _v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    # Version 1 also wrote "schedulers" (the LR is a pure function of the step) and "data" (the stream position
    # is a function of the step); neither was ever read.
    return {k: v for k, v in d.items() if k not in ("schedulers", "data")}


def _v2_to_v3(d: dict[str, Any]) -> dict[str, Any]:
    # Version 3 adds the content hash, which was checked (or absent, for older files) before migrating.
    return {k: v for k, v in d.items() if k != HASH_KEY}


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(payload: dict[str, Any], where: str = "checkpoint") -> dict[str, Any]:
    """Lift a payload of any known format version to :data:`FORMAT_VERSION`."""
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1 or version > FORMAT_VERSION:
        raise CheckpointError(f"{where} has checkpoint format {version!r}; this nicegan ({__version__}) reads formats "
                              f"1 to {FORMAT_VERSION}: upgrade nicegan")
    d = {k: v for k, v in payload.items() if k != HASH_KEY}
    for v in range(version, FORMAT_VERSION):
        d = MIGRATIONS[v](d)
    for key in ("model", "config", "step", "nets"):
        if key not in d:
            raise CheckpointError(f"{where} is incomplete: no {key!r} entry")
    return d


# --- RNG state as plain tensors/containers (weights_only friendly) ----------------------------------------------


def capture_rng() -> dict[str, Any]:
    """States of every random generator the toolkit may use."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
    }


def restore_rng(state: dict[str, Any], where: str = "checkpoint") -> None:
    """Inverse of :func:`capture_rng` (CUDA states only where the same devices exist)."""
    try:
        torch.set_rng_state(state["torch"])
        cuda = state.get("cuda") or []
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        n = state["numpy"]
        np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                             n["cached_gaussian"]))
        p = state["python"]
        random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as e:
        raise CheckpointError(f"the random-generator state in {where} is damaged ({type(e).__name__})") from None


# --- writing -------------------------------------------------------------------------------------------------------


class CheckpointWriteError(NiceganError):
    """A checkpoint could not be written (disk full, permissions); the previous file is untouched."""



def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    out: _RecordingWriter | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as fh:
            out = _RecordingWriter(fh)
            torch.save(obj, out)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        kept = f"; the previous {path.name} is intact" if path.is_file() else ""
        raise CheckpointWriteError(f"{describe_os_error(e, f'cannot write {path}')}{kept}") from None
    except RuntimeError as e:  # torch's zip writer turns a failed write (a full disk) into a RuntimeError
        kept = f"; the previous {path.name} is intact" if path.is_file() else ""
        why = (describe_os_error(out.error, f"cannot write {path}") if out is not None and out.error is not None
               else f"cannot write {path}: {' '.join(str(e).split())[:200]}")
        raise CheckpointWriteError(f"{why}{kept}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


class _RecordingWriter:
    """A file wrapper for ``torch.save`` that keeps the OS error of a failed write (torch's C++ writer would only
    report "unexpected pos"), so a full disk is reported as a full disk."""

    def __init__(self, fh: Any) -> None:
        self.fh, self.error = fh, None

    def write(self, data: Any) -> int:
        try:
            return self.fh.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.fh.flush()


def checkpoint_dir(run_dir: Path) -> Path:
    return RunFolder(run_dir).checkpoints


def step_name(step: int) -> str:
    return f"step_{step:07d}.pt"


def write(ck: Checkpoint, path: Path) -> Path:
    """Write one checkpoint file atomically (``import-official``'s output, a best checkpoint)."""
    atomic_save(ck.to_payload(), path)
    return Path(path)


def save(ck: Checkpoint, run_dir: Path, numbered: bool, keep_last: int) -> Path:
    """Write ``latest.pt`` (atomically) and, if ``numbered``, ``step_XXXXXXX.pt``; prune old numbered files."""
    ckdir = checkpoint_dir(run_dir)
    latest = write(ck, ckdir / LATEST)
    if numbered:
        target = ckdir / step_name(ck.step)
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        try:
            try:
                os.link(latest, tmp)  # same bytes, no extra disk
            except OSError:
                shutil.copyfile(latest, tmp)
            os.replace(tmp, target)
            if keep_last > 0:
                for old in numbered_checkpoints(run_dir)[:-keep_last]:
                    old.unlink()
        except OSError as e:
            raise CheckpointWriteError(f"{describe_os_error(e, f'cannot write {target}')}; {latest} was written "
                                       "and is intact") from None
        finally:
            if tmp.exists():
                tmp.unlink()
    return latest


def save_best(ck: Checkpoint, run_dir: Path, direction: str) -> Path:
    """Write ``best_<direction>.pt`` (the state with the best score in that direction so far)."""
    return write(ck, checkpoint_dir(run_dir) / f"best_{direction}.pt")


def numbered_checkpoints(run_dir: Path) -> list[Path]:
    """Numbered checkpoints of a run, oldest first."""
    ckdir = checkpoint_dir(run_dir)
    if not ckdir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckdir.iterdir() if (m := _STEP_RE.match(p.name))]
    return [p for _, p in sorted(found)]


def run_checkpoints(run_dir: Path) -> list[Path]:
    """Every checkpoint a run may continue from, newest first: ``latest.pt`` (if present), then the numbered ones."""
    latest = latest_checkpoint(run_dir)
    return ([latest] if latest is not None else []) + list(reversed(numbered_checkpoints(run_dir)))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """``RUN/checkpoints/latest.pt`` if it exists."""
    p = checkpoint_dir(run_dir) / LATEST
    return p if p.is_file() else None


# --- reading -------------------------------------------------------------------------------------------------------


def resolve_checkpoint_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or a run folder (its ``checkpoints/latest.pt``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        latest = latest_checkpoint(p) or (p / LATEST if (p / LATEST).is_file() else None)
        if latest is None:
            raise CheckpointError(f"no checkpoint in {p} (expected {checkpoint_dir(p) / LATEST})")
        return latest
    return p  # read_torch_file says why a path is missing or not a regular file


_UNSAFE_HINTS = ("Unsupported global", "GLOBAL ", "is blocked", "allowlist")


def read_torch_file(path: Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU with one-line errors for unsafe, corrupt or non-torch files."""
    problem = entry_problem(path)
    if problem is not None:  # a FIFO would block and a device never end: only regular files are read
        raise CheckpointError(f"checkpoint not found: {path}" if problem == "file not found"
                              else f"cannot read the checkpoint {path}: {problem}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as e:
        raise CheckpointError(describe_os_error(e, "cannot read the checkpoint")) from None
    if not head:
        raise CheckpointDamaged(f"{path} is an empty file, not a checkpoint")
    if head != b"PK\x03\x04" and not head.startswith(b"\x80"):  # a zip archive, or a legacy torch pickle
        raise CheckpointDamaged(f"{path} is not a PyTorch checkpoint (neither a torch zip archive nor a legacy "
                              "torch file)")
    try:
        with warnings.catch_warnings():  # torch's warnings about odd files would only precede our own error
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if any(hint in str(e) for hint in _UNSAFE_HINTS):  # a class or function would be imported
            raise CheckpointError(f"refusing to load {path}: it needs arbitrary (unsafe) unpickling; nicegan only "
                                  "loads checkpoints made of plain tensors and containers") from None
        if "Unsupported operand" in str(e) and head.startswith(b"\x80"):
            raise CheckpointError(f"refusing to load {path}: a plain pickle, not a PyTorch checkpoint (nicegan "
                                  "never unpickles arbitrary files)") from None
        raise CheckpointDamaged(f"{path} is not a readable checkpoint (corrupt or not a PyTorch file)") from None
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except MemoryError:
        raise CheckpointError(f"{path} is not a readable checkpoint (it claims more memory than there is)") from None
    except Exception as e:  # torch.load raises many types on arbitrary bytes (RuntimeError, KeyError, EOFError...)
        raise CheckpointDamaged(f"{path} is not a readable checkpoint (corrupt or truncated: "
                              f"{str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None


def load(path: str | os.PathLike) -> Checkpoint:
    """Read, migrate and validate a nicegan checkpoint: a file, or a run folder (its ``latest.pt``, or the newest
    intact numbered checkpoint if ``latest.pt`` is damaged or missing, with a warning naming both)."""
    p = Path(path).expanduser()
    if p.is_dir() and run_checkpoints(p):
        return load_run(p)
    p = resolve_checkpoint_path(p)
    return Checkpoint.from_payload(read_torch_file(p), str(p))


def load_run(run_dir: Path) -> Checkpoint:
    """The newest intact checkpoint of a run: ``latest.pt``, else numbered ones newest first.

    Only damage (:class:`CheckpointDamaged`: a hash mismatch, an unreadable archive) moves on to an older file; a
    permission error, a foreign or newer-format file stops here, since falling back would silently roll the run
    back over good training.
    """
    latest = checkpoint_dir(run_dir) / LATEST
    candidates = run_checkpoints(run_dir)
    if not candidates:
        raise CheckpointError(f"no checkpoint in {run_dir} (expected {latest})")
    first: CheckpointDamaged | None = None
    for candidate in candidates:
        try:
            ck = Checkpoint.from_payload(read_torch_file(candidate), str(candidate))
        except CheckpointDamaged as e:
            first = first or e
            continue
        if first is not None or candidate != latest:
            why = str(first) if first is not None else f"{latest} is missing"
            log.warning("%s; using the newest intact checkpoint instead: %s (step %d)", why, candidate, ck.step)
        return ck
    raise CheckpointDamaged(f"{first}; no intact numbered checkpoint to fall back to in "
                            f"{checkpoint_dir(run_dir)}")


def check_optimizer_state(opt: torch.optim.Optimizer, where: str) -> None:
    """Refuse optimizer state whose per-parameter tensors do not have their parameter's shape (a loaded state dict
    is only checked by torch for the number of parameters; a wrong shape would fail at the first step)."""
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if not isinstance(value, (Tensor, int, float)) or isinstance(value, bool):
                    raise CheckpointError(f"optimizer state in {where} is damaged: {key} is a "
                                          f"{type(value).__name__}, not a tensor")
                if isinstance(value, Tensor) and value.dim() > 0 and value.shape != p.shape:
                    raise CheckpointError(f"optimizer state in {where} does not fit the model: {key} has shape "
                                          f"{tuple(value.shape)} for a parameter of shape {tuple(p.shape)}")


def load_nets(nets: nn.ModuleDict, state: dict[str, dict[str, Tensor]], names: Iterable[str] | None = None,
              where: str = "checkpoint", model: str = "model") -> None:
    """Load state dicts into ``nets`` (all, or ``names``); :class:`CheckpointError` naming the first mismatch."""
    for name in tuple(names) if names is not None else tuple(nets):
        if name not in state:
            raise CheckpointError(f"{where} has no weights for {name!r}")
        try:
            nets[name].load_state_dict(state[name])
        except (RuntimeError, TypeError, ValueError, AttributeError) as e:
            detail = " ".join(str(e).split())[:200]
            raise CheckpointError(f"{where} does not fit the {model} model ({name}): {detail}") from None
