"""A finished multi-process training leaves no gloo worker thread behind (espnet_dynenc.distributed).

Each case runs in a fresh interpreter: whether ``torch.distributed.nn`` is imported before or
after the process group exists is what decides whether the group can be destroyed.
"""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys, tempfile, torch
    import torch.distributed as dist
    from espnet_dynenc.distributed import (GLOO_WORKER_THREAD, close_process_group,
                                           prepare_process_group_teardown, thread_names)
    if sys.argv[1] == "prepared":
        prepare_process_group_teardown()
    dist.init_process_group("gloo", init_method="file://" + tempfile.mktemp(), rank=0, world_size=1)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 4))  # imports torch.distributed.nn
    model(torch.randn(2, 4)).sum().backward()
    del model
    t = torch.ones(3)
    dist.all_reduce(t)
    print("before", thread_names().count(GLOO_WORKER_THREAD))
    close_process_group()
    print("after", thread_names().count(GLOO_WORKER_THREAD))
""")


def run(mode: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_closing_a_prepared_process_group_joins_its_worker_threads():
    proc = run("prepared")
    assert proc.stdout.split() == ["before", "2", "after", "0"]
    assert "outlive" not in proc.stderr


def test_a_group_captured_by_torch_distributed_nn_keeps_its_threads_and_is_reported():
    """The mechanism the teardown relies on: imported after the group exists,
    torch.distributed.nn holds the group in its functions' defaults, so it is never freed."""
    proc = run("unprepared")
    assert proc.stdout.split() == ["before", "2", "after", "2"]
    assert "2 gloo worker thread(s) outlive the destroyed process group" in proc.stderr
