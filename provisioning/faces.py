"""Face enrolment at the CEC: every distinct photo encoded once, on every core.

Encoding is the slow part of provisioning (about 0.1-0.2 s a photo on one
core), so each distinct photo content is encoded once, keyed by its SHA-256,
in a process pool.  The encoding itself is `biometrics.face.encode_face`, the
same path the station's 1:1 match runs.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from biometrics.face import Enrolment, encode_bytes


def content_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class PhotoEnroller:
    """Encodes photos as they are added, each distinct content once, on `workers` processes.

    Adding returns the content hash at once, so a caller streaming a roll can
    keep validating while the pool encodes.  With workers <= 1 encoding runs
    in this process as each photo is added (no pool start-up cost).
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pending: dict[str, Future[Enrolment]] = {}
        self._done: dict[str, Enrolment] = {}
        self._pool: ProcessPoolExecutor | None = None

    def add(self, path: Path) -> str:
        """Read and hash a photo, queueing it for encoding if its content is new.

        Raises OSError if the file cannot be read.
        """
        data = Path(path).read_bytes()
        sha = content_sha256(data)
        if sha in self._pending or sha in self._done:
            return sha
        if self.workers <= 1:
            self._done[sha] = encode_bytes(data)
            return sha
        if self._pool is None:
            # spawn: workers start clean, without whatever threads or state the caller has
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)
        self._pending[sha] = self._pool.submit(encode_bytes, data)
        # Back-pressure: a roll with millions of distinct photos must not queue them all in memory.
        while len(self._pending) > 8 * self.workers:
            oldest = next(iter(self._pending))
            self._done[oldest] = self._pending.pop(oldest).result()
        return sha

    @property
    def distinct(self) -> int:
        """How many distinct photo contents were (or are being) encoded."""
        return len(self._pending) + len(self._done)

    def results(self) -> dict[str, Enrolment]:
        """Wait for every queued photo; the map from content sha256 to its enrolment."""
        for sha in list(self._pending):
            self._done[sha] = self._pending.pop(sha).result()
        return dict(self._done)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> PhotoEnroller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def enrol_photos(paths: Iterable[Path], workers: int = 2) -> dict[str, Enrolment]:
    """Encode photos, each distinct content once; keyed by content sha256.

    Raises OSError for a file that cannot be read (it has no content to key by).
    """
    with PhotoEnroller(workers) as enroller:
        for p in paths:
            enroller.add(p)
        return enroller.results()
