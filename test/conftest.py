"""Settings of the whole test session.

tools/run_tests.sh runs the tests in one pytest-xdist worker per core, the tests of one file
on one worker (``--dist loadfile``), so that a file's shared fixture (a trained tiny model, the
finished mini recipe) is made once. Each worker, and every process it starts (ESPnet
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



def pytest_collection_modifyitems(config, items):
    """Files with slow tests first (run_tests.sh keeps this order: ``--no-loadscope-reorder``):
    a worker then ends the run with the quick files, not with one long file while the other
    worker waits."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: collection order otherwise
