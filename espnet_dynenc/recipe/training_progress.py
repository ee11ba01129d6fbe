"""Training progress on the console: what ESPnet's trainer writes into train.log, condensed.

asr.sh starts training through ESPnet's launcher, which sends everything the trainer
prints into ``<exp>/train.log``; the console would stay silent for the whole stage. The
follower reads that log as it grows and prints one line per event a person watching a
long stage wants: an epoch started (with elapsed time and an estimate of the rest), a
progress line every ``interval`` seconds within an epoch, an epoch finished (with its
validation scores), training finished or resumed, and any traceback.

:class:`ProgressFormatter` turns log lines into console lines (pure, tested on its own);
:func:`follow` feeds it a growing file.
"""
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

_EPOCH_STARTED = re.compile(r"INFO: (\d+)/(\d+)epoch started")
_BATCHES = re.compile(r"INFO: (\d+)epoch:train:(\d+)-(\d+)batch: (.*)")
_RESULTS = re.compile(r"INFO: (\d+)epoch results: (.*)")
_FINISHED = re.compile(r"INFO: The training was finished at (\d+) epochs")
_RESUMED = re.compile(r"INFO: The training was resumed using (\S+)")
# torch.distributed's error handler prefixes every line of a rank's traceback
_RANK_PREFIX = re.compile(r"^\[rank(\d+)\]: ?")
# validation scores worth a console line, in this order when present
_VALID_KEYS = ("cer_ctc", "loss_ctc", "loss", "acc")


def format_seconds(seconds: float) -> str:
    """``75`` -> ``1m15s``, ``3725`` -> ``1h02m05s``."""
    seconds = int(round(max(seconds, 0.0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _valid_scores(results: str) -> str:
    """The validation part of an ``epoch results`` line, reduced to the main scores."""
    match = re.search(r"\[valid\] (.*?)(?:, \[|$)", results)
    if not match:
        return ""
    scores = dict(item.split("=", 1) for item in match.group(1).split(", ") if "=" in item)
    keys = [k for k in _VALID_KEYS if k in scores]
    keys += sorted(k for k in scores if k.startswith("cer_ctc_"))
    return ", ".join(f"{k} {scores[k]}" for k in keys)


@dataclass
class ProgressFormatter:
    """Console lines from train.log lines. ``clock`` gives seconds (for tests)."""

    prefix: str = ""
    interval: float = 30.0
    clock: Callable[[], float] = time.monotonic
    start: float = field(default=None)
    epoch: int = 0
    max_epoch: int = 0
    first_epoch: Optional[int] = None
    epoch_start: Optional[float] = None
    last_batch_line: float = float("-inf")
    in_traceback: bool = False

    def __post_init__(self):
        if self.start is None:
            self.start = self.clock()

    def _say(self, text: str) -> List[str]:
        elapsed = format_seconds(self.clock() - self.start)
        return [f"{self.prefix}{text} [elapsed {elapsed}]"]

    def _eta(self) -> str:
        """Remaining time from the mean duration of the epochs finished in this run."""
        if self.first_epoch is None or self.epoch <= self.first_epoch or not self.max_epoch:
            return ""
        done = self.epoch - self.first_epoch
        per_epoch = (self.clock() - self.start) / done
        return f", ETA {format_seconds(per_epoch * (self.max_epoch - self.epoch + 1))}"

    def feed(self, line: str) -> List[str]:
        line = line.rstrip("\n")
        rank = _RANK_PREFIX.match(line)
        if rank:
            line = line[rank.end():]
        if self.in_traceback:
            if line.startswith((" ", "\t", "Traceback")) or not line.strip():
                return [f"{self.prefix}  {line}"] if line.strip() else []
            self.in_traceback = False
            return [f"{self.prefix}  {line}"]
        if line.startswith("Traceback (most recent call last)"):
            self.in_traceback = True
            where = f" (rank {rank.group(1)})" if rank else ""
            return [f"{self.prefix}error in training: {line}{where}"]
        match = _EPOCH_STARTED.search(line)
        if match:
            self.epoch, self.max_epoch = int(match.group(1)), int(match.group(2))
            if self.first_epoch is None:
                self.first_epoch = self.epoch
            self.epoch_start = self.clock()
            self.last_batch_line = self.clock()
            return self._say(f"epoch {self.epoch}/{self.max_epoch} started{self._eta()}")
        match = _BATCHES.search(line)
        if match:
            if self.clock() - self.last_batch_line < self.interval:
                return []
            self.last_batch_line = self.clock()
            loss = re.search(r"(?:^|, )loss=([^,]+)", match.group(4))
            extra = f", train loss {loss.group(1)}" if loss else ""
            return self._say(f"epoch {match.group(1)}/{self.max_epoch or '?'}: {match.group(3)} batches done{extra}")
        match = _RESULTS.search(line)
        if match:
            took = format_seconds(self.clock() - self.epoch_start) if self.epoch_start is not None else "?"
            scores = _valid_scores(match.group(2))
            return self._say(f"epoch {match.group(1)}/{self.max_epoch or '?'} done in {took}"
                             + (f": valid {scores}" if scores else ""))
        match = _FINISHED.search(line)
        if match:
            return self._say(f"training finished after {match.group(1)} epochs")
        match = _RESUMED.search(line)
        if match:
            return self._say(f"training resumed from {match.group(1)}")
        return []


def _inode(path: Path) -> Optional[int]:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def follow(path: Path, formatter: ProgressFormatter, keep_going: Callable[[], bool],
           emit: Callable[[str], None], poll: float = 0.5) -> None:
    """Print what ``formatter`` makes of the lines written to ``path`` while ``keep_going()``.

    A file already there when following starts is an earlier run's log (ESPnet's launcher
    moves it aside and starts a new one), so only a file created afterwards is read. When
    ``keep_going()`` turns false, what the log holds by then is read to the end.
    """
    stale = _inode(path)
    handle = None
    pending = ""
    try:
        while True:
            running = keep_going()
            if handle is None:
                inode = _inode(path)
                if inode is not None and inode != stale:
                    handle = open(path, encoding="utf-8", errors="replace")
            if handle is not None:
                pending += handle.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    for out in formatter.feed(line):
                        emit(out)
            if not running:
                if pending:
                    for out in formatter.feed(pending):
                        emit(out)
                return
            time.sleep(poll)
    finally:
        if handle is not None:
            handle.close()


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
