"""Settings of the whole test session.

tools/run_tests.sh runs the tests in one pytest-xdist worker per core (``--dist loadgroup``):

- the tests of one file go to one worker, so a file's module-scoped fixture (a trained tiny
  model, say) is made once; tests marked ``xdist_group(NAME)`` go to one worker with the other
  tests of NAME across files (they share a session fixture, e.g. the finished mini recipe);
- each worker, and every process it starts (ESPnet trainings, decoders, recipe stages), gets
  its share of the cores as torch threads (OMP_NUM_THREADS): torch's default, every core in
  every worker, oversubscribes the cores, and small models then run several times slower
  than with one thread per core.
"""
import os

import pytest


def pytest_configure(config):
    worker = getattr(config, "workerinput", None)
    if worker is None or "OMP_NUM_THREADS" in os.environ:
        return  # a plain pytest run, or threads the caller chose
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // int(worker["workercount"]))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
