"""Wall-clock timing for the benchmarks, on the CPU or a CUDA device.

One owner for how ``tools/benchmark_*.py`` time a function: warm up once, then run every
function round-robin and keep the median of each, so a change in the machine's load hits
all of them alike. On a CUDA device the clock stops only after the device has finished
the queued kernels (``torch.cuda.synchronize``): without it a timing would measure how
fast Python queues work, not how long the work takes.
"""
import argparse
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch


def resolve_device(name: str) -> torch.device:
    """``--device`` of a benchmark: ``cpu``, ``cuda`` or ``cuda:N``, checked before any work."""
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device: '{name}' is not a device name (cpu, cuda, cuda:N)") from e
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: '{name}' is neither the CPU nor a CUDA device")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: torch sees no CUDA device here (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """A benchmark's ``--device`` option (read with :func:`parse_args_with_device`)."""
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")


def parse_args_with_device(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse, with ``args.device`` a checked ``torch.device``; a bad one exits as argparse does."""
    args = parser.parse_args(argv)
    try:
        args.device = resolve_device(args.device)
    except ValueError as e:
        parser.error(str(e))
    return args


def synchronize(device: torch.device) -> None:
    """Wait until ``device`` has finished its queued work (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(fns: Dict[str, Callable[[], None]], repeats: int,
                        device: torch.device = torch.device("cpu")) -> Dict[str, float]:
    """Seconds per call of each function: median of ``repeats`` round-robin runs after one warm-up each."""
    if repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {repeats}")
    for fn in fns.values():
        fn()
    synchronize(device)
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
