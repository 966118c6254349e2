"""Config: presets, files with base:, typed overrides, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from nicegan.configs.schema import RunConfig, list_presets, load_config_dict, resolve_config
from nicegan.core.errors import ConfigError
from nicegan.models.nicegan import head_sizes


def test_presets_exist_and_resolve() -> None:
    assert {"nicegan-light", "nicegan-full", "digits"} <= set(list_presets())
    for name in list_presets():
        resolve_config(name)


def test_nicegan_light_is_the_paper_setting() -> None:
    cfg = resolve_config("nicegan-light")
    m, t = cfg.model, cfg.train
    assert (m.ch, m.n_res, m.n_dis, m.img_size, m.light) == (64, 6, 7, 256, True)
    assert (t.max_steps, t.batch_size, t.lr, t.betas, t.weight_decay) == (100_000, 1, 1e-4, (0.5, 0.999), 1e-4)
    assert (t.lr_decay, t.decay_start) == ("linear", 0.5)
    assert (m.adv_weight, m.cycle_weight, m.recon_weight) == (1, 10, 10)
    full = resolve_config("nicegan-full")
    assert full.model.light is False and full.model.ch == 64


def test_overrides_are_typed() -> None:
    cfg = resolve_config("nicegan-light", ["train.lr=2e-4", "model.ch=32", "model.light=false",
                                           "train.betas=[0.9, 0.99]", "train.max_steps=1e3"])
    assert cfg.train.lr == 2e-4 and isinstance(cfg.train.lr, float)
    assert cfg.model.ch == 32 and cfg.model.light is False
    assert cfg.train.betas == (0.9, 0.99) and cfg.train.max_steps == 1000


@pytest.mark.parametrize("override, message", [
    ("model.chh=3", "unknown config key model.chh"),
    ("trian.lr=1", "unknown config section 'trian'"),
    ("model.ch=abc", "model.ch must be an integer"),
    ("model.ch=2.5", "model.ch must be an integer"),
    ("model.light=maybe", "model.light must be true or false"),
    ("train.lr=-1", "train.lr must be a finite number > 0"),
    ("train.lr_decay=cosine", "train.lr_decay must be one of linear, none"),
    ("model.n_dis=5", "model.n_dis must be >= 6"),
    ("model.img_size=30", "multiple of 4"),
    ("train.device=gpu", "train.device must be auto, cpu, cuda or cuda:N"),
    ("train.betas=[0.5]", "train.betas must be a list of 2 values"),
    ("model.name=nosuch", "unknown model 'nosuch'"),
    ("noequals", "must look like section.key=value"),
])
def test_bad_values_give_one_line_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        resolve_config("nicegan-light", [override])
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_too_small_images_are_explained() -> None:
    with pytest.raises(ConfigError, match="too small"):
        resolve_config("nicegan-light", ["model.img_size=64"])  # n_dis 7 needs >= 96, like the official code
    resolve_config("nicegan-light", ["model.img_size=96"])
    resolve_config("nicegan-light", ["model.img_size=48", "model.n_dis=6"])
    with pytest.raises(ConfigError, match="too small"):
        resolve_config("nicegan-light", ["model.img_size=44", "model.n_dis=6"])


def test_head_sizes_match_the_official_geometry() -> None:
    cfg = resolve_config("nicegan-light").model
    assert head_sizes(cfg) == (30, 6)  # 256 px: local 30x30, global 6x6 (spec section 2.2)
    cfg.img_size = 128
    assert head_sizes(cfg) == (14, 2)
    assert head_sizes(resolve_config("digits").model) == (6, 2)


def test_yaml_file_with_base_and_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "my.yaml"
    f.write_text("base: nicegan-light\nmodel:\n  ch: 16\ntrain:\n  lr: 3.0e-4\n")
    cfg = resolve_config(str(f))
    assert cfg.model.ch == 16 and cfg.model.n_res == 6 and cfg.train.lr == 3e-4
    again = RunConfig.from_dict(cfg.to_dict())
    assert again == cfg


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no preset or config file"):
        load_config_dict(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config_dict(str(bad))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config_dict(str(scalar))
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(ConfigError, match="too deep"):
        load_config_dict(str(loop))
