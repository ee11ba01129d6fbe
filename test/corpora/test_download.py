"""Resumable, verified download and extraction, against an HTTP server on 127.0.0.1."""
import hashlib
import io
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest

from espnet_dynenc.bin import prepare_librispeech
from espnet_dynenc.corpora.download import (
    DownloadError,
    complete_marker,
    download,
    extract_tar,
    fetch_and_extract,
)

from .conftest import MiniLibriSpeech, read_lines

pytestmark = pytest.mark.timeout(60)


@dataclass
class ServerBehaviour:
    """What the test server does; every request is logged as (path, Range header, status)."""

    files: Dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    cut_first_response_after: Optional[int] = None
    stall_seconds: float = 0.0
    log: List[Tuple[str, Optional[str], int]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    behaviour: ServerBehaviour

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        b = self.behaviour
        body = b.files.get(self.path)
        range_header = self.headers.get("Range")
        if body is None:
            self._reply(404, b"not found", range_header)
            return
        start = int(range_header[len("bytes=") :].rstrip("-")) if range_header and b.honour_range else 0
        if start >= len(body) and range_header:
            self._reply(416, b"", range_header, {"Content-Range": f"bytes */{len(body)}"})
            return
        status = 206 if start else 200
        headers = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if start else {}
        payload = body[start:]
        first_request = not any(path == self.path for path, _, _ in b.log)
        if first_request and b.cut_first_response_after is not None:
            # Promise the whole body, send part of it, hang up: a dropped connection.
            self._reply(status, payload, range_header, headers, send=b.cut_first_response_after)
            return
        self._reply(status, payload, range_header, headers)

    def _reply(self, status, payload, range_header, headers=None, send=None) -> None:
        self.behaviour.log.append((self.path, range_header, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.behaviour.stall_seconds:
            self.behaviour.release.wait(self.behaviour.stall_seconds)
        self.wfile.write(payload if send is None else payload[:send])
        self.wfile.flush()
        if send is not None:
            self.close_connection = True

    def log_message(self, *args) -> None:
        """Keep test output quiet."""


@pytest.fixture
def server() -> Iterator[Tuple[str, ServerBehaviour]]:
    """A threaded HTTP server on a free local port; yields its base URL and behaviour."""
    behaviour = ServerBehaviour()
    handler = type("Handler", (_Handler,), {"behaviour": behaviour})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    behaviour.release.set()
    httpd.shutdown()
    httpd.server_close()


def make_tar_gz(members: Dict[str, bytes]) -> bytes:
    """A tar.gz holding the given files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# Random bytes do not compress, so the archive is big enough to be cut in the middle.
PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
ARCHIVE = make_tar_gz({"pkg/readme.txt": b"hello\n", "pkg/sub/data.bin": PAYLOAD})


def serve_archive(behaviour: ServerBehaviour, name: str = "/pkg.tar.gz", data: bytes = ARCHIVE) -> str:
    behaviour.files[name] = data
    return name


def test_fetch_and_extract_then_skip_when_complete(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    sha256 = hashlib.sha256(ARCHIVE).hexdigest()

    archive = fetch_and_extract(base + path, tmp_path, checksum=f"sha256:{sha256}", size=len(ARCHIVE))

    assert archive == tmp_path / "pkg.tar.gz"
    assert archive.read_bytes() == ARCHIVE
    assert (tmp_path / "pkg" / "readme.txt").read_bytes() == b"hello\n"
    assert (tmp_path / "pkg" / "sub" / "data.bin").read_bytes() == PAYLOAD
    assert read_lines(complete_marker(archive)) == [base + path]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg", "pkg.tar.gz", "pkg.tar.gz.complete"]
    assert behaviour.log == [(path, None, 200)]

    fetch_and_extract(base + path, tmp_path, checksum=f"sha256:{sha256}")
    assert len(behaviour.log) == 1, "a completed archive must not be fetched again"


def test_remove_archive_keeps_marker(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    archive = fetch_and_extract(base + path, tmp_path, remove_archive=True)
    assert not archive.exists()
    assert complete_marker(archive).is_file()
    assert (tmp_path / "pkg" / "sub" / "data.bin").read_bytes() == PAYLOAD


def test_resumes_a_partial_file_with_a_range_request(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    dest = tmp_path / "pkg.tar.gz"
    (tmp_path / "pkg.tar.gz.part").write_bytes(ARCHIVE[:1000])

    download(base + path, dest, checksum=f"md5:{hashlib.md5(ARCHIVE).hexdigest()}")

    assert dest.read_bytes() == ARCHIVE
    assert not (tmp_path / "pkg.tar.gz.part").exists()
    assert behaviour.log == [(path, "bytes=1000-", 206)]


def test_dropped_connection_is_resumed_within_one_call(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    behaviour.cut_first_response_after = 50_000
    dest = tmp_path / "pkg.tar.gz"

    download(base + path, dest, size=len(ARCHIVE), retries=2, retry_pause=0)

    assert dest.read_bytes() == ARCHIVE
    assert behaviour.log == [(path, None, 200), (path, "bytes=50000-", 206)]


def test_dropped_connection_without_retries_keeps_the_partial_file(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    behaviour.cut_first_response_after = 50_000
    dest = tmp_path / "pkg.tar.gz"

    with pytest.raises(DownloadError, match="50000 of"):
        download(base + path, dest, retries=0)
    assert not dest.exists()
    assert (tmp_path / "pkg.tar.gz.part").read_bytes() == ARCHIVE[:50_000]

    download(base + path, dest, retries=0)
    assert dest.read_bytes() == ARCHIVE
    assert behaviour.log[-1] == (path, "bytes=50000-", 206)


def test_server_without_range_support_restarts_from_zero(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    behaviour.honour_range = False
    (tmp_path / "pkg.tar.gz.part").write_bytes(b"x" * 1000)

    download(base + path, tmp_path / "pkg.tar.gz")

    assert (tmp_path / "pkg.tar.gz").read_bytes() == ARCHIVE
    assert behaviour.log == [(path, "bytes=1000-", 200)]


def test_partial_file_that_is_already_whole(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    (tmp_path / "pkg.tar.gz.part").write_bytes(ARCHIVE)

    download(base + path, tmp_path / "pkg.tar.gz")

    assert (tmp_path / "pkg.tar.gz").read_bytes() == ARCHIVE
    assert behaviour.log == [(path, f"bytes={len(ARCHIVE)}-", 416)]


@pytest.mark.parametrize(
    "checksum, size, message",
    [
        ("md5:" + "0" * 32, None, "md5 is"),
        ("sha256:" + "0" * 64, None, "sha256 is"),
        (None, 12345, f"has {len(ARCHIVE)} bytes, expected 12345"),
    ],
)
def test_verification_failure_leaves_nothing_that_looks_finished(server, tmp_path, checksum, size, message):
    base, behaviour = server
    path = serve_archive(behaviour)
    with pytest.raises(DownloadError, match=message):
        fetch_and_extract(base + path, tmp_path, checksum=checksum, size=size, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_existing_archive_is_verified_not_refetched(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    (tmp_path / "pkg.tar.gz").write_bytes(b"corrupt")
    with pytest.raises(DownloadError, match="pkg.tar.gz: has 7 bytes.*delete it"):
        download(base + path, tmp_path / "pkg.tar.gz", size=len(ARCHIVE))
    assert behaviour.log == []


def test_missing_file_fails_at_once(server, tmp_path: Path):
    base, behaviour = server
    with pytest.raises(DownloadError, match="404"):
        download(base + "/nothing.tar.gz", tmp_path / "nothing.tar.gz", retries=3, retry_pause=0)
    assert len(behaviour.log) == 1, "a 404 is not worth retrying"


def test_stalled_server_times_out(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour)
    behaviour.stall_seconds = 10
    with pytest.raises(DownloadError, match="timed out"):
        download(base + path, tmp_path / "pkg.tar.gz", timeout=0.3, retries=1, retry_pause=0)
    assert len(behaviour.log) == 2


def test_bad_checksum_spelling_is_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="'crc:1234' must look like"):
        download("http://127.0.0.1:9/x.tar.gz", tmp_path / "x.tar.gz", checksum="crc:1234")


def test_broken_archive_leaves_no_partial_extraction(server, tmp_path: Path):
    base, behaviour = server
    path = serve_archive(behaviour, data=ARCHIVE[: len(ARCHIVE) // 2])
    with pytest.raises(DownloadError, match="pkg.tar.gz: cannot extract"):
        fetch_and_extract(base + path, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg.tar.gz"]


def test_archive_escaping_its_folder_is_refused(tmp_path: Path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(make_tar_gz({"../evil.txt": b"x"}))
    (tmp_path / "out").mkdir()
    with pytest.raises(DownloadError, match="evil.tar.gz: cannot extract"):
        extract_tar(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_archives_sharing_a_top_folder_are_merged(tmp_path: Path):
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    first.write_bytes(make_tar_gz({"Top/INFO.TXT": b"1", "Top/a/x.txt": b"a"}))
    second.write_bytes(make_tar_gz({"Top/INFO.TXT": b"1", "Top/b/y.txt": b"b"}))
    extract_tar(first, tmp_path / "out")
    extract_tar(second, tmp_path / "out")
    assert (tmp_path / "out" / "Top" / "a" / "x.txt").read_bytes() == b"a"
    assert (tmp_path / "out" / "Top" / "b" / "y.txt").read_bytes() == b"b"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Top"]


def test_librispeech_cli_downloads_from_a_mirror(server, mini_librispeech: MiniLibriSpeech, tmp_path: Path):
    base, behaviour = server
    part_dir = mini_librispeech.corpus / "dev-clean"
    members = {"LibriSpeech/SPEAKERS.TXT": (mini_librispeech.corpus / "SPEAKERS.TXT").read_bytes()}
    for path in sorted(part_dir.rglob("*")):
        if path.is_file():
            members[f"LibriSpeech/{path.relative_to(mini_librispeech.corpus)}"] = path.read_bytes()
    serve_archive(behaviour, "/mirror/dev-clean.tar.gz", make_tar_gz(members))
    downloads, data = tmp_path / "downloads", tmp_path / "data"
    common = ["--corpus_dir", str(downloads), "--data_dir", str(data), "--parts", "dev-clean"]
    common += ["--base_url", base + "/mirror", "--no_check_counts", "--timeout", "5"]

    # The mirror's archive is not the published one: the checksum check must catch that.
    assert prepare_librispeech.main(common + ["--download"]) == 2
    assert not (downloads / "LibriSpeech").exists()

    assert prepare_librispeech.main(common + ["--download", "--no_verify_checksums"]) == 0
    assert (downloads / "dev-clean.tar.gz.complete").is_file()
    assert read_lines(data / "dev_clean" / "text") == [
        "1272-128104-0000 MISTER QUILTER IS THE APOSTLE",
        "1272-128104-0001 NOR IS MISTER QUILTER'S MANNER",
        "84-121123-0000 GO DO YOU HEAR",
    ]
