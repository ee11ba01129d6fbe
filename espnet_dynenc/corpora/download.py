"""Resumable, verified download and extraction of corpus archives.

Corpus archives are large (LibriSpeech's train-other-500 is about 30 GB), so every step
can be interrupted and restarted without losing work or leaving output that looks
finished:

* bytes go to ``<archive>.part``; a later call asks the server for the rest with an HTTP
  ``Range`` request, and starts over only when the server ignores it;
* the archive gets its final name only after its size and checksum (when known) match;
* extraction goes to a temporary folder that is merged into the destination at the end,
  and a ``<archive>.complete`` marker is written last; with the marker present, the whole
  archive is skipped.
"""
import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Tuple

from espnet_dynenc.atomic_files import write_text_atomically

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
COMPLETE_SUFFIX = ".complete"
PART_SUFFIX = ".part"
USER_AGENT = "espnet_dynenc-corpus-download/1"


class DownloadError(RuntimeError):
    """A download or extraction that could not be completed; the message says why."""


class _TransferInterrupted(DownloadError):
    """The connection ended early; the ``.part`` file holds what arrived and can be resumed."""


def complete_marker(archive: Path) -> Path:
    """Path of the marker that says ``archive`` was downloaded, verified and extracted."""
    return archive.with_name(archive.name + COMPLETE_SUFFIX)


def fetch_and_extract(
    url: str,
    download_dir: os.PathLike,
    checksum: Optional[str] = None,
    size: Optional[int] = None,
    timeout: float = 60.0,
    retries: int = 5,
    retry_pause: float = 2.0,
    remove_archive: bool = False,
) -> Path:
    """Download ``url`` into ``download_dir``, verify it, extract it there; return the archive path.

    Skipped entirely when the archive's ``.complete`` marker exists. ``checksum`` is
    ``"md5:<hex>"`` or ``"sha256:<hex>"``; ``size`` is the archive size in bytes.
    """
    directory = Path(download_dir)
    archive = directory / _archive_name(url)
    marker = complete_marker(archive)
    if marker.is_file():
        logger.info("%s: already downloaded and extracted (%s exists)", url, marker)
        return archive
    directory.mkdir(parents=True, exist_ok=True)
    download(url, archive, checksum, size, timeout=timeout, retries=retries, retry_pause=retry_pause)
    extract_tar(archive, directory)
    write_text_atomically(marker, f"{url}\n")  # exists only when whole
    if remove_archive:
        archive.unlink()
    return archive


def download(
    url: str,
    dest: os.PathLike,
    checksum: Optional[str] = None,
    size: Optional[int] = None,
    timeout: float = 60.0,
    retries: int = 5,
    retry_pause: float = 2.0,
) -> Path:
    """Download ``url`` to ``dest``, resuming a previous ``.part`` file; return ``dest``.

    A connection that breaks or times out (``timeout`` seconds without data) is retried
    ``retries`` times, each retry resuming where the last one stopped, after a pause that
    doubles from ``retry_pause`` seconds. An existing ``dest`` is verified and kept.
    """
    dest = Path(dest)
    algorithm, digest = _parse_checksum(checksum)
    if dest.is_file():
        _verify(dest, dest, algorithm, digest, size)
        return dest
    part = dest.with_name(dest.name + PART_SUFFIX)
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, size, timeout)
            break
        except (_TransferInterrupted, OSError, http.client.HTTPException) as err:
            if not _worth_retrying(err) or attempt == retries:
                raise DownloadError(f"{url}: download failed: {err}") from err
            logger.warning("%s: %s; retrying (%d/%d)", url, err, attempt + 1, retries)
            time.sleep(min(retry_pause * 2**attempt, 60.0))
    _verify(part, dest, algorithm, digest, size, discard_on_mismatch=True)
    os.replace(part, dest)
    return dest


def _worth_retrying(err: Exception) -> bool:
    """Broken connections and server-side (5xx) errors may pass; 404 and the like will not."""
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500
    return True


def _transfer(url: str, part: Path, size: Optional[int], timeout: float) -> None:
    """Fetch what ``part`` lacks; raise ``_TransferInterrupted`` when the stream ends early."""
    offset = part.stat().st_size if part.is_file() else 0
    if size is not None and offset > size:
        logger.warning("%s: is larger than the expected %d bytes; starting over", part, size)
        offset = 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            _handle_unsatisfiable_range(url, part, offset, size, err)
            return
        raise
    with response:
        offset = _resume_offset(url, response, offset)
        expected = _content_length(response)
        received = _stream_to_file(response, part, append=offset > 0)
    if expected is not None and received < expected:
        raise _TransferInterrupted(f"connection closed after {received} of {expected} bytes")


def _handle_unsatisfiable_range(
    url: str, part: Path, offset: int, size: Optional[int], err: urllib.error.HTTPError
) -> None:
    """HTTP 416 after a Range request: the ``.part`` file is either whole already or wrong."""
    total = _total_from_content_range(err.headers.get("Content-Range", ""))
    if offset == (total if total is not None else size):
        logger.info("%s: the partial file already holds all %d bytes", url, offset)
        return
    part.unlink()
    raise _TransferInterrupted(
        f"server refused to resume at byte {offset} (file size {total}); starting over"
    )


def _resume_offset(url: str, response: http.client.HTTPResponse, offset: int) -> int:
    """Where the response body starts: ``offset`` for a matching 206, 0 when the server restarts."""
    if response.status == 206:
        start = _start_from_content_range(response.headers.get("Content-Range", ""))
        if start != offset:
            raise DownloadError(
                f"{url}: asked to resume at byte {offset}, the server answered from byte {start}"
            )
        logger.info("%s: resuming at byte %d", url, offset)
        return offset
    if offset:
        logger.warning("%s: the server does not resume downloads; starting over", url)
    return 0


def _stream_to_file(response: http.client.HTTPResponse, part: Path, append: bool) -> int:
    """Copy the response body into ``part``; return the number of bytes written.

    Every chunk is flushed as it arrives, so an interruption keeps everything received.
    """
    received = 0
    with open(part, "ab" if append else "wb") as out:
        while True:
            try:
                chunk = response.read(CHUNK_BYTES)
            except http.client.IncompleteRead as err:
                out.write(err.partial)
                received += len(err.partial)
                break
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
    return received


def _content_length(response: http.client.HTTPResponse) -> Optional[int]:
    value = response.headers.get("Content-Length")
    return int(value) if value and value.isdigit() else None


def _start_from_content_range(value: str) -> Optional[int]:
    """First byte of ``Content-Range: bytes <start>-<end>/<total>``."""
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _total_from_content_range(value: str) -> Optional[int]:
    """Total size from ``Content-Range: bytes */<total>`` (or ``.../<total>``)."""
    total = value.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _parse_checksum(checksum: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """Split ``"md5:<hex>"`` / ``"sha256:<hex>"``; reject anything else by name."""
    if not checksum:
        return None, None
    algorithm, _, digest = checksum.partition(":")
    if algorithm not in ("md5", "sha256") or not digest:
        raise ValueError(f"checksum '{checksum}' must look like 'md5:<hex>' or 'sha256:<hex>'")
    return algorithm, digest.lower()


def _verify(
    path: Path,
    name: Path,
    algorithm: Optional[str],
    digest: Optional[str],
    size: Optional[int],
    discard_on_mismatch: bool = False,
) -> None:
    """Check size and checksum of ``path`` (reported as ``name``); a bad file is deleted if asked."""
    problem = None
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        problem = f"has {actual_size} bytes, expected {size}"
    elif algorithm is not None:
        actual = file_digest(path, algorithm)
        if actual != digest:
            problem = f"{algorithm} is {actual}, expected {digest}"
    if problem is None:
        return
    if discard_on_mismatch:
        path.unlink()
        problem += "; the download was deleted, run again to fetch it anew"
    else:
        problem += "; delete it to download it again"
    raise DownloadError(f"{name}: {problem}")


def file_digest(path: os.PathLike, algorithm: str) -> str:
    """Hex digest of a file, read in chunks so that archives of any size fit in memory."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def extract_tar(archive: os.PathLike, dest_dir: os.PathLike) -> None:
    """Extract a (compressed) tar archive into ``dest_dir``.

    Members go to a temporary folder first and are merged into ``dest_dir`` only after the
    whole archive was read, so a broken archive leaves nothing behind. Several archives may
    share a top folder (every LibriSpeech part unpacks into ``LibriSpeech/``): merging
    keeps what earlier archives put there.
    """
    archive, dest = Path(archive), Path(dest_dir)
    staging = dest / f".{archive.name}.extracting"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            _extract_members_safely(tar, staging, archive)
    except (tarfile.TarError, EOFError, OSError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{archive}: cannot extract: {err}") from err
    _merge_tree(staging, dest)
    shutil.rmtree(staging)


def _extract_members_safely(tar: tarfile.TarFile, staging: Path, archive: Path) -> None:
    """Extract refusing members that would land outside ``staging`` (absolute, ``..``, links)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(staging, filter="data")
        return
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts or member.issym() or member.islnk():
            raise DownloadError(f"{archive}: refusing unsafe member '{member.name}'")
    tar.extractall(staging)


def _merge_tree(src: Path, dst: Path) -> None:
    """Move everything under ``src`` into ``dst``, descending into folders both have."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if entry.is_dir() and target.is_dir():
            _merge_tree(entry, target)
        elif entry.is_dir() and target.exists():
            raise DownloadError(f"{target}: is a file, but the archive holds a folder there")
        else:
            os.replace(entry, target)


def _archive_name(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    if not name:
        raise ValueError(f"cannot tell an archive file name from the URL '{url}'")
    return name

