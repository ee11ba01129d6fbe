"""Settings of the whole test session.

tools/run_tests.sh runs the tests in one pytest-xdist worker per core, test by test
(``--dist load``; a module-scoped fixture is made once on each worker that runs a test of its
file: measured on 2 cores, this finished sooner than whole files per worker, whose long files
leave one worker idle at the end). Each worker, and every process it starts (ESPnet
trainings, decoders, recipe stages), gets its share of the cores as torch threads
(OMP_NUM_THREADS): torch's default, every core in every worker, oversubscribes the cores, and
small models then run several times slower than with one thread per core.
"""
import os


def pytest_configure(config):
    worker = getattr(config, "workerinput", None)
    if worker is None or "OMP_NUM_THREADS" in os.environ:
        return  # a plain pytest run, or threads the caller chose
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // int(worker["workercount"]))
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
