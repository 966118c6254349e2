"""Inference bundles: a trained model's translation weights in a folder that loads without pickle.

A bundle is what ``nicegan export`` writes and what every command taking ``--checkpoint`` also accepts:

``config.json``
    ``format`` (``"nicegan-bundle"``) and ``format_version`` (:data:`FORMAT_VERSION`), ``nicegan_version`` (the
    writer), ``model`` (registry name), ``config`` (the whole run config as recorded in the checkpoint), ``step``,
    ``directions`` (``["a2b", "b2a"]``, or the one direction exported), ``nets`` (the nets in the weights file),
    ``weights`` (file name, size and SHA-256 of ``model.safetensors``), ``source`` (the checkpoint it came from and
    that checkpoint's content hash), ``metrics`` (scores known from the run, may be empty) and ``exports`` (ONNX or
    TorchScript files written beside it, with their hashes and verification numbers).
``model.safetensors``
    the state dicts of ``nets`` only (no discriminators a translation does not run, no optimizer state), keys
    ``<net>.<state-dict key>``.
``README.md``
    a model card for people (model, training data, step, size, parameters, metrics, how to use it).

Reading uses ``json`` and ``safetensors`` only, so no byte of a bundle is ever unpickled; the weights file is
checked against its recorded SHA-256 before it is parsed. Writing goes to a temporary folder beside the target that
replaces it in one rename (:func:`staging`), and never replaces a folder that is not a bundle.

This module knows the file format only: which nets a direction needs, and building the model, are
:mod:`nicegan.inference`'s business.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from nicegan.core.errors import CheckpointError
from nicegan.core.files import describe_os_error, entry_problem, replace_folder, sha256_file
from nicegan.core.limits import BoundsError, load_json
from nicegan.core.version import __version__
from nicegan.formats.run_folder import RunFolder

FORMAT = "nicegan-bundle"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CARD = "README.md"
DIRECTIONS = ("a2b", "b2a")
#: a config.json is a few KB; anything far larger is not one (and must not be read into memory whole): the bound of
#: a YAML config file (nicegan.configs.schema.MAX_CONFIG_BYTES), and a checkpoint's nesting bound
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 200_000
MAX_CONFIG_DEPTH = 64
#: the largest training step a bundle may record (a config's integer bound: exact in a float)
MAX_STEP = 2**53


class BundleError(CheckpointError):
    """An inference bundle that is missing, damaged, of another format, or cannot be written where asked."""


@dataclass(eq=False)
class Bundle:
    """A loaded bundle (see the module docstring for the meaning of each field)."""

    model: str
    config: dict[str, Any]
    step: int
    directions: tuple[str, ...]
    nets: dict[str, dict[str, Tensor]]
    source: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)
    nicegan_version: str = __version__
    weights_sha256: str = ""
    #: the folder it was read from
    path: str = ""


def is_bundle(path: str | os.PathLike) -> bool:
    """Whether ``path`` is meant as a bundle: a folder with ``config.json`` or ``model.safetensors`` and no
    ``checkpoints/`` (a run folder), or one of those two files in such a folder. A damaged bundle with one of the
    files missing still counts, so that loading it says what is missing instead of "no checkpoint"."""
    p = _folder_of(Path(path).expanduser())
    try:
        return p.is_dir() and not RunFolder(p).is_run() and ((p / CONFIG).exists() or (p / WEIGHTS).exists())
    except OSError:
        return False


def _folder_of(p: Path) -> Path:
    """The bundle folder a path names: itself, or the folder of its config.json or model.safetensors."""
    return p.parent if p.name in (CONFIG, WEIGHTS) and p.is_file() else p


# --- reading -------------------------------------------------------------------------------------------------------


def load(path: str | os.PathLike) -> Bundle:
    """Read and check a bundle folder (or its config.json or model.safetensors): one-line :class:`BundleError` for
    anything missing, damaged or foreign."""
    folder = _folder_of(Path(path).expanduser())
    where = str(folder)
    if not folder.is_dir():
        raise BundleError(f"bundle not found: {folder}" if not folder.exists() else f"{folder} is not a bundle folder")
    meta = _read_config(folder / CONFIG, where)
    weights = folder / WEIGHTS
    problem = entry_problem(weights)
    if problem is not None:
        raise BundleError(f"the bundle {where} is incomplete: {WEIGHTS} is missing" if problem == "file not found"
                          else f"cannot read {weights}: {problem}")
    try:
        digest = sha256_file(weights)
    except OSError as e:
        raise BundleError(describe_os_error(e, f"cannot read {weights}")) from None
    if digest != meta["weights"]["sha256"]:
        raise BundleError(f"the bundle {where} is damaged: {WEIGHTS} does not match the SHA-256 recorded in {CONFIG} "
                          "(flipped, truncated or replaced bytes); export it again")
    flat = _read_weights(weights, where)
    nets: dict[str, dict[str, Tensor]] = {name: {} for name in meta["nets"]}
    for key, tensor in flat.items():
        net, _, param = key.partition(".")
        if net not in nets or not param:
            raise BundleError(f"the bundle {where} is damaged: {WEIGHTS} holds {key!r}, which belongs to no net "
                              f"listed in {CONFIG}")
        nets[net][param] = tensor
    empty = [name for name, state in nets.items() if not state]
    if empty:
        raise BundleError(f"the bundle {where} is damaged: {WEIGHTS} has no weights for {empty[0]!r}")
    _check_finite(flat, where)
    _check_binding(weights, meta, where)
    return Bundle(model=meta["model"], config=meta["config"], step=meta["step"], directions=tuple(meta["directions"]),
                  nets=nets, source=meta.get("source") or {}, metrics=meta.get("metrics") or {},
                  exports=meta.get("exports") or {}, nicegan_version=meta["nicegan_version"],
                  weights_sha256=digest, path=where)


def _read_config(path: Path, where: str) -> dict[str, Any]:
    problem = entry_problem(path)
    if problem is not None:
        raise BundleError(f"the bundle {where} is incomplete: {CONFIG} is missing" if problem == "file not found"
                          else f"cannot read {path}: {problem}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise BundleError(describe_os_error(e, f"cannot read {path}")) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise BundleError(f"{path} is over {MAX_CONFIG_BYTES >> 20} MiB: not a bundle's {CONFIG}")
    try:
        meta = load_json(raw, max_bytes=MAX_CONFIG_BYTES, max_nodes=MAX_CONFIG_NODES, max_depth=MAX_CONFIG_DEPTH,
                         allow_nan=True)
    except BoundsError as e:
        raise BundleError(f"the bundle {where} is damaged or hostile: its {CONFIG} {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BundleError(f"{path} is not a nicegan bundle's {CONFIG} (no \"format\": \"{FORMAT}\")")
    version = meta.get("format_version")
    if not _is_int(version) or version < 1:
        raise BundleError(f"the bundle {where} is damaged: {CONFIG} has no valid format_version")
    if version > FORMAT_VERSION:
        raise BundleError(f"the bundle {where} has format {version}; this nicegan ({__version__}) reads bundle formats "
                          f"up to {FORMAT_VERSION}: upgrade nicegan")

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise BundleError(f"the bundle {where} is damaged: {CONFIG} {what}")

    need(isinstance(meta.get("model"), str) and bool(meta["model"]), "has no model name")
    need(isinstance(meta.get("config"), dict), "has no run config")
    need(_is_int(meta.get("step")) and 0 <= meta["step"] <= MAX_STEP,
         "has no training step (an integer from 0 to 2**53)")
    directions = meta.get("directions")
    need(isinstance(directions, list) and bool(directions) and all(d in DIRECTIONS for d in directions)
         and len(set(directions)) == len(directions), "has no valid directions (a2b, b2a)")
    nets = meta.get("nets")
    need(isinstance(nets, list) and bool(nets) and all(isinstance(n, str) and n and "." not in n for n in nets)
         and len(set(nets)) == len(nets), "has no valid list of nets")
    w = meta.get("weights")
    need(isinstance(w, dict) and isinstance(w.get("sha256"), str) and len(w["sha256"]) == 64,
         "records no SHA-256 of the weights")
    need(isinstance(meta.get("nicegan_version"), str), "has no nicegan_version")
    for key in ("source", "metrics", "exports"):
        need(isinstance(meta.get(key, {}), dict), f"has a {key!r} entry that is not a mapping")
    return meta


def _read_weights(path: Path, where: str) -> dict[str, Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, ValueError, RuntimeError, OSError) as e:  # the hash matched: written damaged
        raise BundleError(f"the bundle {where} is damaged: {WEIGHTS} is not a readable safetensors file "
                          f"({' '.join(str(e).split())[:120]})") from None


def _check_finite(flat: dict[str, Tensor], where: str) -> None:
    """Refuse weights holding NaN or infinity: a bundle is a distribution format, and such weights translate into
    garbage with every hash in order (a run that diverged, or an edited file whose hash was updated)."""
    import torch

    for key, t in flat.items():
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all()):
            raise BundleError(f"the bundle {where} is damaged: {WEIGHTS} holds NaN or infinite values in {key!r}; "
                              "export it again from a checkpoint whose training did not diverge")


def _config_digest(meta: dict[str, Any]) -> str:
    """The SHA-256 of what the weights were exported for: model, config, nets and directions, canonical JSON."""
    import hashlib

    what = {k: meta.get(k) for k in ("model", "config", "nets", "directions")}
    return hashlib.sha256(json.dumps(what, sort_keys=True, allow_nan=True).encode()).hexdigest()


def _check_binding(weights: Path, meta: dict[str, Any], where: str) -> None:
    """Refuse a config.json edited after export: the weights file's own metadata records the digest of the config
    they were exported with (bundles written before that was recorded are not checked; the shapes still are, when
    the model is built)."""
    from safetensors import safe_open

    try:
        with safe_open(str(weights), framework="pt") as fh:
            recorded = (fh.metadata() or {}).get("config_sha256")
    except Exception:  # the file was parsed a moment ago: any failure here is damage
        raise BundleError(f"the bundle {where} is damaged: {WEIGHTS} has unreadable metadata") from None
    if recorded is not None and recorded != _config_digest(meta):
        raise BundleError(f"the bundle {where} is damaged: its {CONFIG} does not describe the weights (the model, "
                          f"config, nets or directions were edited after export); export it again")
    if recorded is None:
        _check_card(weights.parent, meta, where)


#: how much of a README.md :func:`_check_card` reads: a model card is a few KB
MAX_CARD_BYTES = 256 * 1024


def _check_card(folder: Path, meta: dict[str, Any], where: str) -> None:
    """A bundle written before the weights recorded their config's digest: its model card (README.md, written by
    the same export) records the model settings on its ``Architecture:`` line. A setting recorded there and in
    config.json with another value was edited after export: for one that the weights' shapes do not show
    (NICE-GAN's ``img_size`` with its light heads) this is the only witness. A card that is missing, edited past
    recognition or of another layout checks nothing: older bundles keep loading."""
    try:
        with open(folder / CARD, "rb") as fh:
            text = fh.read(MAX_CARD_BYTES).decode("utf-8", "replace")
    except OSError:
        return
    line = next((ln for ln in text.splitlines() if ln.startswith("Architecture: `") and ln.endswith("`")), None)
    model = meta["config"].get("model")
    if line is None or not isinstance(model, dict):
        return
    try:
        recorded = load_json(line[len("Architecture: `"):-1], max_bytes=MAX_CARD_BYTES, max_nodes=10_000,
                             max_depth=8, allow_nan=True)
    except BoundsError:
        return
    if not isinstance(recorded, dict):
        return
    changed = [k for k in sorted(recorded) if k != "name" and k in model and recorded[k] != model[k]]
    if changed:
        k = changed[0]
        raise BundleError(f"the bundle {where} is damaged: its {CONFIG} has model.{k} {model[k]!r}, but it was "
                          f"exported with {recorded[k]!r} (its {CARD} records the settings; {CONFIG} was edited after "
                          "export); export it again, or undo the edit")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# --- writing -------------------------------------------------------------------------------------------------------


def check_target(out_dir: str | os.PathLike) -> Path:
    """Refuse, before any work, an output that is a file or a non-empty folder other than a bundle (which an
    export replaces); returns the path."""
    out = Path(out_dir).expanduser()
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BundleError(f"out_dir {out} exists and is not a folder; give a new folder (or an earlier bundle) "
                          "for the bundle", option="out_dir")
    if out.is_dir():
        try:
            with os.scandir(out) as it:
                empty = next(it, None) is None
        except OSError as e:
            raise BundleError(describe_os_error(e, f"cannot read {out}")) from None
        if not empty and not _is_written_bundle(out):
            raise BundleError(f"refusing to overwrite {out}: it is not empty and not a nicegan bundle; choose a new "
                              "folder for out_dir", option="out_dir")
    return out


def _is_written_bundle(folder: Path) -> bool:
    """A folder whose config.json says it is a bundle (damaged weights or not): safe to replace."""
    if entry_problem(folder / CONFIG) is not None:  # never open a FIFO: it would block
        return False
    try:
        with open(folder / CONFIG, "rb") as fh:
            meta = load_json(fh.read(MAX_CONFIG_BYTES + 1), max_bytes=MAX_CONFIG_BYTES, max_nodes=MAX_CONFIG_NODES,
                             max_depth=MAX_CONFIG_DEPTH, allow_nan=True)
    except (OSError, BoundsError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


@contextlib.contextmanager
def staging(out_dir: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``out_dir`` to write a bundle into; when the block ends without an error it takes
    ``out_dir``'s place (an earlier bundle there is replaced), otherwise it is removed and ``out_dir`` is untouched.
    """
    out = check_target(out_dir)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as e:
        raise BundleError(describe_os_error(e, f"cannot create a folder beside {out}")) from None
    try:
        yield tmp
        check_target(out)  # it may have changed while the export ran
        try:
            replace_folder(tmp, out)  # an earlier bundle there is removed once the new one is in place
        except OSError as e:
            raise BundleError(describe_os_error(e, f"cannot move the bundle into {out}")) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write(folder: Path, *, model: str, config: dict[str, Any], step: int, directions: tuple[str, ...],
          nets: dict[str, dict[str, Tensor]], source: dict[str, Any], card: str,
          metrics: dict[str, Any] | None = None, exports: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``model.safetensors``, ``config.json`` and ``README.md`` into ``folder`` (a :func:`staging` folder);
    returns what config.json holds. ``config``, ``source``, ``metrics`` and ``exports`` must be JSON-safe."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if not directions or any(d not in DIRECTIONS for d in directions):
        raise ValueError(f"directions must be a non-empty subset of {DIRECTIONS}, got {directions!r}")
    # Own contiguous copies: safetensors refuses tensors that share memory (tied or aliased parameters).
    flat = {f"{net}.{key}": t.detach().to("cpu").contiguous().clone() for net, state in nets.items()
            for key, t in state.items()}
    weights = folder / WEIGHTS
    meta: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "nicegan_version": __version__, "model": model,
        "step": step, "directions": list(directions), "nets": list(nets), "weights": {}, "source": source,
        "metrics": metrics or {}, "exports": exports or {}, "config": config,
    }
    try:
        text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        raise BundleError(f"cannot write the bundle: its config is not JSON-safe ({e})") from None
    try:
        save_file(flat, str(weights), metadata={"format": FORMAT, "model": model,
                                                "config_sha256": _config_digest(meta)})
        meta["weights"] = {"file": WEIGHTS, "bytes": weights.stat().st_size, "sha256": sha256_file(weights)}
        text = json.dumps(meta, indent=2, allow_nan=False) + "\n"
        (folder / CONFIG).write_text(text, encoding="utf-8")
        (folder / CARD).write_text(card, encoding="utf-8")
    except OSError as e:
        raise BundleError(describe_os_error(e, f"cannot write the bundle in {folder}")) from None
    return meta
