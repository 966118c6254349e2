"""Typed, validated run configuration: YAML presets over dataclass defaults, with strict ``key=value`` overrides.

A run config has three sections: ``model`` (``name`` plus the fields of that model's config dataclass), ``data``
and ``train``. Unknown keys, values of the wrong type and out-of-range values raise :class:`ConfigError` with a
one-line message naming the key. The resolved config is saved in every checkpoint, so resume and translate rebuild
the exact model without the user retyping anything.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from nicegan.configs.presets import config_source_problem, preset_names
from nicegan.core.errors import ConfigError
from nicegan.core.files import entry_problem
from nicegan.core.limits import exceeds
from nicegan.models import get_model_class
from nicegan.models.base import ModelConfig

DEFAULT_MODEL = "nicegan"


@dataclass
class DataConfig:
    """Where the images come from and how they are augmented."""

    root: str = ""  # folder with trainA/ trainB/ testA/ testB/, or "builtin:digits"
    resize_margin: int = 30  # train: resize to img_size + margin (square), then random crop img_size
    flip: bool = True  # random horizontal flip in training
    num_workers: int = -1  # data-loading processes; -1 = automatic
    strict: bool = False  # undecodable images are an error before training instead of being skipped

    def validate(self) -> None:
        if self.resize_margin < 0:
            raise ConfigError(f"data.resize_margin must be >= 0, got {self.resize_margin}")
        if self.num_workers < -1:
            raise ConfigError(f"data.num_workers must be >= -1, got {self.num_workers}")


#: the largest integer any config value may have (every torch size and count fits well below it)
MAX_INT = 2**53

#: the largest seed every generator accepts (NumPy's are 32-bit)
MAX_SEED = 2**32 - 1


@dataclass
class TrainConfig:
    """Optimisation schedule and run mechanics (official NICE-GAN values as defaults)."""

    max_steps: int = 100_000
    batch_size: int = 1
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-4  # Adam's coupled L2, as in the official code
    lr_decay: Literal["linear", "none", "step"] = "linear"  # linear decay to 0 from decay_start * max_steps; step:
    # times decay_gamma every decay_every steps (MUNIT's StepLR)
    decay_start: float = 0.5
    decay_every: int = 0
    decay_gamma: float = 0.5
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    log_every: int = 50
    sample_every: int = 1000  # image grids from a fixed batch; 0 = never
    ckpt_every: int = 1000  # numbered checkpoint + latest; 0 = only at the end
    keep_last: int = 3  # numbered checkpoints kept (latest.pt is always kept); 0 = keep all
    eval_every: int = 0  # FID/KID (paper protocol, both directions) on the test split; 0 = never
    eval_limit: int = 0  # translate and score at most this many test images per direction (FID/KID and the digits
    # label preservation) in those evaluations; 0 = all
    inception_weights: str = ""  # FID Inception weights file; "" = the offline resolution order
    # Opt-in fast paths (default off: the default path reproduces the official floats)
    amp: Literal["none", "bf16", "fp16"] = "none"  # autocast; fp16 adds a gradient scaler per phase
    channels_last: bool = False  # NHWC memory format for the nets and batches
    compile: bool = False  # torch.compile every net (a first step that compiles, then faster: docs/performance.md)
    fused_adam: bool = False  # fused Adam kernels
    cudnn_benchmark: bool = False  # let cuDNN pick the fastest convolution algorithms (GPU)
    # Memory on demand: recompute the networks' block activations in the backward pass instead of keeping them
    # (bit-identical gradients; less peak memory for more time)
    checkpoint_activations: bool = False

    def validate(self) -> None:
        for key in ("max_steps", "batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        for key in ("log_every", "sample_every", "ckpt_every", "keep_last", "seed", "eval_every", "eval_limit"):
            if getattr(self, key) < 0:
                raise ConfigError(f"train.{key} must be >= 0, got {getattr(self, key)}")
        if self.seed > MAX_SEED:
            raise ConfigError(f"train.seed must be at most {MAX_SEED} (2**32 - 1), got {_show(self.seed)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"train.lr must be a finite number > 0, got {self.lr}")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            raise ConfigError(f"train.weight_decay must be a finite number >= 0, got {self.weight_decay}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"train.betas must lie in [0, 1), got {list(self.betas)}")
        if not 0.0 <= self.decay_start <= 1.0:
            raise ConfigError(f"train.decay_start must lie in [0, 1], got {self.decay_start}")
        if self.lr_decay == "step" and self.decay_every < 1:
            raise ConfigError(f"train.lr_decay step needs train.decay_every >= 1 (steps), got {self.decay_every}")
        if not 0.0 < self.decay_gamma <= 1.0:
            raise ConfigError(f"train.decay_gamma must lie in (0, 1], got {self.decay_gamma}")
        if self.compile and self.checkpoint_activations:
            # torch.compile cannot trace the checkpointed blocks' recording of the power-iteration vectors
            raise ConfigError("train.compile and train.checkpoint_activations cannot be combined: compile for speed "
                              "or checkpoint for memory", option="compile")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"train.device must be auto, cpu, cuda or cuda:N, got {_show(self.device)}")


@dataclass
class RunConfig:
    """A whole run: model name and config, data and training settings."""

    model_name: str = DEFAULT_MODEL
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON/checkpoint friendly; tuples become lists)."""
        return _plain({"model": {"name": self.model_name, **dataclasses.asdict(self.model)},
                       "data": dataclasses.asdict(self.data), "train": dataclasses.asdict(self.train)})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Build and validate from a nested dict; unknown keys and bad values raise ConfigError."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a mapping of sections, got {type(d).__name__}")
        unknown = set(d) - {"model", "data", "train"}
        if unknown:
            raise ConfigError(f"unknown config section {_show(sorted(unknown)[0])} (sections: model, data, train)")
        model_d = dict(_section(d, "model"))
        name = model_d.pop("name", DEFAULT_MODEL)
        if not isinstance(name, str):
            raise ConfigError(f"model.name must be a string, got {_show(name)}")
        model_cls = get_model_class(name)
        cfg = cls(model_name=name, model=_build(model_cls.config_class, model_d, "model"),
                  data=_build(DataConfig, _section(d, "data"), "data"),
                  train=_build(TrainConfig, _section(d, "train"), "train"))
        cfg.validate()
        return cfg

    def validate(self) -> None:
        for part in (self.model, self.data, self.train):
            part.validate()
        allowed = type(self.model).rgb_img_ch
        if self.model.img_ch not in allowed:
            raise ConfigError(f"model.img_ch must be {' or '.join(map(str, allowed))} for the {self.model_name} model: "
                              "every image is read as RGB (grayscale, palette and RGBA files are converted), got "
                              f"{self.model.img_ch}")


#: bounds on what a config may hold: a YAML file's bytes, and the nodes of its tree counted with every alias
#: expanded (nine nested levels of anchors make a 1 KB file expand to billions of nodes)
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000

_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 80, 80, 6, 6, 3


def _show(value: Any) -> str:
    """A value for an error message: its repr, cut short (a hostile value's full repr can be gigabytes)."""
    return _REPR.repr(value)


def check_bounded(tree: Any, where: str) -> None:
    """Refuse a config tree with more than :data:`MAX_CONFIG_NODES` nodes once aliases are expanded (or deeper
    than 32 levels), without expanding it: the walk stops at the first node over the budget."""
    if exceeds(tree, MAX_CONFIG_NODES, 32, keys=True):
        raise ConfigError(f"{where} is too large once its YAML aliases are expanded (over "
                          f"{MAX_CONFIG_NODES:,} values or 32 levels); a config needs a few hundred")


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def _section(d: dict[str, Any], name: str) -> dict[str, Any]:
    sec = d.get(name) or {}
    if not isinstance(sec, dict):
        raise ConfigError(f"config section {_show(name)} must be a mapping, got {_show(sec)}")
    return sec


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in hints or key not in names:
            raise ConfigError(f"unknown config key {prefix}.{key} (known: {', '.join(names)})")
        kwargs[key] = _coerce(value, hints[key], f"{prefix}.{key}")
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; convert where it is lossless (YAML reads 1e-4 as a string)."""
    origin = get_origin(tp)
    if origin is Union or (origin is not None and origin.__class__.__name__ == "UnionType"):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(value, non_none[0], key)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}, got {_show(value)}")
        return value
    if origin is tuple and len(get_args(tp)) == 2 and get_args(tp)[1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list such as [a, b], got {_show(value)}")
        return tuple(_coerce(v, get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key} must be a list of {len(args)} values, got {_show(value)}")
        return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {_show(value)}")
    if tp is int:
        if isinstance(value, str):
            value = _parse_number(value, key, "an integer")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > MAX_INT:
                raise ConfigError(f"{key} must be at most {MAX_INT:,} in size, got {_show(value)}")
            return value
        raise ConfigError(f"{key} must be an integer, got {_show(value)}")
    if tp is float:
        if isinstance(value, str):
            value = _parse_number(value, key, "a number")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key} must be a number, got {_show(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {_show(value)}")
    raise TypeError(f"unsupported config annotation {tp!r} for {key}")


def _parse_number(s: str, key: str, kind: str) -> int | float:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        raise ConfigError(f"{key} must be {kind}, got {_show(s)}") from None


# --- presets, files and overrides ------------------------------------------------------------------------------


def list_presets() -> list[str]:
    """Names of the presets shipped with the package."""
    return preset_names()


def read_user_text(path: Path, what: str, max_chars: int) -> str:
    """At most ``max_chars + 1`` characters of a small user file (a config or sweep file: the caller refuses a
    longer one), with one-line ConfigErrors for entries that are not readable files."""
    problem = entry_problem(path)
    if problem is not None:
        raise ConfigError(f"cannot read {what} {path}: {problem}")
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(max_chars + 1)
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} {path}: {e}") from None


def parse_yaml(text: str, where: str) -> Any:
    """YAML text to plain data, with one-line ConfigErrors for bad YAML and for structures too deep or too large."""
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(e).split())[:300]}") from None
    except RecursionError:
        raise ConfigError(f"{where} is nested too deeply") from None
    check_bounded(d, where)
    return d


def _load_yaml_text(text: str, where: str) -> dict[str, Any]:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where} is {len(text):,} characters long; a config file may have at most "
                          f"{MAX_CONFIG_BYTES:,}")
    d = parse_yaml(text, where)
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must hold a mapping of sections (model, data, train)")
    return d


def load_config_dict(name_or_path: str, _depth: int = 0) -> dict[str, Any]:
    """Nested dict of a preset name or YAML file, following ``base:`` (another preset or file) first."""
    if _depth > 10:
        raise ConfigError(f"config 'base' chain is too deep at {_show(name_or_path)} (a cycle?)")
    preset = resources.files("nicegan.configs.presets") / f"{name_or_path}.yaml"
    if preset.is_file():
        d = _load_yaml_text(preset.read_text(), f"preset {name_or_path}")
        where = Path(".")
    else:
        path = Path(name_or_path).expanduser()
        problem = config_source_problem(name_or_path)  # the same words as the command line's check before torch
        if problem is not None:
            raise ConfigError(problem)
        d = _load_yaml_text(read_user_text(path, "config file", MAX_CONFIG_BYTES), f"config file {path}")
        where = path.parent
    base = d.pop("base", None)
    if base is None:
        return d
    if not isinstance(base, str):
        raise ConfigError(f"'base' in {name_or_path} must be a preset name or a file path")
    if not (resources.files("nicegan.configs.presets") / f"{base}.yaml").is_file() and not Path(base).is_absolute():
        base = str(where / base) if (where / base).is_file() else base
    return deep_merge(load_config_dict(base, _depth + 1), d)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` merged into a copy of ``base`` (nested dicts merged key by key)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


#: one override: ``"section.key=value"`` (the value parsed as a YAML scalar or flow list, as typed on a command
#: line) or ``("section.key", value)`` (the value used as it is, e.g. a path that must not be parsed)
Override = str | tuple[str, Any]


def apply_overrides(d: dict[str, Any], overrides: Iterable[Override]) -> dict[str, Any]:
    """Apply overrides (see :data:`Override`) to a copy of the config dict ``d``."""
    out = copy.deepcopy(d)
    for item in overrides:
        if isinstance(item, str):
            key, sep, raw = item.partition("=")
            try:
                value = yaml.safe_load(raw) if raw.strip() else ""
            except yaml.YAMLError:
                value = raw
            check_bounded(value, f"override {_show(item)}")
        else:
            (key, value), sep, raw = item, "=", ""
        key = key.strip()
        parts = key.split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise ConfigError(f"override {_show(item)} must look like section.key=value (e.g. train.max_steps=1000)")
        section = out.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise ConfigError(f"override {_show(item)}: config section {parts[0]!r} is not a mapping")
        section[parts[1]] = value
    return out


def given(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``{"section.key": value}`` as typed overrides, leaving out the values that are None (options not given:
    shortcut flags, the few fields a resume may change). The values are used as they are, never parsed."""
    return [(key, value) for key, value in values.items() if value is not None]


def resolve_config(source: str | Mapping[str, Any], overrides: Iterable[Override] = ()) -> RunConfig:
    """The one way to a :class:`RunConfig`: a preset name, a YAML file or a config dict (e.g. a checkpoint's),
    then overrides, validated."""
    if isinstance(source, str):
        d = load_config_dict(source)
    else:  # e.g. a checkpoint's config: bounded like a file before anything walks it
        check_bounded(source, "the config")
        d = dict(source)
    return RunConfig.from_dict(apply_overrides(d, overrides))
