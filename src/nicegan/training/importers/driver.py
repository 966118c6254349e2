"""``import_official``: files of an official code base -> a resumable run folder or an inference bundle.

The steps are the same for every format: read the files, find the one format that recognises them (or the one the
user forced, which then says why it does not fit), let it re-express them as an :class:`Imported` record, build our
model from the architecture read off the weights, check that every tensor the files hold is finite and has the
shape that model expects, and load it strictly. Then, when the files hold every net of the model (both directions
and the discriminators), write a run folder whose checkpoint ``nicegan resume`` continues, with the official Adam
moments re-keyed onto our parameter order by name; otherwise write a bundle with the directions the files cover.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nicegan.configs.schema import Override, RunConfig, given, resolve_config
from nicegan.core.errors import CheckpointError, ConfigError, NiceganError
from nicegan.core.files import writable_dir
from nicegan.core.runtime import seed_everything
from nicegan.core.version import __version__
from nicegan.formats import bundle
from nicegan.formats import checkpoint as ckpt
from nicegan.formats.run_folder import RunFolder
from nicegan.models import create_model, get_model_class
from nicegan.models.base import TranslationModel
from nicegan.training.importers.common import Imported, OfficialFormat, adam_states_by_name, read_files
from nicegan.training.optim import build_optimizers

log = logging.getLogger("nicegan")

DIRECTIONS = ("a2b", "b2a")


@dataclass
class ImportReport:
    """What ``import_official`` wrote, for the command's summary."""

    format: str
    model: str
    out: Path
    kind: str  #: "run" (resumable) or "bundle"
    step: int
    directions: tuple[str, ...]
    settings: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    parameters: int = 0


def formats() -> dict[str, OfficialFormat]:
    """Every known official format, by ``--format`` name (NICE-GAN's is handled by the driver itself)."""
    from nicegan.training.importers import cogan, cyclegan, drit, munit, ugatit, unit

    known = [cyclegan.FORMAT, ugatit.FORMAT, munit.FORMAT, unit.FORMAT, unit.MASTER, drit.FORMAT, cogan.FORMAT]
    return {f.name: f for f in known}


FORMAT_NAMES = ("nicegan", "cyclegan", "ugatit", "munit", "unit", "unit-master", "drit", "cogan")


def expand(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, a folder standing for the checkpoint files directly in it (``*.pt``, ``*.pth``, ``*.pkl``)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".pt", ".pth", ".pkl") and q.is_file())
            if not found:
                raise CheckpointError(f"{p} holds no official checkpoint files (*.pt, *.pth, *.pkl)")
            out += found
        elif not p.exists():
            raise CheckpointError(f"official checkpoint not found: {p}")
        else:
            out.append(p)
    if not out:
        raise CheckpointError("no official checkpoint files given")
    if len(out) > 64:
        raise CheckpointError(f"{len(out)} files given; an official checkpoint is at most a handful of files (name "
                              "the ones of one iteration)")
    return list(dict.fromkeys(out))


def detect(files: Mapping[Path, Any], forced: str | None = None) -> OfficialFormat:
    """The one format that recognises ``files`` (or ``forced``, with the reason it does not fit)."""
    known = formats()
    if forced is not None:
        if forced not in known:
            raise NiceganError(f"fmt={forced} is no known format; known formats: {', '.join(FORMAT_NAMES)}",
                               option="fmt")
        why = known[forced].mismatch(files)
        if why is not None:
            raise CheckpointError(f"{_names(files)} {'is' if len(files) == 1 else 'are'} not {forced} files: {why}")
        return known[forced]
    matches = [f for f in known.values() if f.mismatch(files) is None]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CheckpointError(f"{_names(files)}: not the files of any known official code (known formats: "
                              f"{', '.join(FORMAT_NAMES)}); pass fmt=NAME to hear why one does not fit", option="fmt")
    raise CheckpointError(f"{_names(files)} could be {' or '.join(f.name for f in matches)}; pass fmt=NAME",
                          option="fmt")


def _names(files: Mapping[Path, Any]) -> str:
    names = [p.name for p in files]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def import_official(paths: Iterable[str | Path], out: str | Path, *, fmt: str | None = None,
                    config: str | None = None, overrides: Iterable[Override] = (), data_root: str | None = None,
                    img_size: int | None = None, light: bool | None = None) -> ImportReport:
    """Convert the official files ``paths`` into ``out`` (a run folder, or a bundle folder when the files do not
    hold every net). ``fmt`` forces a format; ``config`` is the preset or YAML the training settings start from
    (default: the format's own); ``overrides`` are ``KEY=VALUE`` settings; ``img_size`` and ``light`` assert what
    cannot always be read off the weights."""
    files = expand(paths)
    if fmt == "nicegan" or (fmt is None and _is_nicegan(files)):
        return _import_nicegan(files, Path(out).expanduser(), config, list(overrides), data_root, img_size, light)
    loaded = read_files(files)  # an unreadable or foreign file is the first thing to say
    out_dir = _check_out(Path(out).expanduser())
    form = detect(loaded, fmt)
    opts = {"img_size": img_size, "light": light}
    imp = form.convert(loaded, opts)
    imp.files = [str(p) for p in files]
    model, cfg = build(imp, config, list(overrides), data_root, _names(loaded))
    resumable = set(imp.nets) >= set(model.nets)
    if resumable:
        report = _write_run(imp, model, cfg, out_dir, form.name)
    else:
        report = _write_bundle(imp, model, cfg, out_dir, form.name)
    report.notes = list(imp.notes) + report.notes
    return report


def _is_nicegan(files: list[Path]) -> bool:
    """One file with the official NICE-GAN keys (read once more by the NICE-GAN converter; it is small)."""
    if len(files) != 1:
        return False
    try:
        raw = ckpt.read_torch_file(files[0])
    except CheckpointError:
        return False
    return isinstance(raw, dict) and set(raw) >= ckpt.OFFICIAL_KEYS


def _check_out(out: Path) -> Path:
    """Refuse, before any work, an output that would overwrite something."""
    if out.suffix == ".pt":
        raise NiceganError(f"out {out}: give a folder (a run folder or a bundle folder is written there); a single "
                           ".pt file is written for official NICE-GAN checkpoints only", option="out")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NiceganError(f"out {out} exists and is not an empty folder; choose a new folder", option="out")
    writable_dir(out.parent if not out.exists() else out, "output folder")
    return out


def build(imp: Imported, config: str | None, overrides: list[Override], data_root: str | None,
          where: str) -> tuple[TranslationModel, RunConfig]:
    """Our model with the imported weights loaded strictly, after checking they are finite and fit its shapes."""
    read_off = {"model.name": imp.model, **imp.settings, "data.root": data_root}
    # Nets the files lack (a bundle: e.g. the discriminators of a released generator) are never built from weights:
    # the settings the weights do not give them are the model's small "tiny" ones, so the preset's defaults neither
    # fail to fit the size read off nor make the bundle's config describe a model far larger than its weights
    # (which loading refuses as hostile). A run (every net imported) gets none of them.
    tiny = get_model_class(imp.model).config_class.tiny or {}
    stand_in = {f"model.{k}": v for k, v in tiny.items() if f"model.{k}" not in imp.settings and k != "img_size"}
    cfg, error = _resolve(config or imp.preset, read_off, overrides)
    if cfg is None or not set(_net_names(cfg)) <= set(imp.nets):
        with_stand_ins, _ = _resolve(config or imp.preset, {**stand_in, **read_off}, overrides)
        if with_stand_ins is not None and not set(_net_names(with_stand_ins)) <= set(imp.nets):
            cfg = with_stand_ins
        else:
            stand_in = {}
    else:
        stand_in = {}
    if cfg is None:
        raise CheckpointError(f"{where}: the architecture read off the weights is not one this toolkit can build "
                              f"({error})")
    seed_everything(cfg.train.seed)
    model = create_model(cfg.model_name, cfg.model)
    if stand_in:
        absent = ", ".join(n for n in model.nets if n not in imp.nets)
        shown = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in stand_in.items())
        imp.notes.append(f"the files hold no {absent}: their settings ({shown}) are stand-ins that fit the size")
    for net, sd in imp.nets.items():  # BatchNorm counters that files of PyTorch < 0.4 lack (read by no forward pass)
        if net in model.nets:
            counters = [k for k in model.nets[net].state_dict() if k.endswith(".num_batches_tracked") and k not in sd]
            if counters and all(k.replace("num_batches_tracked", "running_mean") in sd for k in counters):
                imp.fresh_keys[net] = (*imp.fresh_keys.get(net, ()), *counters)
    for net, keys in imp.fresh_keys.items():
        own = model.nets[net].state_dict()
        imp.nets[net] = {**imp.nets[net], **{k: own[k] for k in keys}}
    for net, sd in imp.nets.items():
        if net not in model.nets:
            raise CheckpointError(f"{where}: the {cfg.model_name} model has no net {net!r}")
        _check_fit(net, sd, model.nets[net].state_dict(), where, cfg.model_name)
    ckpt.load_nets(model.nets, imp.nets, names=list(imp.nets), where=where, model=cfg.model_name)
    return model, cfg


def _resolve(source: str, values: dict[str, Any], overrides: list[Override]) -> tuple[RunConfig | None, str]:
    try:
        return resolve_config(source, [*given(values), *overrides]), ""
    except ConfigError as e:
        return None, str(e)


def _net_names(cfg: RunConfig) -> list[str]:
    """The nets of ``cfg``'s model, built on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        return list(create_model(cfg.model_name, cfg.model).nets)


def _check_fit(net: str, given_sd: Mapping[str, Tensor], ours: Mapping[str, Tensor], where: str, model: str) -> None:
    missing = [k for k in ours if k not in given_sd]
    extra = [k for k in given_sd if k not in ours]
    if missing or extra:
        what = f"lacks {missing[0]!r}" if missing else f"has {extra[0]!r}, which the network has not"
        raise CheckpointError(f"{where}: the {net} weights do not describe the {model} network read off them: it "
                              f"{what} ({len(missing)} missing, {len(extra)} unexpected keys)")
    for k, t in given_sd.items():
        if tuple(t.shape) != tuple(ours[k].shape):
            raise CheckpointError(f"{where}: {net}.{k} has shape {tuple(t.shape)}, but the architecture read off the "
                                  f"weights gives {tuple(ours[k].shape)}")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{where} is damaged: {net}.{k} holds NaN or infinite values")


def _param_names(model: TranslationModel, net: str) -> set[str]:
    return {k for k, _ in model.nets[net].named_parameters()}


def map_adam_states(imp: Imported, model: TranslationModel, optimizers: dict[str, torch.optim.Optimizer],
                    where: str) -> list[str]:
    """Load each official Adam state into our optimizer of the same role, by parameter name; returns notes."""
    notes = []
    name_of = {id(p): f"{net}.{k}" for net, m in model.nets.items() for k, p in m.named_parameters()}
    for key, opt in optimizers.items():
        sources = imp.optimizers.get(key)
        if not sources:
            notes.append(f"no official optimizer state for {key}: its Adam moments start from zero")
            continue
        ours = [name_of[id(p)] for g in opt.param_groups for p in g["params"]]
        per_name: dict[str, Any] = {}
        for state, nets in sources:
            off_names = [f"{n}.{k}" for n in nets for k in imp.nets[n] if k in _param_names(model, n)]
            per_name.update(adam_states_by_name(state, off_names, f"{where} ({', '.join(nets)})"))
        stray = sorted(set(per_name) - set(ours))
        if stray:
            raise CheckpointError(f"{where}: official optimizer state for {stray[0]}, which our {key} optimizer does "
                                  "not update")
        template = opt.state_dict()
        mapped = {"state": {j: per_name[n] for j, n in enumerate(ours) if n in per_name},
                  "param_groups": template["param_groups"]}
        try:
            opt.load_state_dict(mapped)
            ckpt.check_optimizer_state(opt, where)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise CheckpointError(f"{where}: the official optimizer state does not fit the networks "
                                  f"({' '.join(str(e).split())[:150]})") from None
    return notes


def _write_run(imp: Imported, model: TranslationModel, cfg: RunConfig, out: Path, fmt: str) -> ImportReport:
    optimizers = build_optimizers(model, cfg.train)
    notes = map_adam_states(imp, model, optimizers, _where(imp))
    record = ckpt.Checkpoint(model=cfg.model_name, config=cfg.to_dict(), step=imp.step,
                             nets={k: v.state_dict() for k, v in model.nets.items()},
                             optimizers={k: o.state_dict() for k, o in optimizers.items()},
                             model_extra=model.extra_state(), rng=ckpt.capture_rng(),
                             extra={"imported_from": imp.files, "official_format": fmt})
    ckpt.write(record, ckpt.checkpoint_dir(out) / ckpt.LATEST)
    try:
        RunFolder(out).config.write_text(cfg.to_yaml())
    except OSError as e:
        raise NiceganError(f"cannot write {RunFolder(out).config}: {e.strerror or e}") from None
    return ImportReport(fmt, cfg.model_name, out, "run", imp.step, DIRECTIONS, imp.settings, notes,
                        model.num_parameters())


def _where(imp: Imported) -> str:
    return ", ".join(Path(f).name for f in imp.files[:4])


def _write_bundle(imp: Imported, model: TranslationModel, cfg: RunConfig, out: Path, fmt: str) -> ImportReport:
    directions = tuple(d for d in DIRECTIONS if set(model.direction_nets(d)) <= set(imp.nets))
    if not directions:
        raise CheckpointError(f"{_where(imp)}: the files hold {', '.join(imp.nets)}, which translate in no direction "
                              f"of the {cfg.model_name} model")
    names = [n for n in model.translation_nets() if any(n in model.direction_nets(d) for d in directions)]
    nets = {n: model.inference_state(n) for n in names}
    counts = sum(p.numel() for n in names for k, p in model.nets[n].named_parameters() if k in nets[n])
    source = {"official_format": fmt, "official_files": imp.files}
    with bundle.staging(out) as tmp:
        bundle.write(tmp, model=cfg.model_name, config=cfg.to_dict(), step=imp.step, directions=directions, nets=nets,
                     source=source, card=_card(imp, cfg, fmt, directions, counts))
    notes = [] if directions == DIRECTIONS else [
        f"the files hold one direction ({directions[0]}): a bundle for translation, not a run to resume"]
    return ImportReport(fmt, cfg.model_name, out, "bundle", imp.step, directions, imp.settings, notes, counts)


def _card(imp: Imported, cfg: RunConfig, fmt: str, directions: tuple[str, ...], params: int) -> str:
    arch = {k: v for k, v in cfg.to_dict()["model"].items() if k != "name"}
    d = directions[0]
    lines = [f"# {cfg.model_name} translation model (imported from official {fmt} weights)", "",
             "An inference bundle written by `nicegan import-official`: the official weights, re-keyed without "
             "changing a number, stored without pickle.", "",
             "| | |", "| --- | --- |", f"| model | `{cfg.model_name}` |",
             f"| directions | {', '.join(directions)} |", f"| official files | {', '.join(imp.files)} |",
             f"| official step | {imp.step:,} |", f"| image size | {cfg.model.img_size} px |",
             f"| parameters | {params:,} |", f"| written by | nicegan {__version__} |", "",
             f"Architecture: `{json.dumps(arch, separators=(', ', ': '))}`", ""]
    if imp.notes:
        lines += ["## Notes from the import", "", *(f"- {n}" for n in imp.notes), ""]
    lines += ["## Use", "", "```sh", f"nicegan translate --checkpoint BUNDLE --input photo.jpg --output out/ "
              f"--direction {d}", "```", ""]
    return "\n".join(lines)


def _import_nicegan(files: list[Path], out: Path, config: str | None, overrides: list[Override],
                    data_root: str | None, img_size: int | None, light: bool | None) -> ImportReport:
    """The official NICE-GAN file (one ``.pt`` with gen2B, gen2A, disA, disB and both Adam states)."""
    from nicegan.training.importers.nicegan import convert_official

    if len(files) != 1:
        raise NiceganError("an official NICE-GAN checkpoint is one file; name only that file")
    target = out
    if out.suffix != ".pt":  # a run folder
        if (ckpt.checkpoint_dir(out) / ckpt.LATEST).exists():
            raise NiceganError(f"{out} already holds a run; choose another output folder (out)", option="out")
        target = ckpt.checkpoint_dir(out) / ckpt.LATEST
    elif out.exists():
        raise NiceganError(f"{out} exists; refusing to overwrite it")
    writable_dir(target.parent, "output folder")  # before the conversion, not after it
    record = convert_official(files[0], light=light, img_size=img_size, config=config or "nicegan-light",
                              overrides=overrides, data_root=data_root)
    ckpt.write(record, target)
    m = record.config["model"]
    settings = {f"model.{k}": m[k] for k in ("light", "img_size", "ch", "n_res", "n_dis")}
    return ImportReport("nicegan", "nicegan", target, "run", record.step, DIRECTIONS, settings, [],
                        sum(t.numel() for sd in record.nets.values() for t in sd.values()))
