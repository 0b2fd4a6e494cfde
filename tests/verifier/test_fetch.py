"""Records from a URL or an archive: downloaded with urllib, extracted without ever
writing outside the temporary directory."""

from __future__ import annotations

import io
import stat
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from central.db import Database
from tests.verifier.support import Authority, build_election, export, run, run_full, write_root
from verifier import record as R
from verifier.cli import verify


@pytest.fixture
def record(db: Database, tmp_path: Path) -> tuple[Path, Authority]:
    auth = build_election(db, tmp_path)
    return export(db, auth, tmp_path / "record"), auth


def _tar_gz(record: Path, out: Path, top: str = "election-record-kg-test-v1") -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        tar.add(record, arcname=top)
    return out


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static web server over a directory: (base URL, its document root)."""
    docroot = tmp_path / "site"
    docroot.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(docroot)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", docroot
    finally:
        server.shutdown()
        server.server_close()


def test_site_base_url_is_downloaded_from_the_record_path_and_verified(
    record: tuple[Path, Authority],
    site: tuple[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, auth = record
    base, docroot = site
    _tar_gz(path, docroot / "api" / "v1" / "record.tar.gz")
    root = write_root(auth, tmp_path / "root.pem")
    code, out = run([base + "/", "--root", str(root)], capsys)
    assert code == 0, out
    assert f"record    {base}/" in out and "VERDICT: VERIFIED" in out


def test_the_older_site_path_and_a_direct_archive_url_both_work(
    record: tuple[Path, Authority], site: tuple[str, Path]
) -> None:
    path, auth = record
    base, docroot = site
    _tar_gz(path, docroot / "api" / "record.tar.gz", top="anything")
    assert verify(base, root=auth.root).ok
    _tar_gz(path, docroot / "downloads" / "rec.tar.gz", top="x")
    assert verify(f"{base}/downloads/rec.tar.gz", root=auth.root).ok


def test_no_record_at_the_url_exits_2(
    site: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    base, _ = site
    code, out, err = run_full([base], capsys)
    assert code == 2 and out == ""
    assert "no election record found" in err and "/api/v1/record.tar.gz: HTTP 404" in err


def test_local_zip_and_tar_archives_verify(record: tuple[Path, Authority], tmp_path: Path) -> None:
    path, auth = record
    assert verify(str(_tar_gz(path, tmp_path / "r.tar.gz")), root=auth.root).ok
    z = tmp_path / "r.zip"
    with zipfile.ZipFile(z, "w") as out:
        for f in sorted(path.rglob("*")):
            if f.is_file():
                out.write(f, f"top/{f.relative_to(path).as_posix()}")
    assert verify(str(z), root=auth.root).ok


def _evil_tar(path: Path, member: tarfile.TarInfo, data: bytes = b"x") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        manifest = tarfile.TarInfo("rec/MANIFEST.json")
        manifest.size = 2
        tar.addfile(manifest, io.BytesIO(b"{}"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


@pytest.mark.parametrize(
    "name", ["../escaped.txt", "rec/../../escaped.txt", "/tmp/escaped-abs.txt"]
)
def test_archive_members_outside_the_archive_are_refused(tmp_path: Path, name: str) -> None:
    archive = _evil_tar(tmp_path / "evil.tar.gz", tarfile.TarInfo(name))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(R.RecordUnreadable, match="outside the archive"):
        R.locate(str(archive), work)
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/escaped-abs.txt").exists()


def test_links_in_an_archive_are_refused(tmp_path: Path) -> None:
    link = tarfile.TarInfo("rec/election.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = _evil_tar(tmp_path / "link.tar.gz", link)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(R.RecordUnreadable, match="link or device"):
        R.locate(str(archive), work)


def test_zip_member_with_traversal_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as out:
        out.writestr("MANIFEST.json", b"{}")
        out.writestr("../escaped.txt", b"x")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(R.RecordUnreadable, match="outside the archive"):
        R.locate(str(z), work)
    assert not (tmp_path / "escaped.txt").exists()


def test_candidate_urls_for_a_base_and_for_an_archive() -> None:
    assert R.candidate_urls("https://results.shailoo.kg") == [
        "https://results.shailoo.kg/api/v1/record.tar.gz",
        "https://results.shailoo.kg/api/record.tar.gz",
    ]
    assert R.candidate_urls("https://x.kg/sub/") == [
        "https://x.kg/sub/api/v1/record.tar.gz",
        "https://x.kg/sub/api/record.tar.gz",
    ]
    assert R.candidate_urls("https://x.kg/a/rec.zip") == ["https://x.kg/a/rec.zip"]


def test_zip_member_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as out:
        out.writestr("MANIFEST.json", b"{}")
        link = zipfile.ZipInfo("election.json")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        out.writestr(link, "/etc/passwd")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(R.RecordUnreadable, match="link or device"):
        R.locate(str(z), work)
