"""Print training progress from a growing ESPnet train.log (asr.sh stage 11 runs it beside training).

    python -m espnet_dynenc.bin.training_progress --log exp/asr_x/train.log --watch_pid $$ \\
        [--prefix "Stage 11: "] [--interval 30]

One console line per epoch started (elapsed time, estimate of the rest), at most one per
``--interval`` seconds within an epoch, one per epoch finished (validation scores), and
the end, resumption or traceback of the training. It stops when ``--watch_pid`` exits or
when it gets SIGTERM/SIGINT, after printing what the log holds by then. Only a log
created after it starts is read (ESPnet's launcher moves an older one aside).
"""
import argparse
import signal
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.training_progress import ProgressFormatter, follow, process_alive


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", type=Path, required=True, help="the train.log to follow")
    parser.add_argument("--watch_pid", type=int, required=True, help="stop when this process has exited")
    parser.add_argument("--prefix", default="", help="text put before every line")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between progress lines within an epoch")
    return parser


@entry_point("training_progress")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    if args.interval < 0:
        raise ValueError(f"--interval must be >= 0, got {args.interval}")
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(True))

    def emit(text: str) -> None:
        print(text, flush=True)

    follow(args.log, ProgressFormatter(prefix=args.prefix, interval=args.interval),
           lambda: not stop and process_alive(args.watch_pid), emit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
