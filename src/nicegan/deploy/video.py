"""Video translation with PyAV (whose wheel ships FFmpeg): decode, translate frames in batches, encode, keep the sound.

``nicegan translate --input clip.mp4 --output out.mp4`` lands here (:func:`translate_video`). What is kept:

- timing: every frame keeps its presentation time (fractional and variable frame rates stay as they were; the
  stream's average rate is only the nominal rate written in the header);
- resolution: the output has the input's size by default (``video_size`` picks another). Frames go through
  :func:`nicegan.inference.translate_images`: the shorter side at the network size with the aspect ratio kept
  (fully convolutional models), or at full resolution in blended tiles with ``keep_size``. Models that translate
  fixed squares only (full generators, CoGAN) get each whole frame squashed to a square (not the centre crop that
  still images get: a video frame must stay whole). The translation is resized to the output size;
- sound: audio streams are copied packet for packet when the output container can hold their codec, else
  re-encoded (AAC, or Opus for WebM) with a log line saying so. Subtitle and data streams are dropped (said too).

The output is H.264 (libx264, CRF quality) in yuv420p (even sides), VP9 for ``.webm``, MPEG-4 part 2 where the
FFmpeg build lacks libx264. It is written under a temporary name and renamed when complete, so an interrupted or
failed run never leaves a half-written file under the final name. PyAV is imported lazily (the ``video`` extra).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from nicegan.core.errors import NiceganError
from nicegan.core.files import describe_os_error, entry_problem, fit_name, writable_dir
from nicegan.core.progress import track
from nicegan.inference import MAX_SIZE, input_geometry, translate_images
from nicegan.models.base import TranslationModel, check_direction

log = logging.getLogger("nicegan")

#: file extension -> FFmpeg muxer of the containers written (their extensions also mark an input as a video)
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}

#: extensions of the videos read (FFmpeg reads many more; these are the ones ``nicegan translate`` recognises)
VIDEO_EXTENSIONS = (*CONTAINERS, ".avi")

#: default constant-rate-factor quality: lower is better (H.264 0-51, VP9 0-63); 18 looks near-transparent
DEFAULT_CRF = 18

INSTALL_HINT = 'pip install "nicegan[video]"'


def import_av() -> Any:
    """The ``av`` module, or a one-line error saying which extra installs it."""
    try:
        import av
    except ImportError:
        raise NiceganError(f"video translation needs PyAV, which is not installed: {INSTALL_HINT}") from None
    return av


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file by its extension (:data:`VIDEO_EXTENSIONS`), not a folder."""
    p = Path(path)
    return p.suffix.lower() in VIDEO_EXTENSIONS and not p.is_dir()


def parse_video_size(text: str) -> tuple[int | None, int]:
    """``"WxH"`` -> ``(W, H)``; ``"H"`` (a height) -> ``(None, H)``, the width following the aspect ratio."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) < 2 or max(values) > MAX_SIZE:
        raise NiceganError(f"video_size must be WIDTHxHEIGHT (e.g. 1280x720) or a height (e.g. 720), each side "
                           f"2 to {MAX_SIZE}, got {text!r}", option="video_size")
    return (None, values[0]) if len(values) == 1 else (values[0], values[1])


def output_size(width: int, height: int, request: tuple[int | None, int] | None = None) -> tuple[int, int]:
    """The output frame size: the input's, or the requested ``(W, H)`` / ``(None, H)``; sides rounded down to even
    numbers (yuv420p stores colour at half resolution)."""
    if request is None:
        w, h = width, height
    elif request[0] is None:
        w, h = round(request[1] * width / height), request[1]
    else:
        w, h = request
    return max(2, w - w % 2), max(2, h - h % 2)


@dataclass
class VideoReport:
    """Outcome of :func:`translate_video`."""

    output: Path
    frames: int
    rate: Fraction  # nominal frame rate (frames keep their own times)
    size: tuple[int, int]  # output width, height
    network_size: tuple[int, int] | None  # what the network saw (width, height); None: full resolution in tiles
    codec: str  # video encoder
    audio: list[str] = field(default_factory=list)  # per audio stream: "copied (aac)" / "re-encoded aac -> ..."
    seconds: float = 0.0
    damaged_packets: int = 0
    diagnostics: dict[str, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        """Translated frames per second of wall time."""
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def resolve_output(input_path: Path, output: str | os.PathLike) -> tuple[Path, str]:
    """The output file and its FFmpeg muxer: ``output`` itself, or ``<output>/<input name>`` for a folder (an
    existing one, or a name without an extension). Refuses the input itself and unknown extensions."""
    out = Path(output).expanduser()
    if out.is_dir() or (not out.suffix and not out.exists()):
        out = out / input_path.name
    fmt = CONTAINERS.get(out.suffix.lower())
    if out.suffix.lower() == ".avi":  # its index has no presentation times: the sound drifts off by frames
        raise NiceganError(f"cannot write {out.name!r}: AVI cannot keep frame times and sound in sync; write .mp4, "
                           ".mkv, .mov or .webm (an AVI input is fine)")
    if fmt is None:
        raise NiceganError(f"cannot write a video as {out.name!r}: give output a name ending in one of "
                           f"{', '.join(CONTAINERS)} (for a video input the output is a video file)", option="output")
    with contextlib.suppress(OSError):
        if out.exists() and (out.samefile(input_path) or out.resolve() == input_path.resolve()):
            raise NiceganError(f"output {out} is the input video; choose another output file", option="output")
    return fit_name(out), fmt


def _ffmpeg_reason(e: Exception) -> str:
    """FFmpeg's reason without the error number and file name PyAV adds (``Invalid data found when ...``)."""
    return (getattr(e, "strerror", None) or str(e) or type(e).__name__).strip()


def _open_input(av: Any, path: Path) -> Any:
    problem = entry_problem(path)
    if problem == "file not found":
        raise NiceganError(f"input not found: {path}")
    if problem is not None:
        raise NiceganError(f"cannot read the input {path}: {problem}")
    if path.stat().st_size == 0:
        raise NiceganError(f"{path} is empty (0 bytes), not a video")
    try:
        return av.open(str(path), "r", metadata_errors="replace")
    except av.error.InvalidDataError as e:
        raise NiceganError(f"{path} is not a readable video: FFmpeg finds no container it can read in it (not a "
                           f"video, or damaged or truncated: {_ffmpeg_reason(e)})") from None
    except av.error.FFmpegError as e:
        if isinstance(e, OSError) and e.errno not in (None, 0):
            raise NiceganError(describe_os_error(e, f"cannot read the video {path}")) from None
        raise NiceganError(f"{path} is not a readable video ({_ffmpeg_reason(e)})") from None


def _can_hold(av: Any, fmt: str, template: Any) -> bool:
    """Whether a ``fmt`` container can hold the stream's packets as they are (a header is written to memory)."""
    probe = av.open(io.BytesIO(), "w", format=fmt)
    try:
        probe.add_stream_from_template(template)
        probe.start_encoding()
        return True
    except (ValueError, av.error.FFmpegError):
        return False
    finally:
        with contextlib.suppress(Exception):
            probe.close()


def _encoder(av: Any, fmt: str) -> str:
    """The video encoder: VP9 for WebM, else H.264 (libx264) if this FFmpeg has it, else MPEG-4 part 2."""
    names = ("libvpx-vp9", "libvpx") if fmt == "webm" else ("libx264", "mpeg4")
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # not in this FFmpeg build
            continue
        return name
    raise NiceganError(f"this FFmpeg build (PyAV {av.__version__}) has no encoder for {fmt} video "
                       f"({' or '.join(names)})")


def _audio_encoder(fmt: str) -> str:
    return "libopus" if fmt == "webm" else "aac"


def _common_divisor(a: Fraction, b: Fraction) -> Fraction:
    """The largest time step of which both ``a`` and ``b`` are whole multiples."""
    den = a.denominator * b.denominator // math.gcd(a.denominator, b.denominator)
    return Fraction(math.gcd(a.numerator * (den // a.denominator), b.numerator * (den // b.denominator)), den)


def _nominal_rate(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return Fraction(rate)
    return Fraction(25)


def _frame_count(container: Any, stream: Any, rate: Fraction) -> int | None:
    """Frames in the stream as the container says, or estimated from the duration (None when unknown)."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        return None
    return max(1, round(seconds * rate))


@dataclass
class _Frame:
    pts: int | None
    duration: int


class _Writer:
    """The output container, opened at the first decoded frame (whose rotation tag it copies); audio packets that
    arrive before it are held back."""

    def __init__(self, av: Any, path: Path, fmt: str, codec: str, size: tuple[int, int], rate: Fraction,
                 in_tb: Fraction, crf: int, audio: list[tuple[Any, bool]]) -> None:
        self.av, self.path, self.fmt, self.codec, self.size, self.rate = av, path, fmt, codec, size, rate
        self.in_tb, self.crf, self.audio_plan = in_tb, crf, audio
        self.period = 1 / rate
        # The output time base holds both the input's ticks and the nominal frame grid, so that times can stay as
        # they were or be put back on the grid. MPEG-4 part 2 allows denominators up to 65535: if that is too few,
        # it gets one tick per frame (times rounded to the grid).
        tb = _common_divisor(in_tb, self.period)
        if self.codec == "mpeg4" and tb.denominator > 65535:
            tb = self.period.limit_denominator(65535)
        self.tb = tb if tb.denominator < 2**31 else in_tb
        self.t0: Fraction | None = None
        self.out: Any = None
        self.video: Any = None
        self.audio_out: dict[int, tuple[Any, bool]] = {}  # input stream index -> (output stream, copy?)
        self.held: list[Any] = []
        self.last_pts: int | None = None
        self.frames = 0

    def open(self, rotation: int) -> None:
        av = self.av
        self.out = out = av.open(str(self.path), "w", format=self.fmt)
        if self.codec.startswith("libvpx"):
            options = {"crf": str(self.crf), "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}
        elif self.codec == "libx264":
            options = {"crf": str(self.crf), "preset": "medium"}
        else:  # mpeg4: a fixed quantiser 2-31 from the same 0-51 scale
            options = {"qscale": str(min(31, max(2, round(2 + self.crf * 29 / 51))))}
        v = out.add_stream(self.codec, rate=self.rate, options=options)
        v.width, v.height = self.size
        v.pix_fmt = "yuv420p"
        v.codec_context.time_base = self.tb
        v.time_base = self.tb
        if self.codec == "mpeg4":
            v.codec_context.flags |= "QSCALE"  # honour qscale (a constant quantiser) instead of a bit rate
        if rotation:
            if hasattr(v, "set_display_rotation"):  # PyAV 17+
                v.set_display_rotation(rotation)
            else:
                log.warning("the input is tagged to be shown rotated by %d degrees; this PyAV cannot copy the tag, "
                            "so players will show the output as stored (upgrade PyAV to keep it)", rotation)
        self.video = v
        for src, copy in self.audio_plan:
            if copy:
                a = out.add_stream_from_template(src)
            else:
                name = _audio_encoder(self.fmt)
                opus = name == "libopus"  # Opus runs at 48 kHz; AAC at the source's rate up to 96 kHz
                rate = 48000 if opus or not src.rate or src.rate > 96000 else src.rate
                a = out.add_stream(name, rate=rate)
                a.layout = "stereo" if opus and src.layout.nb_channels > 2 else src.layout.name
                a.time_base = Fraction(1, rate)
            if "language" in src.metadata:
                a.metadata["language"] = src.metadata["language"]
            self.audio_out[src.index] = (a, copy)
        out.start_encoding()
        for packet in self.held:
            self.audio_packet(packet)
        self.held = []

    def audio_packet(self, packet: Any) -> None:
        if self.out is None:
            self.held.append(packet)
            return
        stream, copy = self.audio_out[packet.stream.index]
        if copy:
            if packet.dts is None or packet.size == 0:  # the demuxer's end-of-stream marker
                return
            packet.stream = stream
            self.out.mux(packet)
        else:
            for frame in packet.decode():
                self.out.mux(stream.encode(frame))

    def video_frame(self, pixels: Any, pts: int | None, duration: int) -> None:
        frame = self.av.VideoFrame.from_ndarray(pixels, format="rgb24")
        step = max(1, round(self.period / self.tb))
        if pts is None:  # a stream without times: one frame period after the last
            t = self.last_pts + step if self.last_pts is not None else 0
        else:
            seconds = pts * self.in_tb
            if self.t0 is None:
                self.t0 = seconds
            on_grid = self.t0 + round((seconds - self.t0) / self.period) * self.period
            if abs(seconds - on_grid) <= self.in_tb:  # off the nominal grid by the container's rounding only
                seconds = on_grid  # (e.g. Matroska's milliseconds): a 12 fps clip stays 12 fps, not 11.996
            t = round(seconds / self.tb)
        if self.last_pts is not None and t <= self.last_pts:  # encoders need strictly increasing times
            t = self.last_pts + 1
        frame.pts, frame.time_base = t, self.tb
        length = duration * self.in_tb
        with contextlib.suppress(AttributeError):  # settable in recent PyAV: keeps the last frame's length exact
            frame.duration = step if not duration or abs(length - self.period) <= self.in_tb else max(
                1, round(length / self.tb))
        self.last_pts = t
        self.out.mux(self.video.encode(frame))
        self.frames += 1

    def finish(self) -> None:
        self.out.mux(self.video.encode(None))
        for stream, copy in self.audio_out.values():
            if not copy:
                self.out.mux(stream.encode(None))
        self.out.close()

    def abort(self) -> None:
        if self.out is not None:
            with contextlib.suppress(Exception):
                self.out.close()


def translate_video(model: TranslationModel, input_path: str | os.PathLike, output: str | os.PathLike,
                    direction: str, size: int | None = None, *, video_size: tuple[int | None, int] | None = None,
                    crf: int = DEFAULT_CRF, batch_size: int = 8, keep_size: bool = False, tile: int | None = None,
                    overlap: int | None = None, progress: bool | None = None) -> VideoReport:
    """Translate every frame of a video file into a new video file, keeping frame times and sound.

    Args:
        model: the translation model (its device is used).
        input_path: a video file (anything FFmpeg reads).
        output: the output file (its extension picks the container: mp4, m4v, mov, mkv, webm), or a folder to
            write ``<input name>`` into.
        direction: ``"a2b"`` or ``"b2a"``.
        size: the shorter side the network sees (default: the training size).
        video_size: output ``(W, H)`` or ``(None, H)`` (width from the aspect ratio); default the input's size.
        crf: encoder quality, lower is better (H.264 0-51, VP9 0-63).
        batch_size: frames (or tiles, with ``keep_size``) translated at once.
        keep_size, tile, overlap: translate each frame at full resolution in overlapping tiles (see
            :func:`nicegan.inference.translate_images`).
        progress: progress bar (True), plain log lines (False) or automatic (None).
    """
    av = import_av()
    check_direction(direction)
    model.require_direction(direction)
    size = size or model.cfg.img_size
    if batch_size < 1:
        raise NiceganError(f"batch_size must be >= 1, got {batch_size}", option="batch_size")
    model.check_input_size(size)
    src_path = Path(input_path).expanduser()
    container = _open_input(av, src_path)
    with container:
        if not container.streams.video:
            kinds = _stream_kinds(container)
            raise NiceganError(f"{src_path} has no video stream (only {kinds})" if kinds else
                               f"{src_path} has no stream at all (a video whose frames were never written?)")
        vin = container.streams.video[0]
        vin.thread_type = "AUTO"
        width, height = vin.codec_context.width, vin.codec_context.height
        if not width or not height:
            raise NiceganError(f"{src_path} has a video stream of unknown size (a damaged header?)")
        dst, fmt = resolve_output(src_path, output)
        codec = _encoder(av, fmt)
        top = 63 if codec.startswith("libvpx") else 51
        if not 0 <= crf <= top:
            raise NiceganError(f"crf must be between 0 and {top} for {codec} (lower is better), got {crf}",
                               option="crf")
        out_w, out_h = output_size(width, height, video_size)
        squash = not keep_size and width != height and input_geometry(model).fixed
        writable_dir(dst.parent, "output folder")
        rate = _nominal_rate(vin)
        total = _frame_count(container, vin, rate)
        plan = [(a, _can_hold(av, fmt, a)) for a in container.streams.audio if a.codec_context is not None]
        for a, copy in plan:
            if not copy:
                log.info("audio stream %d (%s) cannot go into %s as it is: re-encoding it to %s", a.index,
                         a.codec_context.name, dst.suffix, _audio_encoder(fmt))
        dropped = len(container.streams) - 1 - len(plan)
        if dropped:
            log.info("leaving out %d other stream(s) (subtitles, data, further video or unknown audio)", dropped)
        if (out_w, out_h) != (width, height) and video_size is None:
            log.info("output %dx%d: yuv420p needs even sides (input %dx%d)", out_w, out_h, width, height)
        if squash:
            log.warning("the %s model translates %dx%d squares only: each %dx%d frame is squashed to one and the "
                        "translation stretched back (keep_size translates in tiles instead)", model.name, size,
                        size, width, height, extra={"option": "keep_size"})
        log.info("translating %s: %dx%d at %s fps%s -> %s %dx%d", src_path.name, width, height, describe_rate(rate),
                 f", about {total} frames" if total else "", dst.name, out_w, out_h)

        tmp = dst.with_name(f".{dst.name}.tmp{os.getpid()}")
        writer = _Writer(av, tmp, fmt, codec, (out_w, out_h), rate, Fraction(vin.time_base), crf, plan)
        report = VideoReport(dst, 0, rate, (out_w, out_h), None, writer.codec,
                             [f"copied ({a.codec_context.name})" if c else
                              f"re-encoded {a.codec_context.name} -> {_audio_encoder(fmt)}" for a, c in plan])
        t0 = time.perf_counter()
        try:
            frames = _decoded(av, container, vin, writer, report)
            _translate_frames(model, frames, writer, report, direction, size, squash, total,
                              dict(keep_size=keep_size, tile=tile, overlap=overlap, batch_size=batch_size),
                              progress)
            if writer.out is None:
                raise NiceganError(f"no video frame of {src_path} could be decoded (the file is damaged)")
            writer.finish()
            os.replace(tmp, dst)
        except BaseException as e:
            writer.abort()
            with contextlib.suppress(OSError):
                tmp.unlink()
            if isinstance(e, OSError):  # a full disk, a vanished folder (PyAV raises OSErrors for them)
                raise NiceganError(describe_os_error(e, f"cannot write the video {dst}")) from None
            if isinstance(e, av.error.FFmpegError):  # the encoder or muxer refused something
                raise NiceganError(f"FFmpeg could not write {dst}: {_ffmpeg_reason(e)}") from None
            raise
    report.frames, report.seconds = writer.frames, time.perf_counter() - t0
    if report.damaged_packets:
        log.warning("%d damaged packet(s) of %s could not be decoded and were skipped", report.damaged_packets,
                    src_path)
    if total and report.frames < 0.9 * total - 1:
        log.warning("only %d of the about %d frames %s announces could be read: the file is probably truncated or "
                    "damaged (the readable part was translated)", report.frames, total, src_path.name)
    return report


def _stream_kinds(container: Any) -> str:
    kinds = sorted({s.type for s in container.streams})
    return " and ".join(f"{k} streams" for k in kinds)


def _decoded(av: Any, container: Any, vin: Any, writer: _Writer,
             report: VideoReport) -> Iterator[tuple[Image.Image, _Frame]]:
    """The video's frames as RGB images with their times, in presentation order. Audio packets met on the way go
    to the writer; the writer opens at the first frame (it copies the frame's rotation tag)."""
    audio_index = {a.index for a, _ in writer.audio_plan}
    packets = container.demux(vin, *(a for a, _ in writer.audio_plan))
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.error.FFmpegError as e:
            raise NiceganError(f"{container.name} is damaged: reading stopped after {writer.frames} frame(s) "
                               f"({_ffmpeg_reason(e)})") from None
        if packet.stream.index in audio_index:
            try:
                writer.audio_packet(packet)
            except av.error.InvalidDataError:  # a damaged audio packet that had to be decoded (re-encoding)
                report.damaged_packets += 1
            continue
        try:
            decoded = packet.decode()
        except av.error.FFmpegError:  # one damaged packet: skip it, as players do
            report.damaged_packets += 1
            continue
        for f in decoded:
            if writer.out is None:
                writer.open(int(getattr(f, "rotation", 0) or 0))
            yield f.to_image(), _Frame(f.pts, int(f.duration or 0))


def _translate_frames(model: TranslationModel, frames: Iterator[tuple[Image.Image, _Frame]], writer: _Writer,
                      report: VideoReport, direction: str, size: int, squash: bool, total: int | None,
                      options: dict[str, Any], progress: bool | None) -> None:
    """Translate decoded frames in batches (through :func:`translate_images`) and hand them to the writer."""
    waiting: deque[_Frame] = deque()  # frames given to translate_images whose translation has not come back yet

    def images() -> Iterator[Image.Image]:
        for img, frame in track(frames, total=total, desc="translating video", unit="frame", progress=progress):
            waiting.append(frame)
            yield img.resize((size, size), Image.Resampling.BILINEAR) if squash else img

    # tile progress would be one bar per frame under the frame bar: plain lines only, for very slow frames
    for t in translate_images(model, images(), direction, size, progress=False, diagnostics=report.diagnostics,
                              **options):
        frame = waiting.popleft()
        if report.network_size is None and t.fit != "tiled":
            report.network_size = t.image.size
        img = t.image if t.image.size == writer.size else t.image.resize(writer.size, Image.Resampling.BICUBIC)
        writer.video_frame(np.asarray(img, dtype=np.uint8), frame.pts, frame.duration)


def describe_rate(rate: Fraction) -> str:
    """``12``, ``29.97 (30000/1001)``: a frame rate for people."""
    return f"{float(rate):.4g}" if rate.denominator == 1 else f"{float(rate):.4g} ({rate.numerator}/{rate.denominator})"

