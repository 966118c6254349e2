"""Data: robust decoding (a bad-input corpus built here), folder checks, the deterministic stream, digits."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.core.errors import DataError
from nicegan.data import build_train_loader, open_domain
from nicegan.data.digits import load_digits_pair
from nicegan.data.images import ImageDecodeError, checked_image_files, list_files, load_rgb
from nicegan.data.sources import ArraySource
from nicegan.data.stream import StreamSampler, UnpairedStream
from tests.conftest import write_images


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(side: int = 20000) -> bytes:
    """A valid-looking PNG header declaring side x side pixels, with almost no data."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 10))
            + _png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("corpus")
    f: dict[str, Path] = {}

    def path(name: str) -> Path:
        f[name.split(".")[0]] = d / name
        return d / name

    Image.fromarray(np.full((8, 10), 77, np.uint8)).save(path("gray.png"))
    pal = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), mode="P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.save(path("palette.png"))
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[..., 0] = 200  # red, but fully transparent on the left half
    rgba[:, 3:, 3] = 255
    Image.fromarray(rgba).save(path("rgba.png"))
    Image.fromarray(np.stack([np.full((5, 5), 30, np.uint8), np.full((5, 5), 255, np.uint8)], -1)).save(path("la.png"))
    Image.new("CMYK", (7, 7), (0, 0, 0, 0)).save(path("cmyk.jpg"), quality=95)
    sixteen = np.full((4, 4), 32896, np.uint16)
    sixteen[0, 0] = 65535
    Image.fromarray(sixteen).save(path("sixteen.png"))
    stored = np.zeros((10, 20, 3), np.uint8)  # 20 wide, 10 high; white block in the top-left corner
    stored[:4, :4] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.fromarray(stored).save(path("rotated.jpg"), exif=exif.tobytes(), quality=95)
    Image.fromarray(np.full((9, 9, 3), 12, np.uint8)).save(path("png_named.jpg"), format="PNG")
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(path("float.tiff"))
    good = d / "tmp_full.jpg"
    Image.fromarray(np.random.RandomState(0).randint(0, 255, (64, 64, 3), dtype=np.uint8)).save(good, quality=95)
    path("truncated.jpg").write_bytes(good.read_bytes()[:600])
    good.unlink()
    path("zero.png").write_bytes(b"")
    path("notes.txt").write_text("not an image\n")
    path("bomb.png").write_bytes(_bomb_png())
    full_png = d / "tmp.png"
    Image.fromarray(np.random.RandomState(1).randint(0, 255, (32, 32, 3), dtype=np.uint8)).save(full_png)
    path("cut.png").write_bytes(full_png.read_bytes()[:200])
    full_png.unlink()
    return f


GOOD = ["gray", "palette", "rgba", "la", "cmyk", "sixteen", "rotated", "png_named", "float"]
BAD = {"truncated": "cannot decode", "zero": "empty file", "notes": "not an image", "bomb": "decompression bomb",
       "cut": "cannot decode"}


@pytest.mark.parametrize("name", GOOD)
def test_good_files_decode_to_rgb(corpus: dict[str, Path], name: str) -> None:
    img = load_rgb(corpus[name])
    assert img.mode == "RGB"


def test_decoded_pixel_values(corpus: dict[str, Path]) -> None:
    px = lambda name: np.asarray(load_rgb(corpus[name])).astype(int)
    assert (px("gray") == 77).all()
    assert tuple(px("palette")[0, 0]) == (255, 0, 0) and tuple(px("palette")[0, 1]) == (0, 0, 255)
    rgba = px("rgba")
    assert tuple(rgba[0, 0]) == (255, 255, 255), "transparent pixels are composited on white"
    assert tuple(rgba[0, 5]) == (200, 0, 0)
    assert (px("la") == 30).all()
    assert (px("cmyk") > 250).all(), "CMYK (0,0,0,0) is white"
    sixteen = px("sixteen")
    assert tuple(sixteen[0, 0]) == (255, 255, 255) and tuple(sixteen[1, 1]) == (128, 128, 128)
    assert (px("float") == 128).all()
    assert (px("png_named") == 12).all()


def test_exif_rotation_is_applied(corpus: dict[str, Path]) -> None:
    arr = np.asarray(load_rgb(corpus["rotated"])).astype(int)
    assert arr.shape == (20, 10, 3), "stored 20x10 with orientation 6 displays 10 wide, 20 high"
    assert arr[:3, -3:].mean() > 200 and arr[:3, :3].mean() < 50, "top-left block moved to the top-right"


@pytest.mark.parametrize("name", list(BAD))
def test_bad_files_raise_a_reason(corpus: dict[str, Path], name: str) -> None:
    with pytest.raises(ImageDecodeError, match=BAD[name]):
        load_rgb(corpus[name])


def test_folder_check_skips_bad_files_with_a_warning_each(corpus: dict[str, Path],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    folder = corpus["gray"].parent
    with caplog.at_level(logging.WARNING, logger="nicegan"):
        good = checked_image_files(folder, strict=False)
    assert {p.stem for p in good} == set(GOOD)
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(skipped) == len(BAD)
    assert any(f"skipped {len(BAD)} of {len(GOOD) + len(BAD)} files" in r.getMessage() for r in caplog.records)


def test_strict_mode_fails_before_training(corpus: dict[str, Path]) -> None:
    with pytest.raises(DataError, match=r"cannot use .*\(and 4 more\); fix or remove it"):
        checked_image_files(corpus["gray"].parent, strict=True)


def test_scan_cache_is_used_and_invalidated(tmp_path: Path) -> None:
    files = write_images(tmp_path / "d", 3, seed=0)
    cache = tmp_path / "scan.json"
    assert len(checked_image_files(tmp_path / "d", False, cache)) == 3
    assert cache.is_file()
    files[0].write_bytes(b"garbage now")  # changed content: its cache entry no longer applies
    assert len(checked_image_files(tmp_path / "d", False, cache)) == 2


def test_missing_and_empty_domains_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data folder not found"):
        open_domain(str(tmp_path / "nope"), "train", "A")
    with pytest.raises(DataError, match=r"domain folder missing: .*trainA"):
        open_domain(str(tmp_path), "train", "A")
    (tmp_path / "trainB").mkdir()
    with pytest.raises(DataError, match=r"no images in .*trainB"):
        open_domain(str(tmp_path), "train", "B")
    (tmp_path / "testA").mkdir()
    (tmp_path / "testA" / "x.png").write_bytes(b"")
    with pytest.raises(DataError, match="no decodable images"):
        open_domain(str(tmp_path), "test", "A")
    with pytest.raises(DataError, match="unknown builtin dataset"):
        open_domain("builtin:cifar", "train", "A")
    with pytest.raises(DataError, match="no dataset given"):
        open_domain("", "train", "A")


def test_listing_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write_images(tmp_path / "b" / "c", 1, 0)
    write_images(tmp_path, 2, 0)
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "y.png").write_bytes(b"x")
    names = [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path)]
    assert names == ["b/c/img_00.png", "img_00.png", "img_01.png"]


def _toy_sources(n_a: int = 7, n_b: int = 5) -> tuple[ArraySource, ArraySource]:
    rng = np.random.RandomState(0)
    return (ArraySource(rng.randint(0, 255, (n_a, 12, 12), dtype=np.uint8), np.arange(n_a)),
            ArraySource(rng.randint(0, 255, (n_b, 12, 12, 3), dtype=np.uint8), np.arange(n_b)))


def test_stream_is_a_pure_function_of_seed_and_index() -> None:
    a, b = _toy_sources()
    s1 = UnpairedStream(a, b, size=8, margin=4, flip=True, seed=3, with_labels=True)
    s2 = UnpairedStream(a, b, size=8, margin=4, flip=True, seed=3, with_labels=True)
    for i in (0, 5, 6, 13, 40):
        x, y = s1[i], s2[i]
        assert torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"])
    other = UnpairedStream(a, b, size=8, margin=4, flip=True, seed=4)
    assert not torch.equal(s1[0]["a"], other[0]["a"])
    # every epoch visits every image of a domain exactly once
    labels = [int(s1[i]["a_label"]) for i in range(14)]
    assert sorted(labels[:7]) == list(range(7)) and sorted(labels[7:]) == list(range(7))
    assert labels[:7] != labels[7:], "each epoch is reshuffled"


def test_sampler_resume_and_sharding() -> None:
    def take(sampler: StreamSampler, n: int) -> list[int]:
        it = iter(sampler)
        return [next(it) for _ in range(n)]

    assert take(StreamSampler(3, 2), 4) == take(StreamSampler(0, 2), 10)[6:]
    single = take(StreamSampler(0, 2, 0, 1), 6)  # one process, batch 2
    r0, r1 = take(StreamSampler(0, 1, 0, 2), 3), take(StreamSampler(0, 1, 1, 2), 3)  # two processes, batch 1
    assert sorted(r0 + r1) == single and r0 == single[0::2] and r1 == single[1::2]


def test_loader_batches_are_identical_with_and_without_workers() -> None:
    a, b = _toy_sources()
    kw = dict(img_size=8, margin=4, flip=True, seed=1, batch_size=3, start_step=2, device=torch.device("cpu"))
    it0 = iter(build_train_loader(a, b, num_workers=0, **kw))
    it2 = iter(build_train_loader(a, b, num_workers=2, **kw))
    for _ in range(3):
        x, y = next(it0), next(it2)
        assert torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"])
    del it2


def test_builtin_digits_pair() -> None:
    pair = load_digits_pair()
    assert (len(pair.train_a), len(pair.test_a)) == (4000, 1000)
    assert len(pair.train_b) + len(pair.test_b) == 1797 and 350 <= len(pair.test_b) <= 370
    assert np.bincount(pair.test_a.labels).tolist() == [100] * 10
    for src in (pair.train_a, pair.train_b, pair.test_a, pair.test_b):
        img = src.load(0)
        assert img.size == (32, 32) and img.mode == "RGB"
        assert src.images.shape[1:] == (32, 32)
    # fixed splits: the same on every call and machine (seeded), disjoint
    assert pair.test_a.labels[:10].tolist() == load_digits_pair().test_a.labels[:10].tolist()
    train_rows = {r.tobytes() for r in pair.train_b.images}
    assert not any(r.tobytes() in train_rows for r in pair.test_b.images)
    # a 4 px black margin around both domains' digits, as in 32 px MNIST
    for src in (pair.train_a, pair.train_b):
        assert src.images[:, :2].max() == 0 and src.images[:, :, -2:].max() == 0
