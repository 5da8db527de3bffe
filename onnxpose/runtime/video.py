"""Video input and overlay video output with PyAV (the ``video`` extra, imported lazily).

PyAV wraps FFmpeg's own demuxers, decoders and encoders and ships them in its wheels (no system
FFmpeg), gives each frame its presentation time exactly (``pts * time_base``), reports a broken
packet as an exception we can catch per frame, and writes H.264 MP4 with a chosen frame rate.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from fractions import Fraction
from pathlib import Path

from onnxpose.errors import OnnxPoseError, first_line, require_extra
from onnxpose.runtime.sources import Fault, Item

VIDEO_EXTRA_MODULES = ("av",)


def _av():
    require_extra("video", VIDEO_EXTRA_MODULES, "reading and writing video")
    import av
    av.logging.set_level(av.logging.PANIC)  # faults are reported by onnxpose, one line each
    return av


def video_rate(path: str) -> Fraction | None:
    """The video's average frame rate (frames per second), or None if unknown/unreadable."""
    av = _av()
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            return Fraction(rate) if rate else None
    except Exception:
        return None


def iter_video_frames(source, every: int = 1):
    """Item per ``every``-th decoded frame of ``source`` (index counts decoded frames from 0,
    timestamp in seconds), a Fault per broken packet, or one Fault if the file cannot be opened.
    Never raises for bad data."""
    av = _av()
    try:
        container = av.open(source.path)
    except Exception as exc:
        yield Fault(source, f"cannot open video ({first_line(exc, 200)})")
        return
    with container:
        if not container.streams.video:
            yield Fault(source, "no video stream")
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except Exception as exc:  # the container itself breaks off (truncated file)
                yield Fault(source, f"video ends early ({first_line(exc, 200)})", frame=index)
                return
            try:
                frames = packet.decode()
            except Exception as exc:
                yield Fault(source, f"broken frame ({first_line(exc, 200)})", frame=index)
                continue
            for frame in frames:
                if index % every == 0:
                    try:
                        image = frame.to_image()
                    except Exception as exc:
                        yield Fault(source, f"broken frame ({first_line(exc, 200)})", frame=index)
                    else:
                        timestamp = None if frame.time is None else round(float(frame.time), 6)
                        yield Item(source, index, timestamp, image)
                index += 1


class OverlayVideo:
    """An MP4 (H.264) written to a temp file beside ``path`` and renamed onto it by ``close``.

    Frames are written at ``rate`` (the source's, divided by ``--every``), one after the other:
    the overlay has one frame per kept source frame and the source's duration."""

    def __init__(self, path: Path, rate: Fraction, width: int, height: int):
        av = _av()
        self.path = Path(path)
        self.rate = Fraction(rate) if rate else Fraction(25)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        self.tmp = Path(tmp)
        self.frames = 0
        try:
            self.container = av.open(str(self.tmp), "w", format="mp4")
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=self.rate)
            self.stream.width, self.stream.height = width, height
            even = width % 2 == 0 and height % 2 == 0
            self.stream.pix_fmt = "yuv420p" if even or codec != "libx264" else "yuv444p"
            self.stream.codec_context.time_base = 1 / self.rate
        except Exception as exc:
            self.tmp.unlink(missing_ok=True)
            raise OnnxPoseError(path, f"cannot write video ({first_line(exc, 200)})") from exc

    def write(self, image) -> None:
        av = _av()
        frame = av.VideoFrame.from_image(image.convert("RGB"))
        frame.pts = self.frames
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
            self.container.close()
            os.replace(self.tmp, self.path)
        except Exception as exc:
            self.abort()
            raise OnnxPoseError(self.path, f"cannot write video ({first_line(exc, 200)})") from exc

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.container.close()
        self.tmp.unlink(missing_ok=True)
