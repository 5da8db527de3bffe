"""Overlays of `predict --out DIR`: one image per input image, one MP4 per video (at the source's frame rate / --every).

Names mirror the inputs: a file found in a folder or by a glob keeps its path below that root
(``a/b.jpg`` → ``DIR/a/b.jpg``), a video becomes ``.mp4``, an image in a format Pillow cannot
write becomes ``.png``; a name taken twice gets ``-2``, ``-3``, ... Images are written
temp-then-rename; a video is renamed into place when its last frame is written.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path, PurePosixPath

from onnxpose.errors import OnnxPoseError

_WRITABLE = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".webp": "WEBP",
             ".tif": "TIFF", ".tiff": "TIFF"}


def overlay_names(sources) -> dict[str, str]:
    """{source path: overlay path relative to DIR} (pure: from the sources alone)."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for source in sources:
        relative = PurePosixPath(source.relative)
        if source.kind == "video":
            relative = relative.with_suffix(".mp4")
        elif relative.suffix.lower() not in _WRITABLE:
            relative = relative.with_suffix(relative.suffix + ".png")
        name, n = str(relative), 1
        while name.lower() in taken:
            n += 1
            name = str(relative.with_name(f"{relative.stem}-{n}{relative.suffix}"))
        taken.add(name.lower())
        names[source.path] = name
    return names


class Overlays:
    """Draws and writes overlays for records as they come (items arrive in source order)."""

    def __init__(self, out_dir: Path, sources, min_score: float, every: int = 1):
        self.out_dir = Path(out_dir)
        self.names = overlay_names(sources)
        self.min_score = min_score
        self.every = every
        self.video = None            # (source path, OverlayVideo) being written
        self.written = 0

    def _path(self, source: str) -> Path:
        path = self.out_dir / self.names[source]
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add(self, item, image, result) -> None:
        from onnxpose.runtime.draw import draw_poses
        canvas = draw_poses(image, result, self.min_score)
        if item.frame is None:
            from onnxpose.io import atomic_output
            path = self._path(item.source.path)
            with atomic_output(path) as tmp:
                canvas.save(tmp, format=_WRITABLE[path.suffix.lower()])
            self.written += 1
            return
        if self.video is None or self.video[0] != item.source.path:
            self.finish()
            from onnxpose.runtime.video import OverlayVideo, video_rate
            rate = (video_rate(item.source.path) or Fraction(25)) / self.every
            self.video = (item.source.path, OverlayVideo(self._path(item.source.path), rate,
                                                         canvas.width, canvas.height))
        self.video[1].write(canvas)

    def finish(self) -> None:
        """Close the video being written (renamed into place)."""
        if self.video is not None:
            video, self.video = self.video[1], None
            if video.frames:
                video.close()
                self.written += 1
            else:
                video.abort()


def check_out_dir(path: Path) -> Path:
    from onnxpose.io import check_output_directory
    path = check_output_directory(path)
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise OnnxPoseError(path, f"cannot create the directory ({exc.strerror or exc})") from exc
    return path
