"""``nicegan models``: every registered model with its presets and parameter counts."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from nicegan.cli.common import positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the models, their presets and parameter counts",
                       description="Parameter counts are for each model's default (paper) configuration, optionally "
                       "at another --img-size or with the light/full generator MLP where the model has one.")
    p.add_argument("--img-size", type=positive_int)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--light", dest="light", action="store_const", const=True)
    group.add_argument("--full", dest="light", action="store_const", const=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def presets_by_model() -> dict[str, list[str]]:
    from nicegan.configs.schema import list_presets, load_config_dict

    out: dict[str, list[str]] = {}
    for name in list_presets():
        model = (load_config_dict(name).get("model") or {}).get("name", "nicegan")
        out.setdefault(model, []).append(name)
    return out


def model_info(name: str, img_size: int | None = None, light: bool | None = None) -> dict[str, Any]:
    """Parameter counts per net and in total for ``name``'s default config (built on the meta device: no memory)."""
    import torch

    from nicegan.core.errors import ConfigError
    from nicegan.models.registry import get_model_class

    cls = get_model_class(name)
    cfg = cls.config_class()
    fields = {f.name for f in dataclasses.fields(cfg)}
    if img_size is not None and "img_size" in fields:
        cfg.img_size = img_size
    if light is not None and "light" in fields:
        cfg.light = light
    info: dict[str, Any] = {"model": name, "config": dataclasses.asdict(cfg),
                            "card": dataclasses.asdict(cls.card) if cls.card else None}
    try:
        with torch.device("meta"):
            model = cls(cfg)
    except ConfigError as e:
        info["error"] = str(e)
        return info
    info["parameters"] = {k: sum(p.numel() for p in v.parameters()) for k, v in model.nets.items()}
    info["total"] = sum(info["parameters"].values())
    return info


def run(args: argparse.Namespace) -> int:
    from nicegan.models.registry import list_models

    presets = presets_by_model()
    rows = []
    for name in list_models():
        info = model_info(name, args.img_size, args.light)
        info["presets"] = presets.get(name, [])
        rows.append(info)
    if args.json:
        print(json.dumps(rows))
        return 0
    for info in rows:
        cfg = info["config"]
        where = ", ".join(f"{k} {cfg[k]}" for k in ("img_size", "light") if k in cfg)
        print(f"{info['model']}  ({where}; presets: {', '.join(info['presets']) or '-'})")
        card = info["card"]
        if card:
            print(f"  {card['title']}: {card['paper']}")
            print(f"  official code: {card['code']} ({card['commit']}); released weights: {card['released']}")
        if "error" in info:
            print(f"  not buildable at this size: {info['error']}")
            continue
        for net, n in info["parameters"].items():
            print(f"  {net:<12}{n:>15,}")
        print(f"  {'total':<12}{info['total']:>15,}")
    return 0
