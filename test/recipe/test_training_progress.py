"""Stage 11's console progress: train.log lines condensed by espnet_dynenc.recipe.training_progress."""
import subprocess
import sys
import threading
import time

from espnet_dynenc.recipe.training_progress import ProgressFormatter, follow, format_seconds

PREFIX = "[vm:0/2] 2026-12-01 08:50:08,940 (trainer:336) INFO: "


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_epochs_scores_eta_and_throttled_batch_lines():
    clock = Clock()
    fmt = ProgressFormatter(prefix="Stage 11: ", interval=30, clock=clock)
    assert fmt.feed(PREFIX + "1/4epoch started") == ["Stage 11: epoch 1/4 started [elapsed 0s]"]
    clock.now = 10
    assert fmt.feed(PREFIX + "1epoch:train:1-20batch: iter_time=0.1, loss=55.2, loss_ctc=50.0") == []
    clock.now = 31
    assert fmt.feed(PREFIX + "1epoch:train:21-40batch: iter_time=0.1, loss_ctc=40.0, loss=44.1") == [
        "Stage 11: epoch 1/4: 40 batches done, train loss 44.1 [elapsed 31s]"]
    clock.now = 60
    results = (PREFIX + "1epoch results: [train] loss=40.0, [valid] loss_ctc_8=20.5, cer_ctc_8=0.410, "
               "loss_ctc=18.9, cer_ctc=0.250, loss=18.9, time=0.03 seconds, [att_plot] time=0.0")
    assert fmt.feed(results) == [
        "Stage 11: epoch 1/4 done in 1m00s: valid cer_ctc 0.250, loss_ctc 18.9, loss 18.9, cer_ctc_8 0.410 "
        "[elapsed 1m00s]"]
    assert fmt.feed(PREFIX + "2/4epoch started. Estimated time to finish: 3 minutes") == [
        "Stage 11: epoch 2/4 started, ETA 3m00s [elapsed 1m00s]"]
    clock.now = 150
    assert fmt.feed(PREFIX + "The training was finished at 4 epochs ") == [
        "Stage 11: training finished after 4 epochs [elapsed 2m30s]"]


def test_resumed_training_estimates_from_its_own_epochs_and_tracebacks_pass_through():
    clock = Clock()
    fmt = ProgressFormatter(clock=clock)
    assert fmt.feed(PREFIX + "The training was resumed using exp/a/checkpoint.pth") == [
        "training resumed from exp/a/checkpoint.pth [elapsed 0s]"]
    fmt.feed(PREFIX + "3/5epoch started")
    clock.now = 100
    assert fmt.feed(PREFIX + "4/5epoch started") == ["epoch 4/5 started, ETA 3m20s [elapsed 1m40s]"]
    lines = ["Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
             "soundfile.LibsndfileError: Error opening 'a.wav': Format not recognised.", "unrelated line"]
    out = [o for line in lines for o in fmt.feed(line)]
    assert out == ["error in training: Traceback (most recent call last):", '    File "x.py", line 1, in <module>',
                   "  soundfile.LibsndfileError: Error opening 'a.wav': Format not recognised."]


def test_a_ranks_traceback_is_shown_without_torch_distributed_prefix():
    fmt = ProgressFormatter(prefix="Stage 11: ")
    lines = ["[rank1]: Traceback (most recent call last):", '[rank1]:   File "x.py", line 1, in <module>',
             "[rank1]: soundfile.LibsndfileError: Error opening 'a.wav'", "[rank0]: unrelated"]
    out = [o for line in lines for o in fmt.feed(line)]
    assert out == ["Stage 11: error in training: Traceback (most recent call last): (rank 1)",
                   'Stage 11:     File "x.py", line 1, in <module>',
                   "Stage 11:   soundfile.LibsndfileError: Error opening 'a.wav'"]


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 59.6, 75, 3725)] == ["0s", "1m00s", "1m15s", "1h02m05s"]


def test_follow_skips_an_earlier_log_and_reads_the_new_one_to_the_end(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(PREFIX + "1/9epoch started\n")  # an earlier run's log, moved aside by the launcher
    printed, running = [], [True]
    thread = threading.Thread(target=follow, args=(log, ProgressFormatter(), lambda: running[0], printed.append, 0.01))
    thread.start()
    time.sleep(0.1)
    log.rename(tmp_path / "train.1.log")
    log.write_text(PREFIX + "1/2epoch started\n" + PREFIX + "The training was finished at 2 epochs")
    time.sleep(0.1)
    running[0] = False
    thread.join(5)
    assert [p.split(" [")[0] for p in printed] == ["epoch 1/2 started", "training finished after 2 epochs"]


def test_cli_stops_when_the_watched_process_ends(tmp_path):
    log = tmp_path / "train.log"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    proc = subprocess.Popen([sys.executable, "-m", "espnet_dynenc.bin.training_progress", "--log", str(log),
                             "--watch_pid", str(sleeper.pid), "--prefix", "Stage 11: "],
                            stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    log.write_text(PREFIX + "1/3epoch started\n")
    sleeper.wait()
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.startswith("Stage 11: epoch 1/3 started")
    bad = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.training_progress", "--log", str(log),
                          "--watch_pid", "1", "--interval", "-1"], capture_output=True, text=True)
    assert bad.returncode != 0 and "--interval must be >= 0, got -1.0" in bad.stderr
