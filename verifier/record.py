"""Getting at an election record: a directory, a local archive, or a URL to download.

The public site serves the record as one tar.gz (`{base}/api/v1/record.tar.gz`); a
URL ending in .tar.gz, .tgz or .zip is taken as the archive itself.  Archives are
untrusted input: every member is extracted by hand (no `extractall`), only regular
files and directories, no absolute paths, no `..`, no links or devices, and a cap on
the total size, so a hostile archive cannot write outside the temporary directory
or fill the disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

MANIFEST = "MANIFEST.json"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")
# Where the public site serves the record below its base URL, in the order tried.
SITE_PATHS = ("api/v1/record.tar.gz", "api/record.tar.gz")
MAX_ARCHIVE_BYTES = 20 * 1024**3  # scans of every protocol make a record large, not this large
MAX_MEMBERS = 1_000_000
_CHUNK = 1024 * 1024


class RecordUnreadable(RuntimeError):
    """The record cannot be read at all (missing, not a record, unsafe archive, download
    failed); the message says what to do.  Nothing could be checked."""


@dataclass(frozen=True)
class RecordFiles:
    """Every regular file of a record directory, by its path relative to the record."""

    directory: Path
    source: str  # what the user gave (path or URL), for the report
    paths: dict[str, Path]  # "messages/uik-1.jsonl" -> absolute path
    links: tuple[str, ...]  # entries that are symlinks or not regular files (refused)

    def read(self, name: str) -> bytes:
        return self.paths[name].read_bytes()

    def sha256(self, name: str) -> str:
        """Streamed: scans of paper protocols can be large, the record has thousands."""
        h = hashlib.sha256()
        with self.paths[name].open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def size(self, name: str) -> int:
        return self.paths[name].stat().st_size


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def locate(source: str, workdir: Path, *, timeout: float = 120.0) -> Path:
    """The record directory for `source`: itself, or an archive (local or downloaded)
    extracted safely into `workdir`."""
    if is_url(source):
        archive = download(source, workdir / "download", timeout=timeout)
        return record_root(extract(archive, workdir / "record"))
    path = Path(source)
    if path.is_dir():
        return path
    if path.is_file():
        return record_root(extract(path, workdir / "record"))
    raise RecordUnreadable(f"{source}: no such directory, archive or http(s) URL")


def load(directory: Path, source: str) -> RecordFiles:
    """List the record's files (nothing is read yet); symlinks are listed apart, never
    followed: a record is plain files."""
    if not (directory / MANIFEST).is_file():
        raise RecordUnreadable(
            f"{directory} holds no {MANIFEST}: give the directory `shailoo central "
            "export-record` wrote, its archive, or the results site's address"
        )
    paths: dict[str, Path] = {}
    links: list[str] = []
    for path in sorted(_walk(directory)):
        rel = path.relative_to(directory).as_posix()
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            paths[rel] = path
        else:
            links.append(rel)
    return RecordFiles(directory, source, paths, tuple(links))


def _walk(directory: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(directory, followlinks=False):
        base = Path(root)
        for d in list(dirs):
            if (base / d).is_symlink():
                dirs.remove(d)
                yield base / d
        for f in files:
            yield base / f


# --- downloading ---------------------------------------------------------------------------


def candidate_urls(url: str) -> list[str]:
    """The archive URL itself, or the site's record paths below a base URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.path.lower().endswith(ARCHIVE_SUFFIXES):
        return [url]
    base = urllib.parse.urlunsplit(
        (parts.scheme, parts.netloc, parts.path.rstrip("/") + "/", "", "")
    )
    return [urllib.parse.urljoin(base, p) for p in SITE_PATHS]


def download(url: str, into: Path, *, timeout: float = 120.0) -> Path:
    """Fetch the record archive with urllib (no redirect to another scheme: urllib only
    follows http(s)); refuses more than MAX_ARCHIVE_BYTES."""
    into.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    for candidate in candidate_urls(url):
        request = urllib.request.Request(candidate, headers={"User-Agent": "shailoo-verify/1"})
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                target = into / "record.archive"
                _copy_capped(response, target, MAX_ARCHIVE_BYTES, candidate)
                return target
        except urllib.error.HTTPError as e:
            tried.append(f"{candidate}: HTTP {e.code}")
            if e.code == 404:
                continue
            break
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise RecordUnreadable(f"cannot download {candidate}: {reason}") from None
    raise RecordUnreadable("no election record found at " + "; ".join(tried))


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only (urllib would also follow one to ftp)."""

    def redirect_request(  # type: ignore[no-untyped-def]
        self, req, fp, code, msg, headers, newurl
    ):
        if not is_url(newurl):
            raise RecordUnreadable(f"the site redirected to {newurl!r}: refused (http(s) only)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects)


def _copy_capped(src: IO[bytes], target: Path, cap: int, what: str) -> int:
    total = 0
    with target.open("wb") as out:
        while chunk := src.read(_CHUNK):
            total += len(chunk)
            if total > cap:
                raise RecordUnreadable(f"{what} is larger than {cap} bytes: refused")
            out.write(chunk)
    return total


# --- extracting ----------------------------------------------------------------------------


def extract(archive: Path, into: Path) -> Path:
    """Extract a tar(.gz) or zip archive member by member into `into` (a new directory)."""
    into.mkdir(parents=True, exist_ok=False)
    with archive.open("rb") as f:
        magic = f.read(4)
    if magic[:4] == b"PK\x03\x04":
        _extract_zip(archive, into)
    elif magic[:2] == b"\x1f\x8b" or tarfile.is_tarfile(archive):
        _extract_tar(archive, into)
    else:
        raise RecordUnreadable(f"{archive.name} is neither a tar.gz nor a zip archive")
    return into


def safe_member_path(into: Path, name: str) -> Path:
    """Where member `name` goes inside `into`; RecordUnreadable if it would go elsewhere."""
    if "\x00" in name or "\\" in name:
        raise RecordUnreadable(f"archive member {name!r} has a forbidden character: refused")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and ":" in pure.parts[0]):
        raise RecordUnreadable(f"archive member {name!r} points outside the archive: refused")
    parts = [p for p in pure.parts if p not in ("", ".")]
    target = into.joinpath(*parts) if parts else into
    root = into.resolve()
    if target.resolve() != root and root not in target.resolve().parents:
        raise RecordUnreadable(f"archive member {name!r} points outside the archive: refused")
    return target


def _extract_tar(archive: Path, into: Path) -> None:
    total = 0
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for n, member in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise RecordUnreadable(f"archive has more than {MAX_MEMBERS} members")
                target = safe_member_path(into, member.name)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isfile():
                    raise RecordUnreadable(
                        f"archive member {member.name!r} is a link or device, not a file: refused"
                    )
                total += member.size
                if total > MAX_ARCHIVE_BYTES:
                    raise RecordUnreadable(f"archive expands to over {MAX_ARCHIVE_BYTES} bytes")
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("xb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
    except (tarfile.TarError, EOFError, OSError) as e:
        if isinstance(e, FileExistsError):
            raise RecordUnreadable(f"archive holds {e.filename} twice: refused") from None
        raise RecordUnreadable(f"{archive.name} is not a readable tar archive: {e}") from None


def _extract_zip(archive: Path, into: Path) -> None:
    total = 0
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            if len(infos) > MAX_MEMBERS:
                raise RecordUnreadable(f"archive has more than {MAX_MEMBERS} members")
            for info in infos:
                target = safe_member_path(into, info.filename)
                mode = info.external_attr >> 16
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                kind = stat.S_IFMT(mode)  # 0 when the zip was not made on Unix
                if kind and kind != stat.S_IFREG:
                    raise RecordUnreadable(
                        f"archive member {info.filename!r} is a link or device: refused"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as source, target.open("xb") as out:
                    while chunk := source.read(_CHUNK):  # counted as read: a bomb stops early
                        total += len(chunk)
                        if total > MAX_ARCHIVE_BYTES:
                            raise RecordUnreadable(
                                f"archive expands to over {MAX_ARCHIVE_BYTES} bytes"
                            )
                        out.write(chunk)
    except (zipfile.BadZipFile, OSError) as e:
        if isinstance(e, FileExistsError):
            raise RecordUnreadable(f"archive holds {e.filename} twice: refused") from None
        raise RecordUnreadable(f"{archive.name} is not a readable zip archive: {e}") from None


def record_root(extracted: Path) -> Path:
    """The directory holding MANIFEST.json: the archive's top level, or its one directory
    (whatever it is named)."""
    if (extracted / MANIFEST).is_file():
        return extracted
    entries = [p for p in extracted.iterdir()]
    dirs = [p for p in entries if p.is_dir()]
    if len(entries) == 1 and len(dirs) == 1 and (dirs[0] / MANIFEST).is_file():
        return dirs[0]
    raise RecordUnreadable(
        f"the archive holds no {MANIFEST} at its top or in its one top-level directory"
    )
