"""Every QR code's text in a photo or scan of a printed report.

Shared by `shailoo verify-qr` (station/qrread.py) and the public results site's
"check a report" (central/site), which both then rebuild and verify the report
with crypto.qrchain.  The image libraries (Pillow, numpy, zxing-cpp, OpenCV)
are imported only when `read_qr_texts` is called, so the rest of crypto/ does
not depend on them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

__all__ = ["QrImageError", "read_qr_texts"]


class QrImageError(OSError):
    """The file is not an image that can be read, or it is too large to decode."""


def _decode_zxing(gray: Any) -> list[str] | None:
    try:
        import zxingcpp  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    out = []
    for r in zxingcpp.read_barcodes(
        gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    ):
        try:  # the raw bytes, so no charset guess can change a character
            out.append(bytes(r.bytes).decode("utf-8"))
        except (UnicodeDecodeError, AttributeError):
            out.append(r.text)
    return out


def _decode_opencv(gray: Any) -> list[str]:
    import cv2

    ok, texts, _, _ = cv2.QRCodeDetector().detectAndDecodeMulti(gray)
    return [t for t in texts if t] if ok else []


def read_qr_texts(image: Path | bytes, *, max_pixels: int | None = None) -> list[str]:
    """Every QR code's text in one photo or scan (zxing-cpp; OpenCV if it is not installed).

    `image` is a file or the file's bytes.  `max_pixels` refuses, before decoding,
    an image larger than that (an upload from the internet may be a decompression
    bomb).  Raises QrImageError (an OSError) if the image cannot be read.
    """
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    source: Any = io.BytesIO(image) if isinstance(image, bytes) else image
    try:
        with Image.open(source) as im:
            width, height = im.size
            if max_pixels is not None and width * height > max_pixels:
                raise QrImageError(
                    f"the image is {width}x{height} pixels, more than {max_pixels:,} in all"
                )
            gray = np.asarray(im.convert("L"))
    except QrImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise QrImageError(f"not an image that can be read: {e}") from None
    except (ValueError, SyntaxError, EOFError) as e:  # what Pillow raises on a damaged file
        raise QrImageError(f"the image is damaged: {e}") from None
    texts = _decode_zxing(gray)
    if texts is None:
        texts = _decode_opencv(gray)
    return texts
