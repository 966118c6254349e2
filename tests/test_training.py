"""Training mechanics: exact resume, checkpoints (atomic, pruned, safe), the NaN guard, the LR schedule."""

from __future__ import annotations

import errno
import pickle
from pathlib import Path

import pytest
import torch

from nicegan.configs.schema import TrainConfig, resolve_config
from nicegan.core.errors import CheckpointError, ConfigError, NiceganError, TrainingDiverged
from nicegan.formats import checkpoint as ck
from nicegan.models.nicegan import NiceGAN
from nicegan.training.optim import lr_factor
from nicegan.training.runs import resume_run, start_run
from tests.conftest import TINY


def tiny_cfg(data: Path, *extra: str):
    return resolve_config("nicegan-light", TINY + [f"data.root={data}", *extra])


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.step == b.step
    for net in a.nets:
        for k, v in a.nets[net].items():
            assert torch.equal(v, b.nets[net][k]), f"{net}.{k}"
    for phase in a.optimizers:
        sa, sb = a.optimizers[phase]["state"], b.optimizers[phase]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            for k in sa[i]:
                assert torch.equal(torch.as_tensor(sa[i][k]), torch.as_tensor(sb[i][k])), (phase, i, k)


def test_four_steps_equal_two_plus_resume_plus_two(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(tiny_data, "train.max_steps=4", "train.sample_every=0")
    straight = start_run(cfg, tmp_path / "straight", progress=False, tensorboard=False)
    assert straight.step == 4
    first = start_run(cfg, tmp_path / "split", progress=False, tensorboard=False, stop_at=2)
    assert first.step == 2 and first.interrupted
    second = resume_run(tmp_path / "split", progress=False, tensorboard=False)
    assert second.step == 4 and not second.interrupted
    a = ck.load(tmp_path / "straight")
    b = ck.load(tmp_path / "split")
    _assert_same_state(a, b)
    assert a.optimizers["gen"]["param_groups"][0]["lr"] == 0.0, "linear decay reaches 0 at the last step"


def test_resume_refuses_to_restart_and_start_refuses_existing_run(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(tiny_data, "train.max_steps=2", "train.sample_every=0")
    start_run(cfg, tmp_path / "r", progress=False, tensorboard=False)
    before = (tmp_path / "r" / "checkpoints" / "latest.pt").read_bytes()
    with pytest.raises(NiceganError, match="already holds a run"):
        start_run(cfg, tmp_path / "r", progress=False, tensorboard=False)
    assert (tmp_path / "r" / "checkpoints" / "latest.pt").read_bytes() == before
    done = resume_run(tmp_path / "r", progress=False, tensorboard=False)
    assert done.step == 2 and not done.logs, "nothing to do at max_steps"
    with pytest.raises(NiceganError, match="no checkpoint to resume"):
        (tmp_path / "empty").mkdir()
        resume_run(tmp_path / "empty")
    with pytest.raises(NiceganError, match="run folder not found"):
        resume_run(tmp_path / "missing")


def test_run_folder_contents(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(tiny_data, "train.max_steps=4")
    start_run(cfg, tmp_path / "r", progress=False, tensorboard=False)
    run = tmp_path / "r"
    assert (run / "config.yaml").is_file()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.pt", "step_0000002.pt",
                                                                         "step_0000004.pt"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == [
        "a2b_0000002.png", "a2b_0000004.png", "b2a_0000002.png", "b2a_0000004.png"]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    import json

    recs = [json.loads(x) for x in lines]
    assert recs[0]["event"] == "start" and [r["step"] for r in recs if r["event"] == "train"] == [1, 2, 3, 4]
    assert {"dis/total", "gen/total", "gen/cycle_a", "lr", "sec_per_step"} <= set(recs[-1])


def test_keep_last_prunes_numbered_checkpoints(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(tiny_data, "train.max_steps=6", "train.ckpt_every=1", "train.keep_last=2", "train.sample_every=0")
    start_run(cfg, tmp_path / "r", progress=False, tensorboard=False)
    names = [p.name for p in ck.numbered_checkpoints(tmp_path / "r")]
    assert names == ["step_0000005.pt", "step_0000006.pt"]
    assert ck.load(tmp_path / "r" / "checkpoints" / "step_0000005.pt").step == 5


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(
        tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = NiceGAN.gen_loss

    def poisoned(self, batch):
        loss, terms = original(self, batch)
        calls["n"] += 1
        if calls["n"] == 3:
            terms["cycle_a"] = torch.tensor(float("nan"))
            loss = loss * float("nan")
        return loss, terms

    monkeypatch.setattr(NiceGAN, "gen_loss", poisoned)
    cfg = tiny_cfg(tiny_data, "train.max_steps=10", "train.sample_every=0")
    with pytest.raises(TrainingDiverged) as e:
        start_run(cfg, tmp_path / "r", progress=False, tensorboard=False)
    msg = str(e.value)
    assert "step 3" in msg and "gen/cycle_a" in msg and "latest.pt" in msg and "\n" not in msg
    kept = ck.load(tmp_path / "r")
    assert kept.step == 2
    assert all(torch.isfinite(v).all() for sd in kept.nets.values() for v in sd.values())


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "latest.pt"
    ck.atomic_save({"v": torch.ones(3)}, target)

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(ck.CheckpointWriteError, match="no space left on the device.*latest.pt is intact"):
        ck.atomic_save({"v": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["v"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"], "no temporary file left behind"


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_unsafe_corrupt_and_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "payload": _Evil()}, evil)
    with pytest.raises(CheckpointError, match="unsafe"):
        ck.load(evil)
    plain_pickle = tmp_path / "plain.pt"
    plain_pickle.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match="refusing to load"):
        ck.load(plain_pickle)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        ck.load(garbage)
    good = tmp_path / "good.pt"
    torch.save({"format": ck.FORMAT, "format_version": 1, "model": "nicegan", "config": {}, "step": 0,
                "nets": {}}, good)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        ck.load(truncated)
    official = tmp_path / "official.pt"
    torch.save({"gen2B": {}, "gen2A": {}, "disA": {}, "disB": {}, "start_iter": 3}, official)
    with pytest.raises(CheckpointError, match="import-official"):
        ck.load(official)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="not a nicegan checkpoint"):
        ck.load(other)
    future = tmp_path / "future.pt"
    torch.save({"format": ck.FORMAT, "format_version": 99, "model": "nicegan", "config": {}, "step": 0, "nets": {}},
               future)
    with pytest.raises(CheckpointError, match="upgrade nicegan"):
        ck.load(future)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        ck.load(tmp_path / "nope.pt")


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    state = ck.capture_rng()
    a = (torch.rand(3), np.random.rand(3), random.random())
    ck.restore_rng(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_lr_schedule_is_official_linear_decay() -> None:
    t = TrainConfig(max_steps=100_000)
    assert lr_factor(50_000, t) == 1.0
    assert lr_factor(50_001, t) == pytest.approx(1 - 1 / 50_000)
    assert lr_factor(75_000, t) == pytest.approx(0.5)
    assert lr_factor(100_000, t) == 0.0
    odd = TrainConfig(max_steps=7)  # the official code would end at a negative LR here
    assert [lr_factor(s, odd) for s in range(1, 8)][-1] == 0.0
    assert min(lr_factor(s, odd) for s in range(1, 8)) >= 0
    assert lr_factor(99_999, TrainConfig(max_steps=100_000, lr_decay="none")) == 1.0


def test_step_lr_schedule_is_munits_steplr() -> None:
    """MUNIT steps torch's StepLR before each iteration; our pure function of the step gives the same rates."""
    t = TrainConfig(max_steps=1000, lr=1e-4, lr_decay="step", decay_every=100, decay_gamma=0.5)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=t.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=100, gamma=0.5)
    for step in range(1, 1001):
        opt.step()  # (no gradients: nothing moves) torch warns when a scheduler steps before any optimizer step
        sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(t.lr * lr_factor(step, t), rel=1e-12), step
    with pytest.raises(ConfigError, match="decay_every"):
        TrainConfig(lr_decay="step").validate()


def test_sample_grid_columns_are_spread_over_the_sources() -> None:
    import numpy as np

    from nicegan.data.sources import ArraySource
    from nicegan.training.loop import fixed_sample_batch

    # Image i is filled with the value i: the picked columns can be read back from the pixels.
    train = ArraySource(np.repeat(np.arange(10, dtype=np.uint8), 64).reshape(10, 8, 8) * 20)
    test = ArraySource(np.array([[[7] * 8] * 8], dtype=np.uint8))
    batch = fixed_sample_batch(train, test, size=8, n=4)
    values = ((batch[:, 0, 0, 0] + 1) / 2 * 255).round().int().tolist()
    assert values == [0, 60, 120, 180, 7]  # training images 0, 3, 6, 9 (first to last), the single test image
