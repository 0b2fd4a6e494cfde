"""The station camera over real OpenCV: video files, image sequences, colour order, downscale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from biometrics.face import CAMERA_MAX_SIDE, encode_bytes, load_rgb
from station.camera import Camera, CameraError, FrameSource, PhotoFrames
from station.facecheck import FaceCheck


def _letterbox(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The photo scaled to fit (w, h) on a grey canvas, as BGR for OpenCV writers."""
    w, h = size
    scale = min(w / rgb.shape[1], h / rgb.shape[0])
    fitted = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)))
    canvas = np.full((h, w, 3), 128, dtype=np.uint8)
    y, x = (h - fitted.shape[0]) // 2, (w - fitted.shape[1]) // 2
    canvas[y : y + fitted.shape[0], x : x + fitted.shape[1]] = fitted
    return cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)


def _photo(faces: Path, rel: str) -> np.ndarray:
    image = load_rgb((faces / rel).read_bytes())
    assert image is not None
    return image


@pytest.fixture(scope="module")
def video(faces: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1280x960 MJPG video: obama/probe1 twice, then biden/probe1."""
    path = tmp_path_factory.mktemp("camera") / "desk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (1280, 960))
    assert writer.isOpened()
    for rel in ("obama/probe1.jpg", "obama/probe1.jpg", "biden/probe1.jpg"):
        writer.write(_letterbox(_photo(faces, rel), (1280, 960)))
    writer.release()
    return path


def test_video_file_frames_are_downscaled_rgb_and_end_with_no_frames(video: Path) -> None:
    with Camera(video) as cam:
        assert cam.status == "ok"
        frames = [cam.read() for _ in range(3)]
        for frame in frames:
            assert frame is not None
            assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
            assert frame.flags["C_CONTIGUOUS"]
        assert cam.read() is None
        assert cam.status == "no_frames"
    assert cam.status == "disconnected"
    assert cam.read() is None


def test_camera_frame_of_the_voter_matches_the_enrolled_template(video: Path, faces: Path) -> None:
    obama = encode_bytes((faces / "obama" / "enroll.jpg").read_bytes()).encoding
    assert obama is not None
    with Camera(str(video)) as cam:
        first, _, third = cam.read(), cam.read(), cam.read()
    assert first is not None and third is not None
    check = FaceCheck()
    assert check.check(first, obama).status == "match"
    assert check.check(third, obama).status == "no_match"  # biden in front of the camera


def test_image_sequence_pattern_is_read_in_order(faces: Path, tmp_path: Path) -> None:
    # OpenCV gives every frame of a sequence the first frame's size, as a sensor would
    photos = ["obama/probe_small.jpg", "kit_harington/probe1.jpg", "biden/enroll.jpg"]
    written = [_letterbox(_photo(faces, rel), (1280, 960)) for rel in photos]
    for i, bgr in enumerate(written):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), bgr)
    cam = Camera(str(tmp_path / "%03d.png"))
    frames = []
    while (frame := cam.read()) is not None:
        frames.append(frame)
    assert cam.status == "no_frames"
    assert len(frames) == len(photos)
    for frame, bgr in zip(frames, written, strict=True):
        assert frame.shape == (480, 640, 3)
        expected = cv2.resize(bgr, (640, 480), interpolation=cv2.INTER_AREA)[:, :, ::-1]
        assert np.abs(frame.astype(int) - expected.astype(int)).mean() < 2


def test_frames_smaller_than_the_limit_are_not_upscaled(faces: Path, tmp_path: Path) -> None:
    small = _photo(faces, "obama/probe_small.jpg")
    cv2.imwrite(str(tmp_path / "000.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    frame = Camera(tmp_path / "%03d.png").read()
    assert frame is not None and frame.shape == small.shape == (240, 320, 3)


def test_bgr_from_opencv_comes_out_rgb(tmp_path: Path) -> None:
    bgr = np.zeros((60, 90, 3), dtype=np.uint8)
    bgr[:, :30] = (0, 0, 255)  # red in OpenCV's BGR order
    bgr[:, 30:60] = (0, 255, 0)
    bgr[:, 60:] = (255, 0, 0)  # blue
    cv2.imwrite(str(tmp_path / "000.png"), bgr)
    frame = Camera(tmp_path / "%03d.png").read()
    assert frame is not None
    assert tuple(frame[30, 10]) == (255, 0, 0)
    assert tuple(frame[30, 45]) == (0, 255, 0)
    assert tuple(frame[30, 80]) == (0, 0, 255)


def test_max_side_is_a_setting(video: Path) -> None:
    frame = Camera(video, max_side=320).read()
    assert frame is not None and frame.shape == (240, 320, 3)
    with pytest.raises(ValueError):
        Camera(video, max_side=0)


@pytest.mark.parametrize("source", ["missing.avi", "frames/%03d.png", "not-a-video.avi", "99"])
def test_a_source_that_cannot_be_opened_is_a_clear_error(tmp_path: Path, source: str) -> None:
    (tmp_path / "not-a-video.avi").write_text("this is text, not a video")
    with pytest.raises(CameraError, match="camera source") as err:
        Camera(source if source == "99" else str(tmp_path / source))
    assert (source if source == "99" else str(tmp_path)) in str(err.value)


def test_reopen_starts_the_source_again(video: Path) -> None:
    cam = Camera(video)
    while cam.read() is not None:
        pass
    cam.reopen()
    assert cam.status == "ok" and cam.read() is not None
    cam.close()


def test_photo_frames_feed_photos_like_a_camera(faces: Path, video: Path) -> None:
    big = faces / "obama" / "probe2.jpg"  # 1434x2333, EXIF-upright
    src = PhotoFrames([big, np.zeros((100, 50, 3), dtype=np.uint8)], loop=False)
    with Camera(video) as cam:
        assert isinstance(src, FrameSource) and isinstance(cam, FrameSource)
    frame = src.read()
    assert frame is not None and max(frame.shape[:2]) == CAMERA_MAX_SIDE
    assert frame.shape[0] > frame.shape[1]  # portrait stays portrait
    assert src.read() is not None and src.status == "ok"
    assert src.read() is None and src.status == "no_frames"


def test_photo_frames_loop_and_close(faces: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    src = PhotoFrames([faces / "obama" / "probe_small.jpg", tmp_path / "broken.jpg"], loop=True)
    assert src.read() is not None
    assert src.read() is None and src.status == "no_frames"  # a garbled frame, not the end
    assert src.read() is not None and src.status == "ok"  # looped to the first photo
    src.close()
    assert src.read() is None and src.status == "disconnected"
