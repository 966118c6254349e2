"""Hostile video inputs (issue 25) beyond tests/test_video.py's one-line errors (0-byte, truncated, text named
.mp4, audio only): a video stream with no frame at all, and odd frame sizes (33 x 17, which yuv420p cannot hold)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.hostile import deadline
from tests.test_video import ckpt, probe, translate  # noqa: F401  (ckpt: the module's tiny-checkpoint fixture)

av = pytest.importorskip("av")


def _no_frames(path: Path) -> None:
    """The container's header and a video track, and no frame (a recording stopped before its first frame)."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1" if path.suffix == ".mkv" else "libx264", rate=12)
        v.width, v.height, v.pix_fmt = 48, 40, "yuv444p" if path.suffix == ".mkv" else "yuv420p"
        out.start_encoding()


def _odd(path: Path, size: tuple[int, int] = (33, 17), n: int = 4) -> None:
    w, h = size
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=12)  # lossless, any size
        v.width, v.height, v.pix_fmt = w, h, "yuv444p"
        v.codec_context.time_base = Fraction(1, 12)
        for i in range(n):
            img = np.full((h, w, 3), 40 * i, np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 12)
            out.mux(v.encode(frame))
        out.mux(v.encode(None))


@pytest.mark.parametrize(("suffix", "words"), [(".mp4", "has no stream at all"), (".mkv", "not a readable video")])
def test_a_video_without_frames_is_refused_in_one_line(suffix: str, words: str, ckpt: Path,  # noqa: F811
                                                       tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / f"none{suffix}"
    _no_frames(src)
    assert src.stat().st_size > 0
    with deadline(60):
        code = translate(ckpt, src, tmp_path / "out.mp4")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("nicegan: error: ") and "\n" not in err and words in err, err
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("size", [(33, 17), (17, 33), (1, 1)])
def test_odd_frame_sizes_are_translated_at_their_size(size: tuple[int, int], ckpt: Path,  # noqa: F811
                                                      tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "odd.mkv"
    _odd(src, size)
    with deadline(60):
        code = translate(ckpt, src, tmp_path / "out.mkv")
    err = capsys.readouterr().err
    if code == 0:
        info = probe(tmp_path / "out.mkv")
        assert len(info["frames"]) == 4
        w, h = info["size"]
        assert abs(w - size[0]) <= 1 and abs(h - size[1]) <= 1, info["size"]  # yuv420p rounds to even sides
    else:
        assert code == 2 and err.strip().startswith("nicegan: error: ") and "\n" not in err.strip(), err
