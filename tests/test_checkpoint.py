"""The checkpoint format (nicegan.formats.checkpoint): the typed record, migration of older versions, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nicegan.core.errors import CheckpointError
from nicegan.formats import checkpoint as ck
from nicegan.training.loop import Trainer
from tests.conftest import TINY


def _same(x: object, y: object) -> bool:
    """Deep equality of plain containers and tensors (what a checkpoint holds)."""
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and torch.equal(x, y)
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(_same(x[k], y[k]) for k in x)
    if isinstance(x, (list, tuple)):
        return isinstance(y, (list, tuple)) and len(x) == len(y) and all(map(_same, x, y))
    return x == y


def _same_record(a: ck.Checkpoint, b: ck.Checkpoint) -> bool:
    return _same(a.to_payload(), b.to_payload())


def _record(**over: object) -> ck.Checkpoint:
    fields = {"model": "nicegan", "config": {"model": {"name": "nicegan"}}, "step": 3,
              "nets": {"gen_a2b": {"w": torch.arange(4.0)}}, "optimizers": {"gen": {"state": {}, "param_groups": []}},
              "rng": ck.capture_rng(), "extra": {"best": {"a2b": {"fid": 1.5, "step": 2}}}}
    return ck.Checkpoint(**{**fields, **over})


def _sealed(payload: dict) -> dict:
    """``payload`` with its content hash recomputed, as a buggy or hostile writer would leave it."""
    payload = {k: v for k, v in payload.items() if k != ck.HASH_KEY}
    return {**payload, ck.HASH_KEY: ck.content_digest(payload)}


def _unsealed() -> dict:
    return {k: v for k, v in _record().to_payload().items() if k != ck.HASH_KEY}


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    rec = _record()
    path = ck.write(rec, tmp_path / "x.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == ck.FORMAT and raw["format_version"] == ck.FORMAT_VERSION and "path" not in raw
    back = ck.load(path)
    assert back.path == str(path) and back.step == 3 and back.extra == rec.extra
    assert torch.equal(back.nets["gen_a2b"]["w"], rec.nets["gen_a2b"]["w"])
    assert _same_record(back, rec)  # every saved field (the path is not saved)


def test_version_1_files_are_migrated(tmp_path: Path) -> None:
    """Format 1 also wrote ``schedulers`` and ``data`` (never read): they are dropped, everything else kept."""
    v1 = {**_unsealed(), "format_version": 1, "schedulers": {"gen": {"kind": "linear", "step": 3}},
          "data": {"draws_per_domain": 6}}
    torch.save(v1, tmp_path / "v1.pt")
    rec = ck.load(tmp_path / "v1.pt")
    assert _same_record(rec, _record()) and "schedulers" not in rec.to_payload()
    assert ck.MIGRATIONS and max(ck.MIGRATIONS) == ck.FORMAT_VERSION - 1, "one migration per older version"


@pytest.mark.parametrize("field,value,message", [
    ("step", "3", "'step'"), ("step", -1, "'step'"), ("step", True, "'step'"), ("config", "nicegan", "'config'"),
    ("nets", {"gen_a2b": [1, 2]}, "'nets'"), ("nets", {"gen_a2b": {"w": "x"}}, "'nets'"),
    ("optimizers", {"gen": 3}, "'optimizers'"), ("rng", [], "'rng'"), ("model", 7, "'model'"),
    ("rng_per_rank", {}, "'rng_per_rank'")])
def test_a_field_of_the_wrong_type_is_refused_in_one_line(tmp_path: Path, field: str, value: object,
                                                           message: str) -> None:
    payload = _sealed({**_record().to_payload(), field: value})
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=message) as e:
        ck.load(tmp_path / "bad.pt")
    assert "\n" not in str(e.value) and "bad.pt" in str(e.value)


def test_missing_entries_and_bad_versions(tmp_path: Path) -> None:
    payload = _unsealed()
    del payload["nets"]
    torch.save(_sealed(payload), tmp_path / "incomplete.pt")
    with pytest.raises(CheckpointError, match="no 'nets' entry"):
        ck.load(tmp_path / "incomplete.pt")
    for version in (0, "2", None):
        torch.save({**_record().to_payload(), "format_version": version}, tmp_path / "v.pt")
        with pytest.raises(CheckpointError, match="checkpoint format"):
            ck.load(tmp_path / "v.pt")


def test_nets_that_do_not_fit_are_a_checkpoint_error() -> None:
    nets = torch.nn.ModuleDict({"gen": torch.nn.Linear(2, 2)})
    with pytest.raises(CheckpointError, match="does not fit the toy model"):
        ck.load_nets(nets, {"gen": {"weight": torch.zeros(3, 3), "bias": torch.zeros(2)}}, model="toy")
    with pytest.raises(CheckpointError, match="no weights for 'gen'"):
        ck.load_nets(nets, {}, model="toy")


def test_damaged_rng_state_is_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="random-generator state"):
        ck.restore_rng({"torch": "not a state"}, "x.pt")


def test_trainer_state_dict_round_trip(tiny_data: Path, tmp_path: Path) -> None:
    """Trainer.state_dict() is the record that is saved; load_state_dict() restores it into a fresh trainer."""
    from nicegan.configs.schema import resolve_config

    cfg = resolve_config("nicegan-light", TINY + [f"data.root={tiny_data}", "train.max_steps=2",
                                                  "train.sample_every=0", "data.num_workers=0"])
    first = Trainer(cfg, tmp_path / "a", progress=False, tensorboard=False)
    first.run()
    rec = first.state_dict()
    assert rec.step == 2 and rec.model == "nicegan" and rec.config == cfg.to_dict()
    ck.write(rec, tmp_path / "state.pt")
    second = Trainer(cfg, tmp_path / "b", ck.load(tmp_path / "state.pt"), progress=False, tensorboard=False)
    again = second.state_dict()
    assert again.step == 2
    for net, sd in rec.nets.items():
        for k, v in sd.items():
            assert torch.equal(v, again.nets[net][k]), f"{net}.{k}"
    assert torch.equal(again.rng["torch"], rec.rng["torch"])
