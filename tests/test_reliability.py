"""Fault injection: hostile images, crafted checkpoints, hostile configs, write faults, kills and odd paths.

Every mistake a user (or the machine) can cause must end in one line ``nicegan: error: ...`` with exit status 2
(or a warning per skipped file and a summary), never a traceback, never a hang (each call runs under an alarm),
never a lost or silently damaged checkpoint. The image corpus comes from :mod:`tests.hostile`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nicegan.cli import main
from nicegan.formats import checkpoint as ck
from tests.conftest import REPO, TINY, write_images
from tests.hostile import deadline, make_image_corpus
from tests.test_checkpoint import _sealed

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def cli(args: list[str], capsys: pytest.CaptureFixture, seconds: int = 120) -> tuple[int, str, str]:
    with deadline(seconds):
        code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "Traceback" not in out.out, out.err[-3000:]
    return code, out.out, out.err


def refused(args: list[str], capsys: pytest.CaptureFixture, *words: str, seconds: int = 120) -> str:
    """Run a command that must fail: exit 2 and exactly one ``nicegan: error:`` line (containing ``words``)."""
    code, _, err = cli(args, capsys, seconds)
    errors = [line for line in err.splitlines() if line.startswith("nicegan: error:")]
    assert code == 2 and len(errors) == 1, err[-2000:]
    for w in words:
        assert w in errors[0], errors[0]
    assert len(errors[0]) < 2100
    return errors[0]


def skipped_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning: skipping ")]


# --- a tiny trained run shared by the module ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("rel") / "run"
    assert main(["-q", "train", "--data", str(tiny_data), "--run-dir", str(r), "--max-steps", "2", "--no-progress",
                 "--set", *TINY, "train.sample_every=0"]) == 0
    return r


@pytest.fixture(scope="module")
def corpus_data(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A dataset whose trainA and testA hold the whole hostile corpus (B stays clean)."""
    root = tmp_path_factory.mktemp("hostile_ds")
    kinds = {}
    for split in ("trainA", "testA"):
        kinds = make_image_corpus(root / split)
    for split in ("trainB", "testB"):
        write_images(root / split, 6, seed=3, size=(40, 40))
    return root, kinds


FOLDER_KINDS = ("directory", "symlink_to_dir")  # folders named like images are walked (empty here), not skipped


def _unusable(kinds: dict) -> int:
    """Entries that must each be reported as skipped (links to good images count as images)."""
    return sum(not k.usable and k.name not in FOLDER_KINDS for k in kinds.values())


# --- 1. hostile images through every command that reads images --------------------------------------------------


@pytest.mark.slow
def test_hostile_corpus_through_every_image_command(corpus_data: tuple[Path, dict], run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    root, kinds = corpus_data
    n_bad, n_good = _unusable(kinds), sum(k.usable for k in kinds.values())
    folder = root / "trainA"

    # training, with an evaluation step reading testA (the probe's dying resume loop)
    code, _, err = cli(["train", "--data", root, "--run-dir", tmp_path / "r", "--max-steps", "1", "--no-progress",
                        "--set", *TINY, "train.sample_every=0", "train.eval_every=1", "train.eval_limit=4"], capsys,
                       seconds=300)
    assert code == 0, err[-2000:]
    assert len(skipped_lines(err)) == 2 * n_bad, "one warning per unusable file, in trainA and in testA"
    n_entries = len(kinds) - len(FOLDER_KINDS)
    assert f"skipped {n_bad} of {n_entries} files in {folder}" in err

    # translate a folder (with heatmaps: the 250-character name), then each non-regular entry on its own
    out = tmp_path / "out"
    code, _, err = cli(["translate", "--checkpoint", run, "--input", folder, "--output", out, "--direction", "a2b",
                        "--heatmap", "--no-progress", "--keep-size"], capsys)
    assert code == 0, err[-2000:]
    assert f"translated {n_good} image(s)" in err and len(list(out.iterdir())) == 2 * n_good  # with heatmaps
    assert all(len(os.fsencode(p.name)) <= 255 for p in out.iterdir())
    assert len(skipped_lines(err)) == n_bad and f"skipped {n_bad} of {n_entries} files" in err
    for name in ("fifo.png", "loop1.png", "dangling.png"):
        refused(["translate", "--checkpoint", run, "--input", folder / name, "--output", tmp_path / "o1",
                 "--direction", "a2b"], capsys, "cannot read the input" if name != "dangling.png" else "")

    # FID/KID with the real-image cache on: odd names are part of the folder's signature
    code, stdout, err = cli(["eval-folders", folder, root / "testB", "--json", "--no-progress"], capsys, seconds=300)
    assert code == 0, err[-2000:]
    assert json.loads(stdout)["skipped_real"] == n_bad
    code, _, err = cli(["evaluate", "--checkpoint", run, "--data", root, "--limit", "4", "--json", "--no-progress"],
                       capsys, seconds=300)
    assert code == 0, err[-2000:]

    # the analyses
    code, _, err = cli(["heatmaps", "--checkpoint", run, "--input", folder, "-n", "100", "--output",
                        tmp_path / "h.png"], capsys)
    assert code == 0 and (tmp_path / "h.png").is_file(), err[-2000:]
    code, _, err = cli(["latents", "--checkpoint", run, "--data", root, "-n", "6", "--output", tmp_path / "t.png"],
                       capsys, seconds=300)
    assert code == 0, err[-2000:]
    refused(["interpolate", "--checkpoint", run, folder / "fifo.png", folder / "rgb_png.png", "--output",
             tmp_path / "i.png"], capsys, "named pipe")


def test_odd_entries_are_named_for_what_they_are(tmp_path: Path, run: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    refused(["translate", "--checkpoint", run, "--input", tmp_path / "loop", "--output", tmp_path / "o",
             "--direction", "a2b"], capsys, "symbolic link loop")
    refused(["translate", "--checkpoint", run, "--input", "/dev/urandom", "--output", tmp_path / "o",
             "--direction", "a2b"], capsys, "a device")
    refused(["translate", "--checkpoint", "/dev/urandom", "--input", tmp_path, "--output", tmp_path / "o",
             "--direction", "a2b"], capsys, "a device")
    os.mkfifo(tmp_path / "pipe.pt")
    refused(["translate", "--checkpoint", tmp_path / "pipe.pt", "--input", tmp_path, "--output", tmp_path / "o",
             "--direction", "a2b"], capsys, "named pipe", seconds=20)
    os.mkfifo(tmp_path / "pipe.yaml")
    refused(["train", "--config", tmp_path / "pipe.yaml", "--dry-run"], capsys, "named pipe", seconds=20)


# --- 2. crafted checkpoints -----------------------------------------------------------------------------------------


class _Marker:
    """Unpickling this would run code that creates a file: it must never happen."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def crafted_checkpoints(good: Path, folder: Path, marker: Path) -> dict[str, Path]:
    """Damaged, foreign and hostile variants of a good checkpoint, each a file in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    raw = torch.load(good, weights_only=True)
    data = good.read_bytes()
    out: dict[str, Path] = {}

    def put(name: str, payload: object) -> None:
        torch.save(payload, folder / f"{name}.pt")
        out[name] = folder / f"{name}.pt"

    def put_bytes(name: str, blob: bytes) -> None:
        (folder / f"{name}.pt").write_bytes(blob)
        out[name] = folder / f"{name}.pt"

    wrong = {"model": 7, "config": "nicegan", "step": "3", "nets": {"gen_a2b": [1, 2]}, "optimizers": {"gen": 3},
             "rng": [], "rng_per_rank": {}, "extra": 5, "model_extra": "x", "scalers": [1]}
    for field, value in wrong.items():
        put(f"sealed_{field}", _sealed({**raw, field: value}))  # the hash is right, the field is not
        put(f"unsealed_{field}", {**raw, field: value})  # the hash no longer matches
    put("nets_of_nothing", _sealed({**raw, "nets": {}}))
    other = {**raw["config"], "model": {"name": "cyclegan"}}
    put("other_model", _sealed({**raw, "model": "cyclegan", "config": other}))
    put("huge_ch", _sealed({**raw, "config": {**raw["config"], "model": {**raw["config"]["model"], "ch": 10**9}}}))
    put("config_bomb", {**raw, "config": {**raw["config"], "model": {**raw["config"]["model"],
                                                                       "ch": _shared_bomb()}}})
    put("rng_wrong", _sealed({**raw, "rng": {"torch": "not a state", "numpy": 1, "python": None}}))
    put("future", _sealed({**raw, "format_version": 99}))
    put("no_hash", {k: v for k, v in raw.items() if k != ck.HASH_KEY})
    put("official_odd", {"gen2B": {"x": torch.zeros(1)}, "gen2A": {}, "disA": {"model.1.weight_orig": torch.zeros(0)},
                         "disB": {}, "start_iter": "x"})
    official = {"gen2B": {"FC.0.weight": torch.zeros(4, 0)}, "gen2A": {},
                "disA": {"model.1.weight_orig": torch.zeros(0, 3, 4, 4), "conv1.weight_orig": torch.zeros(1, 0, 1, 1)},
                "disB": {}}
    put("official_zero_width", official)
    put("official_not_dicts", {"gen2B": [1], "gen2A": "x", "disA": 3, "disB": None})
    put("unsafe_zip", {"a": _Marker(marker)})
    put_bytes("unsafe_pickle", pickle.dumps(_Marker(marker)))
    put_bytes("truncated", data[: len(data) // 2])
    put_bytes("empty", b"")
    put_bytes("text", b"hello, this is not a checkpoint\n")
    rnd = random.Random(0)
    flipped = bytearray(data)
    for i in rnd.sample(range(len(flipped) // 4, len(flipped) - 1000), 2000):  # inside the archive's tensors
        flipped[i] ^= 0xFF
    put_bytes("bit_flipped", bytes(flipped))
    os.mkfifo(folder / "fifo.pt")
    out["fifo"] = folder / "fifo.pt"
    (folder / "dir.pt").mkdir()
    out["dir"] = folder / "dir.pt"
    return out


def _shared_bomb(levels: int = 9) -> list:
    """Nested lists sharing their children (what YAML anchors or pickle memo references build): 9**9 leaves."""
    node: list = ["lol"] * 9
    for _ in range(levels - 1):
        node = [node] * 9
    return node


_EXPECTED_REASON = {  # what `translate` must say for each variant (keyed by the name's first word)
    "sealed": ("is damaged or not a nicegan checkpoint", "cannot be used", "does not fit"),
    "unsealed": ("does not match its hash",), "nets": ("has no weights",),
    "other": ("does not fit", "cannot use", "far larger than the"),
    "huge": ("reduce model.ch",), "config": ("is too large once", "over 1,000,000 entries"),
    "rng": ("random-generator state is damaged",), "future": ("upgrade nicegan",), "no": ("no content hash",),
    "official": ("not a nicegan checkpoint", "import-official"), "unsafe": ("refusing to load",),
    "truncated": ("not a readable checkpoint",), "empty": ("empty file",), "text": ("not a PyTorch checkpoint",),
    "bit": ("not a readable checkpoint", "does not match its hash"), "fifo": ("named pipe",),
    "dir": ("no checkpoint in",)}


@pytest.mark.slow
def test_crafted_checkpoints_are_refused_by_every_command(run: Path, tiny_data: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    marker = tmp_path / "PWNED"
    variants = crafted_checkpoints(run / "checkpoints" / "latest.pt", tmp_path / "bad", marker)
    img = next((tiny_data / "testA").glob("*.png"))
    commands = {
        "translate": lambda c: ["translate", "--checkpoint", c, "--input", img, "--output", tmp_path / "o",
                                "--direction", "a2b"],
        "heatmaps": lambda c: ["heatmaps", "--checkpoint", c, "--input", img, "--output", tmp_path / "h.png"],
        "interpolate": lambda c: ["interpolate", "--checkpoint", c, img, img, "--output", tmp_path / "i.png"],
        "latents": lambda c: ["latents", "--checkpoint", c, "--data", tiny_data, "--output", tmp_path / "l.png"],
        "evaluate": lambda c: ["evaluate", "--checkpoint", c, "--data", tiny_data],
        "import-official": lambda c: ["import-official", c, "--out", tmp_path / "conv.pt"],
    }
    tried = 0
    for name, path in variants.items():
        for command, args in commands.items():
            if name in ("no_hash",) and command != "import-official":
                continue
            line = refused(args(path), capsys, seconds=30)
            if command == "translate":
                assert any(word in line for word in _EXPECTED_REASON[name.split("_")[0]]), (name, line)
            tried += 1
        # resume: the crafted file as a run's only checkpoint
        run_dir = tmp_path / "runs" / name
        (run_dir / "checkpoints").mkdir(parents=True)
        if path.is_file():
            (run_dir / "checkpoints" / "latest.pt").write_bytes(path.read_bytes())
            refused(["resume", run_dir, "--max-steps", "3", "--no-progress"], capsys, seconds=30)
            tried += 1
    assert not marker.exists(), "a crafted pickle ran code"
    for name in ("unsafe_zip", "unsafe_pickle"):
        assert "refusing to load" in refused(commands["translate"](variants[name]), capsys)
    assert tried == 259, tried  # 38 variants x 6 commands (no_hash: import-official only), resume of 36 files
    assert (run / "checkpoints" / "latest.pt").is_file()


def test_a_checkpoint_without_hash_of_the_current_format_is_damaged(run: Path, tmp_path: Path) -> None:
    raw = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    torch.save({k: v for k, v in raw.items() if k != ck.HASH_KEY}, tmp_path / "x.pt")
    with pytest.raises(ck.CheckpointError, match="no content hash"):
        ck.load(tmp_path / "x.pt")
    raw["nets"]["gen_a2b"][next(iter(raw["nets"]["gen_a2b"]))].view(-1)[0] += 1  # one weight changed
    torch.save(raw, tmp_path / "y.pt")
    with pytest.raises(ck.CheckpointError, match="does not match its hash"):
        ck.load(tmp_path / "y.pt")


def test_one_flipped_byte_in_a_weight_on_disk_is_caught(run: Path, tmp_path: Path) -> None:
    raw = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    weight = max((t for sd in raw["nets"].values() for t in sd.values()), key=lambda t: t.numel())
    blob = bytearray((run / "checkpoints" / "latest.pt").read_bytes())
    at = bytes(blob).find(weight.contiguous().numpy().tobytes()[:64])
    assert at > 0, "the weight's bytes are stored uncompressed in the archive"
    blob[at + 1] ^= 0x10  # one bit of one float: torch.load does not notice
    (tmp_path / "flipped.pt").write_bytes(bytes(blob))
    torch.load(tmp_path / "flipped.pt", weights_only=True)
    with pytest.raises(ck.CheckpointDamaged, match="does not match its hash"):
        ck.load(tmp_path / "flipped.pt")


def test_a_foreign_latest_does_not_roll_the_run_back(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import shutil

    r = tmp_path / "r"
    shutil.copytree(run, r)
    torch.save({"gen2B": {}, "gen2A": {}, "disA": {}, "disB": {}}, r / "checkpoints" / "latest.pt")
    refused(["resume", r, "--max-steps", "3"], capsys, "official NICE-GAN checkpoint")


def test_damaged_latest_falls_back_to_the_newest_intact_numbered(tiny_data: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    r = tmp_path / "r"
    assert main(["-q", "train", "--data", str(tiny_data), "--run-dir", str(r), "--max-steps", "6", "--stop-at", "4",
                 "--no-progress", "--set", *TINY, "train.sample_every=0", "train.keep_last=0"]) == 0
    latest = r / "checkpoints" / "latest.pt"
    # latest.pt and step_0000004.pt are hard links to one file: damage it in place, both are hit
    blob = bytearray(latest.read_bytes())
    for i in random.Random(1).sample(range(len(blob) // 4, len(blob) - 1000), 2000):
        blob[i] ^= 0xFF
    with open(latest, "r+b") as fh:
        fh.write(blob)
    code, _, err = cli(["resume", r, "--no-progress"], capsys)
    assert code == 0, err
    assert "step_0000002.pt" in err and "latest.pt" in err and "newest intact" in err
    assert ck.load(r).step == 6


# --- 3. kills: always resumable, bit-exact, no temporary files after the next start --------------------------------

_SLOW_SAVE = """
import os, sys, time, io, torch
real_save = torch.save
def slow_save(obj, f, *a, **k):
    if not hasattr(f, "write"):
        return real_save(obj, f, *a, **k)
    buf = io.BytesIO()
    real_save(obj, buf, *a, **k)
    data = buf.getvalue()
    open(os.environ["SAVE_MARK"], "a").write("s")
    step = max(1, len(data) // 20)
    for i in range(0, len(data), step):
        f.write(data[i:i + step]); f.flush(); time.sleep(0.02)
torch.save = slow_save
from nicegan.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_kill_9_at_random_moments_including_inside_the_save(tiny_data: Path, tmp_path: Path) -> None:
    from nicegan.core.files import stale_temp_files

    steps = 8
    args = ["--set", *TINY, "train.sample_every=0", "train.ckpt_every=1", "train.keep_last=0", "data.num_workers=0"]
    straight = tmp_path / "straight"
    assert main(["-q", "train", "--data", str(tiny_data), "--run-dir", str(straight), "--max-steps", str(steps),
                 "--no-progress", *args]) == 0
    env = {**os.environ, "SAVE_MARK": str(tmp_path / "mark"), "PYTHONPATH": str(REPO)}
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_SAVE)
    r = tmp_path / "killed"
    rnd = random.Random(7)
    kills = inside = 0
    for attempt in range(5):
        (tmp_path / "mark").write_text("")
        cmd = ([sys.executable, str(script), "-q", "resume", str(r), "--no-progress"] if ck.latest_checkpoint(r) else
               [sys.executable, str(script), "-q", "train", "--data", str(tiny_data), "--run-dir", str(r),
                "--max-steps", str(steps), "--no-progress", *args])
        with open(tmp_path / f"stderr{attempt}", "w") as err:
            p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
            # wait for a save to start, then kill inside it (even attempts) or a little later (odd ones)
            t0 = time.time()
            while not (tmp_path / "mark").read_text() and p.poll() is None and time.time() - t0 < 120:
                time.sleep(0.005)
            if p.poll() is not None:
                break
            time.sleep(rnd.uniform(0.05, 0.3) if attempt % 2 == 0 else rnd.uniform(0.4, 0.9))
            in_save = bool(list((r / "checkpoints").glob(".*.tmp*")))
            p.send_signal(signal.SIGKILL)
            p.wait()
        kills += 1
        inside += in_save
        if ck.latest_checkpoint(r) is not None:
            ck.load(r)  # whatever the moment, the run folder holds an intact checkpoint
    assert kills == 5 and inside >= 2, (kills, inside)
    leftovers = stale_temp_files(r / "checkpoints")
    res = subprocess.run([sys.executable, "-m", "nicegan", "-q", "resume", str(r), "--no-progress"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert not stale_temp_files(r / "checkpoints") and not list((r / "checkpoints").glob(".*.tmp*")), leftovers
    a, b = ck.load(straight), ck.load(r)
    assert a.step == b.step == steps
    for net in a.nets:
        for k, v in a.nets[net].items():
            assert torch.equal(v, b.nets[net][k]), f"{net}.{k} differs after {kills} kills"


def test_stale_temp_files_of_dead_writers_are_removed_and_live_ones_kept(run: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    import shutil

    r = tmp_path / "r"
    shutil.copytree(run, r)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = r / "checkpoints" / f".latest.pt.tmp{dead.pid}"
    stale.write_bytes(b"partial")
    live = r / "checkpoints" / f".step_0000003.pt.tmp{os.getppid()}"
    live.write_bytes(b"being written")
    code, _, err = cli(["resume", r, "--max-steps", "3", "--no-progress"], capsys)
    assert code == 0, err
    assert not stale.exists() and live.exists() and "interrupted save" in err


# --- 4. write faults -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only for this process: a read-only bind mount as root, permissions otherwise."""
    if IS_ROOT:
        try:
            subprocess.run(["mount", "--bind", str(folder), str(folder)], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as e:
            pytest.skip(f"root without mount permission: cannot make a read-only folder ({e})")
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True, capture_output=True)
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=False, capture_output=True)
    else:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)


@contextlib.contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    if not IS_ROOT:
        pytest.skip("a full disk needs a small tmpfs, which needs root: skipped (run the suite as root in CI)")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a small tmpfs here ({e}): the full-disk test needs it")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, capture_output=True)


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    st = os.statvfs(folder)
    free = st.f_bavail * st.f_frsize
    n = len(list(folder.glob("filler*")))
    with contextlib.suppress(OSError), open(folder / f"filler{n}", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


def test_read_only_run_folders_fail_before_training(tiny_data: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    r = tmp_path / "r"
    (r / "checkpoints").mkdir(parents=True)
    with read_only(r / "checkpoints"):
        refused(["train", "--data", tiny_data, "--run-dir", r, "--max-steps", "2", "--no-progress", "--set", *TINY],
                capsys, "cannot write the checkpoint folder")
    refused(["train", "--data", tiny_data, "--run-dir", "/proc/nicegan-run", "--max-steps", "1", "--set", *TINY],
            capsys, "/proc/nicegan-run")


def test_read_only_outputs(run: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.test_official import _fake_official_file

    official, _, _ = _fake_official_file(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with read_only(out):
        refused(["translate", "--checkpoint", run, "--input", tiny_data / "testA", "--output", out,
                 "--direction", "a2b"], capsys, "cannot write the output folder")
        refused(["import-official", official, "--out", out / "x.pt"], capsys, "cannot write the output folder")
        refused(["import-official", official, "--out", out / "run"], capsys, "cannot write the output folder")
    assert main(["-q", "import-official", str(official), "--out", str(out / "x.pt")]) == 0, "the file itself is fine"


def test_malformed_official_optimizer_state_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.test_official import _fake_official_file

    official, _, _ = _fake_official_file(tmp_path)
    raw = torch.load(official, weights_only=True)
    bad = {
        "params_lists": {**raw, "G_optimizer": {**raw["G_optimizer"], "param_groups": [
            {**raw["G_optimizer"]["param_groups"][0], "params": [[0]] * len(raw["G_optimizer"]["state"])}]}},
        "moment_string": {**raw, "G_optimizer": {**raw["G_optimizer"], "state": {
            k: {**v, "exp_avg": "x"} for k, v in raw["G_optimizer"]["state"].items()}}},
        "moment_shape": {**raw, "D_optimizer": {**raw["D_optimizer"], "state": {
            k: {**v, "exp_avg": torch.zeros(7)} for k, v in raw["D_optimizer"]["state"].items()}}},
        "start_iter": {**raw, "start_iter": "soon"},
    }
    for name, payload in bad.items():
        torch.save(payload, tmp_path / f"{name}.pt")
        refused(["import-official", tmp_path / f"{name}.pt", "--out", tmp_path / f"{name}_out.pt"], capsys,
                str(tmp_path / f"{name}.pt"))
        assert not (tmp_path / f"{name}_out.pt").exists()


def test_optimizer_state_of_the_wrong_shape_is_refused_on_resume(run: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    import shutil

    r = tmp_path / "r"
    shutil.copytree(run, r, ignore=shutil.ignore_patterns("step_*"))
    raw = torch.load(r / "checkpoints" / "latest.pt", weights_only=True)
    state = raw["optimizers"]["gen"]["state"]
    state[next(iter(state))]["exp_avg"] = torch.zeros(7)
    torch.save(_sealed(raw), r / "checkpoints" / "latest.pt")  # a buggy writer: the hash is right
    refused(["resume", r, "--max-steps", "3", "--no-progress"], capsys, "exp_avg has shape (7,)")


@pytest.mark.slow
def test_evaluate_prints_its_result_even_when_the_log_cannot_be_written(run: Path, tiny_data: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    import shutil

    r = tmp_path / "r"
    shutil.copytree(run, r)
    with read_only(r):
        code, out, err = cli(["evaluate", "--checkpoint", r, "--data", tiny_data, "--json", "--no-progress"], capsys,
                             seconds=300)
    assert code == 0, err
    assert "fid" in json.loads(out)["results"]["a2b"]
    assert "was not added to" in err


def test_full_disk_at_a_save_keeps_the_last_checkpoint(run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture) -> None:
    import shutil

    size = (run / "checkpoints" / "latest.pt").stat().st_size
    with small_disk(tmp_path / "disk", "16m") as disk:
        r = disk / "r"
        shutil.copytree(run, r, ignore=shutil.ignore_patterns("tb", "step_*"))
        before = ck.load(r).step
        _fill(disk, leave=size // 2)  # the write probe passes, the checkpoint does not fit
        refused(["resume", r, "--max-steps", "3", "--no-progress"], capsys, "no space left", "intact")
        assert ck.load(r).step == before
        assert not list((r / "checkpoints").glob(".*.tmp*"))
        _fill(disk, leave=0)
        refused(["resume", r, "--max-steps", "3", "--no-progress"], capsys, "no space left")
        assert ck.load(r).step == before


# --- 5. hostile configs and values ---------------------------------------------------------------------------------


def _alias_bomb(levels: int = 9) -> str:
    lines = ["x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + f"\nmodel:\n  ch: *x{levels}\n"


@pytest.mark.parametrize("text, words", [
    (_alias_bomb(), ["too large once its YAML aliases are expanded"]),
    ("model:\n  ch: !!python/object/apply:os.system ['touch PWNED']\n", ["not valid YAML"]),
    ("model:\n  ch: 1000000000\n", ["reduce model.ch"]),
    ("model:\n  ch: 3000\n", ["parameters", "GiB"]),
    ("train:\n  weight_decay: .nan\n", ["train.weight_decay must be a finite number"]),
    ("train:\n  lr: .inf\n", ["train.lr must be a finite number"]),
    ("model:\n  cycle_weight: -10\n", ["loss weight"]),
    ("model:\n  adv_weight: .nan\n", ["finite"]),
    ("model:\n  img_ch: 1\n", ["model.img_ch must be 3 for the nicegan model"]),
    ("model:\n  img_ch: 4\n", ["model.img_ch must be 3 for the nicegan model"]),
    ("train:\n  seed: 99999999999999999999\n", ["at most"]),
    ("model:\n  ch: 1000000000000000000000000\n", ["model.ch must be at most"]),
    ("model:\n  img_size: 100000\n", ["model.img_size must be at most 4096"]),
    ("model:\n  ch: " + "[" * 200 + "]" * 200 + "\n", []),
    ("x: " + "a" * (2 << 20) + "\n", ["characters long"]),
])
def test_hostile_configs_end_in_one_bounded_line(text: str, words: list[str], tmp_path: Path, tiny_data: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    t0 = time.perf_counter()
    refused(["train", "--config", path, "--data", tiny_data, "--run-dir", tmp_path / "r", "--max-steps", "1"],
            capsys, *words, seconds=60)
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "r").exists(), "a refused run leaves no folder"
    assert not Path("PWNED").exists()


def test_translation_memory_is_estimated_before_translating() -> None:
    from nicegan.configs.schema import resolve_config
    from nicegan.core.errors import NiceganError
    from nicegan.inference import check_translation_memory
    from nicegan.models import get_model_class

    cfg = resolve_config("nicegan-light")
    with torch.device("meta"):  # the weights' shapes are all the estimate needs
        model = get_model_class("nicegan")(cfg.model)
    check_translation_memory(model, 256, 8)
    with pytest.raises(NiceganError, match=r"needs about [\d,.]+ GiB of memory"):
        check_translation_memory(model, 12000, 8)


def test_values_refused_up_front(run: Path, tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    img = next((tiny_data / "testA").glob("*.png"))
    refused(["translate", "--checkpoint", run, "--input", img, "--output", tmp_path / "o", "--direction", "a2b",
             "--size", "3000000000"], capsys, "over the 16,384 px")
    refused(["train", "--data", tiny_data, "--run-dir", tmp_path / "r", "--seed", str(2**40), "--set", *TINY],
            capsys, "train.seed")
    (tmp_path / "file").write_text("x")
    refused(["translate", "--checkpoint", run, "--input", img, "--output", tmp_path / "file", "--direction", "a2b"],
            capsys, "is an existing file")
    for command in (["heatmaps", "--input", img], ["interpolate", img, img]):
        refused([command[0], "--checkpoint", run, *command[1:], "--output", tmp_path], capsys, "is a folder")
        refused([command[0], "--checkpoint", run, *command[1:], "--output", tmp_path / "x.jpg"], capsys, ".png")
    refused(["latents", "--checkpoint", run, "--output", tmp_path / "plot"], capsys, ".png")


@pytest.mark.parametrize("command", [
    ["translate", "--input", "{img}", "--output", "{tmp}/o", "--direction", "a2b"],
    ["evaluate"], ["heatmaps", "--input", "{img}", "--output", "{tmp}/h.png"],
    ["latents", "--output", "{tmp}/l.png"], ["interpolate", "{img}", "{img}", "--output", "{tmp}/i.png"]])
def test_a_bad_device_name_is_one_line(command: list[str], run: Path, tiny_data: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    img = str(next((tiny_data / "testA").glob("*.png")))
    args = [a.replace("{img}", img).replace("{tmp}", str(tmp_path)) for a in command]
    refused([args[0], "--checkpoint", run, *args[1:], "--device", "gpu"], capsys, "unknown device 'gpu'")


# --- 6. runs: resume paths, logs, leftovers -------------------------------------------------------------------------


def test_resume_accepts_latest_pt_and_refuses_a_smaller_max_steps(run: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    import shutil

    r = tmp_path / "r"
    shutil.copytree(run, r)
    refused(["resume", r, "--max-steps", "1"], capsys, "below the run's current step 2")
    code, _, err = cli(["resume", r / "checkpoints" / "latest.pt", "--max-steps", "3", "--no-progress"], capsys)
    assert code == 0 and ck.load(r).step == 3, err
    refused(["resume", r / "checkpoints" / "step_0000002.pt"], capsys, "resume takes the run folder")


def test_a_failed_start_leaves_no_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = tmp_path / "data"
    for split in ("trainA", "trainB", "testA", "testB"):
        (data / split).mkdir(parents=True)
    (data / "trainA" / "bad.png").write_bytes(b"not an image")
    refused(["train", "--data", data, "--run-dir", tmp_path / "r", "--set", *TINY], capsys)
    assert not (tmp_path / "r").exists()


def test_metrics_log_has_no_duplicates_or_torn_lines_after_a_resume(tiny_data: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    r = tmp_path / "r"
    assert main(["-q", "train", "--data", str(tiny_data), "--run-dir", str(r), "--max-steps", "6", "--stop-at", "2",
                 "--no-progress", "--set", *TINY, "train.sample_every=0"]) == 0
    log = r / "metrics.jsonl"
    with open(log, "a") as fh:  # what a process killed after step 2's checkpoint leaves behind
        fh.write(json.dumps({"event": "train", "step": 3, "gen/total": 1.0}) + "\n")
        fh.write('{"event": "train", "step": 4, "gen/to')
    code, _, err = cli(["resume", r, "--no-progress"], capsys)
    assert code == 0, err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    steps = [rec["step"] for rec in records if rec["event"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6], steps
    assert "dropped 2 record(s)" in err


def test_eval_folders_of_a_folder_against_itself_is_not_negative(tiny_data: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    code, out, err = cli(["eval-folders", tiny_data / "trainA", tiny_data / "trainA", "--json", "--no-progress"],
                         capsys, seconds=300)
    assert code == 0, err
    assert json.loads(out)["fid"] >= 0.0


def test_long_work_prints_progress_lines_without_a_terminal(run: Path, tiny_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NICEGAN_PROGRESS_INTERVAL", "0")
    code, _, err = cli(["translate", "--checkpoint", run, "--input", tiny_data / "trainA", "--output",
                        tmp_path / "o", "--direction", "a2b", "--batch-size", "2", "--no-progress"], capsys)
    assert code == 0 and "translating: " in err and "eta" in err, err
    import shutil

    r = tmp_path / "r"
    shutil.copytree(run, r)
    code, _, err = cli(["resume", r, "--max-steps", "3", "--no-progress"], capsys)
    assert code == 0 and "training: 3/3" in err and "training nicegan from step 2 to 3" in err, err


def test_interrupt_during_start_up_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    import nicegan.cli as cli_module

    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_module, "build_parser", interrupted)
    assert main(["models"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "nicegan: interrupted"


def test_os_errors_are_one_line(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    def boom(args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "/some/file")

    class Parser:
        def parse_args(self, argv: object) -> argparse.Namespace:
            return argparse.Namespace(command="x", quiet=False, func=boom)

    monkeypatch.setattr("nicegan.cli.build_parser", Parser)
    code = main(["x"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == "nicegan: error: no space left on the device (/some/file)"


def test_label_preservation_follows_the_directions_and_the_limit() -> None:
    from nicegan.evaluation.digits import label_preservation
    from tests.conftest import tiny_model

    model, _ = tiny_model("nicegan")
    out = label_preservation(model, directions=("a2b",), limit=20)
    assert {k for k in out if "a2b" in k} == {"digits/a2b_accuracy", "digits/a2b_baseline"}
    assert not any("b2a" in k for k in out)
    assert all(abs(out[k] * 20 - round(out[k] * 20)) < 1e-9 for k in ("digits/a2b_accuracy", "digits/a2b_baseline"))
