"""Video translation end to end: clips generated here with PyAV, translated by a tiny NICE-GAN through the CLI."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from nicegan.cli import main
from nicegan.core.errors import NiceganError
from nicegan.deploy.video import is_video, output_size, parse_video_size, resolve_output, translate_video
from nicegan.formats import checkpoint
from tests.conftest import tiny_model

W, H, FPS, N = 48, 40, 12, 12
RATE = 8000  # audio sample rate: a short, cheap sine


def make_clip(path: Path, times_ms: list[int] | None = None, audio: str | None = "aac", size: tuple[int, int] = (W, H),
              fmt: str | None = None) -> None:
    """Moving stripes (``N`` frames at ``FPS``, or at ``times_ms``), each frame clearly unlike the others, with a
    440 Hz sine of the same length."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        tb = Fraction(1, 1000) if times_ms else Fraction(1, FPS)
        v.codec_context.time_base = tb
        a = None
        if audio:
            a = out.add_stream(audio, rate=RATE)
            a.layout = "mono"
        yy, xx = np.mgrid[0:h, 0:w]
        for i, t in enumerate(times_ms or range(N)):
            img = np.stack([40 + 180 * ((xx + 7 * i) // 6 % 2), 40 + 160 * ((yy + 5 * i) // 5 % 2),
                            np.full_like(xx, i * 41 % 256)], -1)
            frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, tb
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        if a is not None:
            total = RATE * N // FPS
            wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / RATE)
            sample_fmt = "fltp" if audio == "aac" else "s16"
            wave = wave.astype(np.float32) if sample_fmt == "fltp" else (wave * 32767).astype(np.int16)
            for start in range(0, total, 1024):
                af = av.AudioFrame.from_ndarray(wave[None, start:start + 1024], format=sample_fmt, layout="mono")
                af.sample_rate, af.pts, af.time_base = RATE, start, Fraction(1, RATE)
                out.mux(a.encode(af))
            out.mux(a.encode(None))


def probe(path: Path) -> dict:
    """Frames (RGB arrays and times), video rate and size, audio codec, duration and packet bytes."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        info = {"rate": v.average_rate, "size": (v.codec_context.width, v.codec_context.height),
                "audio": [s.codec_context.name for s in c.streams.audio]}
        frames = list(c.decode(video=0))
        info["frames"] = [f.to_ndarray(format="rgb24") for f in frames]
        info["times"] = [float(f.time) for f in frames]
    if info["audio"]:
        with av.open(str(path)) as c:
            a = c.streams.audio[0]
            packets = [p for p in c.demux(a) if p.size]
            info["audio_bytes"] = [bytes(p) for p in packets]
            info["audio_seconds"] = float(sum(p.duration for p in packets) * a.time_base)
    return info


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, cfg = tiny_model("nicegan")
    path = tmp_path_factory.mktemp("video_ckpt") / "tiny.pt"
    checkpoint.write(checkpoint.Checkpoint(model="nicegan", config=cfg.to_dict(), step=7,
                                           nets={k: v.state_dict() for k, v in model.nets.items()}), path)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video_clip") / "clip.mp4"
    make_clip(path)
    return path


def translate(ckpt: Path, src: Path, dst: Path, *extra: str) -> int:
    return main(["translate", "--checkpoint", str(ckpt), "--input", str(src), "--output", str(dst),
                 "--direction", "a2b", "--no-progress", *extra])


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_video_keeps_frames_rate_size_and_sound(ckpt: Path, clip: Path, tmp_path: Path) -> None:
    from nicegan.inference import load_model, translate_images

    out = tmp_path / "out.mp4"
    assert translate(ckpt, clip, out, "--batch-size", "5") == 0  # 5 + 5 + 2 frames
    src, dst = probe(clip), probe(out)
    assert len(dst["frames"]) == N and dst["rate"] == FPS and dst["size"] == (W, H)
    assert dst["times"] == pytest.approx(src["times"], abs=1e-3)
    assert dst["audio"] == ["aac"] and dst["audio_bytes"] == src["audio_bytes"], "audio copied packet for packet"
    assert dst["audio_seconds"] == pytest.approx(src["audio_seconds"], abs=0.05)
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"], "no temporary file left behind"

    # each output frame is the model's translation of the decoded input frame (up to H.264 and 4:2:0 losses)
    # (the b2a translations of these frames differ from the a2b ones by 32 levels or more: a2b is what was asked)
    model, _, _ = load_model(ckpt)
    want = [luma(np.asarray(t.image.resize((W, H), Image.Resampling.BICUBIC)))
            for t in translate_images(model, [Image.fromarray(f) for f in src["frames"]], "a2b")]
    for k, frame in enumerate(dst["frames"]):
        got = luma(frame)
        errors = [np.abs(got - w).mean() for w in want]
        assert errors[k] < 4.5, f"frame {k}: mean luma error {errors[k]:.2f} (H.264 at CRF 18 and 4:2:0 give ~3)"
        assert int(np.argmin(errors)) == k and sorted(errors)[1] > 2 * errors[k], "each frame in its place"
        assert errors[k] < np.abs(got - luma(src["frames"][k])).mean() / 5, "not the input passed through"


def test_variable_frame_times_output_size_and_reencoded_audio(ckpt: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture) -> None:
    """A variable-rate Matroska clip with FLAC sound into QuickTime (which cannot hold FLAC) at a chosen height."""
    times = [0, 80, 170, 250, 420, 500, 580, 700, 750, 830, 1000, 1100]
    src_path, out = tmp_path / "vfr.mkv", tmp_path / "small.mov"
    make_clip(src_path, times_ms=times, audio="flac")
    assert translate(ckpt, src_path, out, "--video-size", "24", "--crf", "30") == 0
    dst = probe(out)
    assert dst["times"] == pytest.approx([t / 1000 for t in times], abs=1e-3), "frame times kept"
    assert dst["size"] == (28, 24), "height 24, width from the aspect ratio rounded to even"
    assert dst["audio"] == ["aac"] and dst["audio_seconds"] == pytest.approx(1.0, abs=0.2)
    assert "re-encoding it to aac" in capsys.readouterr().err


def test_square_only_model_squashes_the_whole_frame(tmp_path: Path, clip: Path) -> None:
    """A full (flattening) NICE-GAN generator takes 32 x 32 only: frames are squashed, not cropped, and restored."""
    model, _ = tiny_model("nicegan", "model.light=false")
    report = translate_video(model.eval(), clip, tmp_path / "sq.mkv", "b2a", progress=False)
    assert report.network_size == (32, 32) and report.size == (W, H) and report.frames == N
    assert report.audio == ["copied (aac)"]


def test_a_failed_run_leaves_no_file_and_keeps_an_old_output(ckpt: Path, clip: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from nicegan.inference import load_model

    model, _, _ = load_model(ckpt)
    calls = []

    def failing(x: torch.Tensor, direction: str) -> torch.Tensor:
        calls.append(len(x))
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C during the second batch
        return x

    monkeypatch.setattr(model, "translate", failing)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older translation")
    with pytest.raises(KeyboardInterrupt):
        translate_video(model, clip, out, "a2b", batch_size=4, progress=False)
    assert out.read_bytes() == b"an older translation"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_a_truncated_clip_is_translated_as_far_as_it_reads_with_a_warning(ckpt: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture) -> None:
    full = tmp_path / "full.mkv"
    make_clip(full, audio=None)
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 85 // 100])  # the first frames, not the last
    assert translate(ckpt, cut, tmp_path / "cut_out.mp4") == 0
    assert 0 < len(probe(tmp_path / "cut_out.mp4")["frames"]) < N
    assert "probably truncated or damaged" in capsys.readouterr().err


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts, af.time_base = RATE, 0, Fraction(1, RATE)
        out.mux(a.encode(af))
        out.mux(a.encode(None))


@pytest.mark.parametrize("case", ["text", "empty", "truncated", "audio only", "same as input", "parent is a file",
                                  "image extension", "unknown extension", "avi", "bad size", "heatmap"])
def test_one_line_errors(case: str, ckpt: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src, out, extra = clip, tmp_path / "out.mp4", []
    if case == "text":
        src = tmp_path / "notes.mp4"
        src.write_text("not a video\n" * 20)
    elif case == "empty":
        src = tmp_path / "empty.mov"
        src.touch()
    elif case == "truncated":  # an MP4's index (moov) comes last: half a file cannot be opened
        src = tmp_path / "half.mp4"
        src.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    elif case == "audio only":
        src = tmp_path / "sound.mp4"
        _audio_only(src)
    elif case == "same as input":
        src = tmp_path / "same.mp4"
        src.write_bytes(clip.read_bytes())
        out = tmp_path / "." / "same.mp4"
    elif case == "parent is a file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "out.mp4"
    elif case == "image extension":
        out = tmp_path / "out.png"
    elif case == "unknown extension":
        out = tmp_path / "out.xyz"
    elif case == "avi":
        out = tmp_path / "out.avi"
    elif case == "bad size":
        extra = ["--video-size", "640x"]
    elif case == "heatmap":
        extra = ["--heatmap"]
    before = src.read_bytes()
    assert translate(ckpt, src, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nicegan: error: ") and "\n" not in err and "Traceback" not in err
    expected = {"text": "not a readable video", "empty": "is empty", "truncated": "not a readable video",
                "audio only": "has no video stream", "same as input": "is the input video",
                "parent is a file": "is not a folder", "image extension": "give --output a name ending in",
                "unknown extension": ".mp4, .m4v, .mov, .mkv, .webm", "avi": "AVI cannot keep",
                "bad size": "--video-size must be", "heatmap": "--heatmap is for images"}[case]
    assert expected in err, err
    assert src.read_bytes() == before, "the input is never touched"
    leftovers = [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name or p.name.startswith("out")]
    assert leftovers == [], leftovers


def test_missing_pyav_names_the_extra(ckpt: Path, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    assert translate(ckpt, clip, tmp_path / "out.mp4") == 2
    assert 'pip install "nicegan[video]"' in capsys.readouterr().err


def test_helpers(tmp_path: Path) -> None:
    src = tmp_path / "in" / "clip.mov"
    assert resolve_output(src, tmp_path) == (tmp_path / "clip.mov", "mov"), "a folder gets the input's name"
    assert resolve_output(src, tmp_path / "new") == (tmp_path / "new" / "clip.mov", "mov"), "so does a new one"
    assert resolve_output(src, tmp_path / "o.MKV") == (tmp_path / "o.MKV", "matroska")
    assert is_video("a/b/Clip.MP4") and is_video("x.webm") and is_video("old.AVI")
    assert not is_video("x.png") and not is_video("x") and not is_video(tmp_path)
    assert parse_video_size("1280x720") == (1280, 720) and parse_video_size("720") == (None, 720)
    for bad in ("0x10", "12x", "axb", "1x2x3", "99999"):
        with pytest.raises(NiceganError):
            parse_video_size(bad)
    assert output_size(1921, 1081) == (1920, 1080), "yuv420p: even sides"
    assert output_size(1920, 1080, (None, 720)) == (1280, 720)
    assert output_size(48, 40, (None, 24)) == (28, 24)
    assert output_size(48, 40, (101, 51)) == (100, 50)
