"""This process's place in a multi-process training run (rank 0 of 1 when there is none),
and how such a process ends cleanly.

Why a gloo process must be torn down before Python exits
--------------------------------------------------------
``ProcessGroupGloo`` runs collectives on worker threads (named ``pt_gloo_runloop``). A
worker marks a collective complete *before* it drops its own reference to the work object,
so ``work.wait()`` can return, and the caller can drop its tensors, while the worker still
holds the last reference to them. Dropping a tensor that has a Python object needs the
GIL. If the main thread has meanwhile begun to finalize the interpreter, a thread that
asks for the GIL is ended with ``pthread_exit``; its unwinding runs through the work's
``noexcept`` destructor, so C++ calls ``std::terminate``: "terminate called without an
active exception", SIGABRT, and a rank that finished its training exits with status 134.
How often depends on scheduling (a loaded machine makes it likelier).

Destroying the process group joins those threads, but only once nothing references it any
more. ``torch.distributed.nn.functional`` takes the default group as a default argument
value of its functions when it is first imported, and DistributedDataParallel imports it
when it wraps a model: after that the group can never be freed and its threads run into
interpreter shutdown. :func:`prepare_process_group_teardown` imports that module while no
group exists (its defaults are then None, which means "the default group" at call time),
and :func:`close_process_group` then really destroys the group, joining its threads while
the interpreter is fully alive (torch releases the GIL in that destructor).
"""
import importlib
import logging
import os
from pathlib import Path
from typing import List

import torch

GLOO_WORKER_THREAD = "pt_gloo_runloop"


def is_distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if is_distributed() else 1


@torch.no_grad()
def append_parameter_checksum(stem: Path, update: int, module: torch.nn.Module) -> None:
    """Append ``<update> <parameters> <sum>`` for ``module`` to ``<stem>.rank<r>.txt``: the
    processes of a multi-process training hold the same parameters when their files agree."""
    params = list(module.parameters())
    total = sum(float(p.double().sum()) for p in params)
    count = sum(p.numel() for p in params)
    with open(f"{stem}.rank{rank()}.txt", "a", encoding="utf-8") as f:
        f.write(f"{update} {count} {total!r}\n")


def prepare_process_group_teardown() -> None:
    """Call before the process group is created: see the module docstring."""
    if torch.distributed.is_available():
        importlib.import_module("torch.distributed.nn")  # binds None, not a group, as its defaults


def thread_names() -> List[str]:
    """Names of this process's threads (Linux; empty elsewhere)."""
    names = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return names
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/comm", encoding="utf-8") as f:
                names.append(f.read().strip())
        except OSError:  # the thread ended meanwhile
            pass
    return names


def close_process_group() -> None:
    """After a successful run: meet the other ranks, then destroy the process group so that
    its worker threads are joined before the interpreter finalizes.

    Not for a failing run: a barrier would wait for ranks that will never arrive.
    """
    if not is_distributed():
        return
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()
    left = thread_names().count(GLOO_WORKER_THREAD)
    if left:
        logging.warning(
            "%d gloo worker thread(s) outlive the destroyed process group: something still references it "
            "(was torch.distributed.nn imported after the group was created?); the exit may abort", left)
