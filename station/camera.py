"""The identification desk's camera: frames in, RGB arrays of at most CAMERA_MAX_SIDE px out.

The station reads its camera through OpenCV (`cv2.VideoCapture`), which opens
a device by index ("0"), a video file, or an image sequence ("frames/%03d.jpg").
Frames are downscaled before detection (biometrics.face.CAMERA_MAX_SIDE, 640 px:
measured in docs/face-threshold.md) so a face check stays well under a second on
one core whatever the sensor's resolution.

OpenCV's image-sequence reader gives every frame the size of the first one, as
a real sensor would; `PhotoFrames` keeps each photo's own size.

`FrameSource` is what the face check and the operator screen need from a camera;
`PhotoFrames` plays a list of photos through it for tests and the demo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from biometrics.face import CAMERA_MAX_SIDE, downscale, load_rgb

# What the operator screen shows about the camera:
#   ok            the last read gave a frame
#   no_frames     the camera is open but gave nothing (end of a file, a stalled sensor)
#   disconnected  the camera could not be opened, or is gone; reconnect it and press retry
CameraStatus = Literal["ok", "no_frames", "disconnected"]


class CameraError(RuntimeError):
    """The camera source cannot be opened; the message says which source and what to check."""


@runtime_checkable
class FrameSource(Protocol):
    """Something that gives RGB uint8 frames, one per `read()`, and says how it is doing."""

    @property
    def status(self) -> CameraStatus: ...

    def read(self) -> np.ndarray | None:
        """The next frame (RGB uint8, H x W x 3), or None if there is none now."""
        ...

    def close(self) -> None: ...


def _is_device_index(source: str) -> bool:
    return source.isascii() and source.isdigit()


class Camera:
    """A `cv2.VideoCapture` source (device index, video file or image-sequence pattern).

    Raises CameraError at construction if the source cannot be opened, so a
    wrong setting is reported at start-up rather than as a silent black screen.
    """

    def __init__(self, source: str | int | Path, *, max_side: int = CAMERA_MAX_SIDE) -> None:
        if max_side < 1:
            raise ValueError(f"max_side must be at least 1, not {max_side}")
        self.source = str(source)
        self.max_side = max_side
        self._status: CameraStatus = "disconnected"
        self._capture: Any = self._open()
        self._status = "ok"

    def _open(self) -> Any:  # a cv2.VideoCapture
        import cv2

        src = self.source
        if not _is_device_index(src) and "%" not in src and not Path(src).is_file():
            raise CameraError(f"camera source {src!r}: no such file, device index or pattern")
        capture = cv2.VideoCapture(int(src) if _is_device_index(src) else src)
        if not capture.isOpened():
            capture.release()
            what = "device" if _is_device_index(src) else "video file or image sequence"
            raise CameraError(
                f"camera source {src!r}: OpenCV cannot open this {what}; "
                "check the cable / path and the setting"
            )
        return capture

    @property
    def status(self) -> CameraStatus:
        return self._status

    def read(self) -> np.ndarray | None:
        """The next frame as RGB uint8, long side at most `max_side`; None when none came."""
        import cv2

        if self._capture is None:
            self._status = "disconnected"
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None or frame.size == 0:
            self._status = "no_frames" if self._capture.isOpened() else "disconnected"
            return None
        if frame.ndim == 2:
            rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        elif frame.shape[2] == 4:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
        else:
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        self._status = "ok"
        small, _ = downscale(rgb, self.max_side)
        return np.ascontiguousarray(small, dtype=np.uint8)

    def reopen(self) -> None:
        """Release and open the source again (the operator's "retry camera"); CameraError if not."""
        self.close()
        self._capture = self._open()
        self._status = "ok"

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        self._status = "disconnected"

    def __enter__(self) -> Camera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PhotoFrames:
    """Photos (paths, or RGB arrays) played as camera frames, downscaled like `Camera`'s.

    With `loop=True` it starts again after the last photo, like a camera that
    never runs out; otherwise `read()` returns None and status is "no_frames".
    """

    def __init__(
        self,
        photos: Iterable[Path | str | np.ndarray],
        *,
        max_side: int = CAMERA_MAX_SIDE,
        loop: bool = False,
    ) -> None:
        self._photos: Sequence[Path | str | np.ndarray] = list(photos)
        self.max_side = max_side
        self.loop = loop
        self._next = 0
        self._status: CameraStatus = "ok"
        self._closed = False

    @property
    def status(self) -> CameraStatus:
        return self._status

    def read(self) -> np.ndarray | None:
        """The next photo as an RGB uint8 frame (EXIF upright), or None after the last."""
        if self._closed:
            self._status = "disconnected"
            return None
        if self._next >= len(self._photos):
            if not self.loop or not self._photos:
                self._status = "no_frames"
                return None
            self._next = 0
        item = self._photos[self._next]
        self._next += 1
        if isinstance(item, np.ndarray):
            image: np.ndarray | None = item
        else:
            image = load_rgb(Path(item).read_bytes())
        if image is None:
            # an unreadable photo is a frame the sensor garbled: no frame this time
            self._status = "no_frames"
            return None
        self._status = "ok"
        small, _ = downscale(image, self.max_side)
        return np.ascontiguousarray(small, dtype=np.uint8)

    def close(self) -> None:
        self._closed = True
        self._status = "disconnected"
