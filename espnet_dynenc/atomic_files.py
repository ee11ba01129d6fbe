"""Files that are complete or absent: written under a temporary name, then renamed.

A reader (a later recipe stage, a resumed run) never sees half a file, and an
interrupted writer leaves only a hidden ``.<name>.tmp<suffix>`` behind. The temporary
name keeps the suffix, so writers that go by it (matplotlib, ``numpy.save``) still work.
A directory whose files belong together (a converted model: its config, weights and the
statistics they name) is built under a hidden name and renamed as a whole.
"""
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Union

PathLike = Union[str, os.PathLike]


def replace_atomically(path: PathLike, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)``, then rename the temporary file to ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    write(tmp)
    os.replace(tmp, path)


def write_text_atomically(path: PathLike, text: str) -> None:
    replace_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_lines_atomically(path: PathLike, lines: Iterable[str]) -> None:
    """One line per item, each ending in a newline (streamed, for long Kaldi files)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")

    replace_atomically(path, write)


def write_directory_atomically(path: PathLike, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_dir)`` on a new hidden sibling directory, then rename it to ``path``.

    ``path`` must not exist: a directory is not replaced (a reader could be inside it). A
    writer that fails leaves nothing: its directory is removed and the error goes on.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path} exists")
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)  # left by a writer that was killed
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
