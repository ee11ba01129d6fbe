"""The job runners: utils/run.pl (local) and utils/slurm.pl (with fake sbatch/srun)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from recipe.conftest import TEMPLATE

RUN_PL = str(TEMPLATE / "utils" / "run.pl")
SLURM_PL = str(TEMPLATE / "utils" / "slurm.pl")


def run(command, cwd, env=None):
    return subprocess.run(command, cwd=cwd, env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


# ------------------------------------------------------------------------------ run.pl


def test_job_array_substitutes_index_in_logs_and_command(tmp_path):
    proc = run([RUN_PL, "JOB=1:3", "logs/echo.JOB.log", "echo", "job", "JOB", "|", "tr", "a-z", "A-Z"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for index in (1, 2, 3):
        log = (tmp_path / "logs" / f"echo.{index}.log").read_text().splitlines()
        assert log[0] == f"# echo job {index} | tr a-z A-Z"
        assert f"JOB {index}" in log  # the pipe ran
        assert log[-1].startswith("# Ended (code 0)")
    assert "3 of 3 done" in proc.stderr


def test_failed_job_sets_exit_status_and_names_logs(tmp_path):
    script = "exit $((JOB == 2 ? 7 : 0))"
    proc = run([RUN_PL, "JOB=1:3", "logs/f.JOB.log", "bash", "-c", script], tmp_path)
    assert proc.returncode == 7
    assert "1 / 3 failed, log is in logs/f.*.log" in proc.stderr
    assert "# Ended (code 7)" in (tmp_path / "logs/f.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "logs/f.3.log").read_text()

    single = run([RUN_PL, "logs/one.log", "false"], tmp_path)
    assert single.returncode == 1 and "job failed, log is in logs/one.log" in single.stderr


def test_at_most_max_jobs_run_at_once(tmp_path):
    # each job records how many jobs were running when it started
    script = ("mkdir -p running; touch running/JOB; ls running | wc -l > count.JOB; sleep 0.4; rm running/JOB")
    proc = run([RUN_PL, "--max_jobs_run", "2", "JOB=1:5", "logs/p.JOB.log", "bash", "-c", script], tmp_path)
    assert proc.returncode == 0, proc.stderr
    counts = [int((tmp_path / f"count.{i}").read_text()) for i in range(1, 6)]
    assert max(counts) <= 2 and max(counts) == 2


def test_a_job_stopped_and_continued_is_not_a_failed_job(tmp_path):
    """A job that is stopped and continued (kill -STOP, a suspended terminal) is waited for
    to its end, not reported failed while it goes on."""
    import signal
    import time

    runner = subprocess.Popen([RUN_PL, "logs/s.log", "bash", "-c", "echo $$ > pid; sleep 2; echo finished"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    pid_file = tmp_path / "pid"
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.05)
    group = os.getpgid(int(pid_file.read_text()))
    os.killpg(group, signal.SIGSTOP)
    time.sleep(1.0)
    os.killpg(group, signal.SIGCONT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert "finished" in (tmp_path / "logs/s.log").read_text()


def _start_sleeping_job(tmp_path, *, new_session):
    """run.pl with one job that records its pid and sleeps; returns the runner and the job's pid."""
    import time

    runner = subprocess.Popen([RUN_PL, "logs/k.log", "bash", "-c", "echo $$ > pid; sleep 60"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=new_session)
    pid_file = tmp_path / "pid"
    while not pid_file.exists() or not pid_file.read_text().strip():
        time.sleep(0.05)
    return runner, int(pid_file.read_text())


def _ends_soon(pid: int) -> bool:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_kill_9_of_the_callers_process_group_ends_the_jobs(tmp_path):
    """A recipe killed with SIGKILL as a whole (its process group) leaves no job running on
    its own: a training orphaned that way would go on writing into the experiment while
    the next run resumes it."""
    import signal

    runner, job = _start_sleeping_job(tmp_path, new_session=True)
    assert os.getpgid(job) == runner.pid  # the job is in the caller's process group
    os.killpg(runner.pid, signal.SIGKILL)
    runner.wait(timeout=10)
    assert _ends_soon(job)


def test_term_to_run_pl_alone_stops_its_jobs(tmp_path):
    import signal

    runner, job = _start_sleeping_job(tmp_path, new_session=False)
    runner.send_signal(signal.SIGTERM)
    _, err = runner.communicate(timeout=30)
    assert runner.returncode == 143 and "unfinished jobs were stopped" in err
    assert _ends_soon(job)


def test_arguments_with_spaces_and_specials_arrive_literally(tmp_path):
    proc = run([RUN_PL, "N=4:5", "logs/a.N.log", sys.executable, "-c", "import sys; print(sys.argv[1:])",
                "two words", "*", "$HOME", "it's", "N"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "['two words', '*', '$HOME', \"it's\", '5']" in (tmp_path / "logs/a.5.log").read_text()
    assert not (tmp_path / "logs/a.1.log").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus", "1", "x.log", "true"], "unknown option '--bogus'"),
        (["JOB=1:2", "same.log", "true"], "lacks 'JOB'"),
        (["--num_nodes", "2", "x.log", "true"], "this machine only"),
        (["x.log"], "need a log file and a command"),
    ],
)
def test_run_pl_rejects_bad_calls(tmp_path, args, message):
    proc = run([RUN_PL, *args], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr


def test_runners_have_help(tmp_path):
    for runner in (RUN_PL, SLURM_PL):
        proc = run([runner, "--help"], tmp_path)
        assert proc.returncode == 0 and "JOB=1:N" in proc.stdout


# ---------------------------------------------------------------------------- slurm.pl

FAKE_SBATCH = """#!/usr/bin/env bash
# records its arguments, then runs the batch script once per array task, like sbatch --wait
printf '%s\\n' "$@" > "${FAKE_SLURM_DIR}/sbatch.args"
script=${@: -1}
range=1-1
for arg in "$@"; do
    case "${arg}" in --array=*) range=${arg#--array=}; range=${range%%\\%*} ;; esac
done
status=0
for task in $(seq "${range%-*}" "${range#*-}"); do
    SLURM_ARRAY_TASK_ID=${task} SLURM_JOB_ID=42 bash "${script}" || status=$?
done
echo 42
exit "${status}"
"""

FAKE_SRUN = """#!/usr/bin/env bash
# drops srun's own options and runs the command once
printf '%s\\n' "$@" > "${FAKE_SLURM_DIR}/srun.args"
while [[ "$1" == --* ]]; do shift; done
exec "$@"
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("srun", FAKE_SRUN)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SLURM_DIR": str(tmp_path)}


def sbatch_args(tmp_path: Path):
    return (tmp_path / "sbatch.args").read_text().splitlines()


def test_slurm_array_command_and_logs(tmp_path, fake_slurm):
    proc = run([SLURM_PL, "--gpu", "1", "--gpu_partition", "gpu", "--partition", "cpu", "--num_threads", "4",
                "--mem", "8G", "--time", "1:00:00", "--max_jobs_run", "2", "--name", "decode",
                "--sbatch_opts", "--account=asr --qos=high",
                "JOB=1:3", "exp/logs/dec.JOB.log", "echo", "task", "JOB"], tmp_path, fake_slurm)
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert args[:4] == ["--wait", "--parsable", "--export=ALL", "--job-name=decode"]
    for expected in ("--array=1-3%2", "--gres=gpu:1", "--partition=gpu", "--cpus-per-task=4", "--mem=8G",
                     "--time=1:00:00", "--account=asr", "--qos=high", "--output=exp/logs/q/dec.array-%a.out"):
        assert expected in args
    assert "--partition=cpu" not in args  # GPU jobs go to the GPU partition
    assert args[-1] == "exp/logs/q/dec.array.sh"
    for task in (1, 2, 3):
        log = (tmp_path / f"exp/logs/dec.{task}.log").read_text()
        assert log.startswith(f"# echo task {task}\n") and f"task {task}\n" in log
        assert "# Ended (code 0)" in log


def test_slurm_single_job_without_array(tmp_path, fake_slurm):
    proc = run([SLURM_PL, "--partition", "cpu", "logs/one.log", "echo", "hi"], tmp_path, fake_slurm)
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert not any(a.startswith("--array") for a in args) and "--partition=cpu" in args
    assert "hi" in (tmp_path / "logs/one.log").read_text()


def test_slurm_failure_names_failed_tasks(tmp_path, fake_slurm):
    proc = run([SLURM_PL, "JOB=1:3", "logs/f.JOB.log", "bash", "-c", "exit $((JOB == 3 ? 5 : 0))"],
               tmp_path, fake_slurm)
    assert proc.returncode == 5
    assert "1 / 3 failed (tasks: 3), log is in logs/f.*.log" in proc.stderr


def test_slurm_dry_run_submits_nothing(tmp_path, fake_slurm):
    proc = run([SLURM_PL, "--dry_run", "--num_nodes", "2", "logs/t.log", "srun", "python", "train.py"],
               tmp_path, fake_slurm)
    assert proc.returncode == 0
    assert "--nodes=2 --ntasks-per-node=1" in proc.stdout and "bash -c" in proc.stdout
    assert not (tmp_path / "sbatch.args").exists()


def test_espnet_launch_uses_slurm_branch_for_multi_node(tmp_path, fake_slurm):
    """espnet2.bin.launch recognises slurm.pl by name and wraps training in srun."""
    command = [sys.executable, "-m", "espnet2.bin.launch", "--cmd", f"{SLURM_PL} --name train",
               "--log", "exp/train.log", "--ngpu", "0", "--num_nodes", "2", "--init_file_prefix", "exp/.dist_init_",
               "--", sys.executable, "-c", "import sys; print('ARGS', sys.argv[1:])"]
    proc = run(command, tmp_path, fake_slurm)
    assert proc.returncode == 0, proc.stderr
    args = sbatch_args(tmp_path)
    assert "--nodes=2" in args and "--ntasks-per-node=1" in args and "--job-name=train" in args
    assert (tmp_path / "srun.args").read_text().splitlines()[0] == "--export=ALL"
    log = (tmp_path / "exp/train.log").read_text()
    assert "--dist_launcher', 'slurm'" in log and "--dist_backend', 'gloo'" in log
