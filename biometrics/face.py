"""Face templates: the one place that turns a picture into a 128-d encoding.

Enrolment at the CEC (`provisioning`) and the station's 1:1 match on election
day (`station`) must run the same downscale + detect + encode path, or their
distances are not comparable; both call `encode_face`.

face_recognition (dlib) is imported lazily: importing this module is cheap,
and the model weights (shipped in face_recognition_models, nothing is
downloaded) load only on the first encoding.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np

# Long side of the image the HOG detector sees.  Measured on the shared face
# set (README there): every photo, from obama/probe_small.jpg (320x240) to
# obama/probe2.jpg (1434x2333), is found at 480, 640, 800 and 1000 px; genuine
# pairs stay <= 0.53 and impostors >= 0.69 at each size.  800 leaves room for
# faces that fill less of the frame than these portraits, at 0.17 s a photo
# (0.34 s at full size).
MAX_SIDE = 800
# Long side of a station camera frame (station.camera downscales to it before
# detection).  At 640 px every shared photo is still found, genuine distances
# to the enrolled templates stay <= 0.53 and impostors >= 0.69, and detection
# costs 0.02-0.12 s instead of up to 2 s for a 2000-px photo.
CAMERA_MAX_SIDE = 640
# How many times the HOG detector upsamples the picture: 1 finds faces down to
# about 40 px wide (0 only from about 80 px) for 3-4x the detection time.
UPSAMPLE = 1
MODEL = "face_recognition 1.3 / dlib resnet 128-d"
# Distance at or below which a probe matches a template: the station's 1:1
# check and `shailoo face compare` both use it.  Chosen from measurement, and
# why it is stricter than the library's usual 0.6: docs/face-threshold.md.
MATCH_THRESHOLD = 0.55

Status = Literal["ok", "no_face", "multiple_faces", "unreadable"]
Verdict = Literal["match", "no_match", "no_face", "multiple_faces", "unreadable"]


@dataclass(frozen=True)
class Enrolment:
    """What one photo gave: an encoding (float32, 128) and face box (w, h) in original pixels."""

    status: Status
    encoding: np.ndarray | None = None
    box: tuple[int, int] | None = None


def downscale(image: np.ndarray, max_side: int = MAX_SIDE) -> tuple[np.ndarray, float]:
    """Shrink so the long side is at most `max_side` (area interpolation); image and scale used.

    The camera shrinks its frames with this same function, so a frame and an
    enrolment photo are resampled the same way.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale >= 1.0:
        return image, 1.0
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def encode_face(image: np.ndarray, *, upsample: int = UPSAMPLE) -> Enrolment:
    """Detect exactly one face in an RGB uint8 array and encode it.

    Refuses (status, no encoding) a picture with no face or several faces: a
    template must belong to one known person, and a station frame must show
    only the voter.  `upsample` is the detector setting (UPSAMPLE by default,
    which enrolment uses).
    """
    import face_recognition

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        return Enrolment("unreadable")
    small, scale = downscale(np.ascontiguousarray(image))
    locations = face_recognition.face_locations(
        small, number_of_times_to_upsample=upsample, model="hog"
    )
    if not locations:
        return Enrolment("no_face")
    if len(locations) > 1:
        return Enrolment("multiple_faces")
    (top, right, bottom, left) = locations[0]
    encoding = face_recognition.face_encodings(small, locations, num_jitters=1)[0]
    box = (round((right - left) / scale), round((bottom - top) / scale))
    return Enrolment("ok", np.asarray(encoding, dtype=np.float32), box)


def load_rgb(data: bytes) -> np.ndarray | None:
    """Decode image bytes to RGB uint8, upright per EXIF; None if it is not a usable image."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            upright = ImageOps.exif_transpose(im)
            return np.asarray(upright.convert("RGB"))
    except Exception:  # PIL raises many kinds (UnidentifiedImageError, DecompressionBomb, ...)
        return None


def encode_bytes(data: bytes) -> Enrolment:
    """Encode an image file's content (the pool's unit of work)."""
    image = load_rgb(data)
    if image is None:
        return Enrolment("unreadable")
    return encode_face(image)


def face_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two encodings; below MATCH_THRESHOLD means same person."""
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def verify(
    image: np.ndarray,
    template: np.ndarray,
    threshold: float = MATCH_THRESHOLD,
    *,
    upsample: int = UPSAMPLE,
) -> tuple[Verdict, float | None]:
    """1:1 check of the single face in `image` against an enrolled template: (verdict, distance).

    A distance at or below `threshold` is a match (as face_recognition's
    compare_faces counts it); the distance is None when no single face was
    found.  The station's FaceCheck and `shailoo face compare` both decide here.
    """
    t = np.asarray(template, dtype=np.float64)
    if t.shape != (128,) or not bool(np.isfinite(t).all()):
        raise ValueError(f"a face template is 128 finite numbers, not shape {t.shape}")
    found = encode_face(image, upsample=upsample)
    if found.status != "ok" or found.encoding is None:
        return ("unreadable" if found.status == "ok" else found.status), None
    distance = face_distance(found.encoding, t)
    return ("match" if distance <= threshold else "no_match"), distance
