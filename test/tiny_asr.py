"""A tiny ASR data set and configs made on the spot, for tests that run ESPnet for real."""
import argparse
import contextlib
import copy
import importlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import filelock

import numpy as np
import soundfile
import yaml

REPO = Path(__file__).resolve().parents[1]
WORDS = ["go", "stop", "left", "right", "up", "down"]
TOKENS = ["<blank>", "<unk>", "<space>"] + sorted(set("".join(WORDS))) + ["<sos/eos>"]

TINY_ENCODER = {
    "output_size": 32,
    "attention_heads": 2,
    "linear_units": 48,
    "num_blocks": 2,
    "macaron_style": True,
    "rel_pos_type": "latest",
    "cnn_module_kernel": 7,
    "dropout_rate": 0.0,
}


FRONTEND = {"n_fft": 256, "hop_length": 160, "n_mels": 20}


def make_data_dir(root: Path, name: str, num_utts: int, seed: int) -> Path:
    """Write ``num_utts`` short tone-and-noise wavs with word transcripts as a data dir."""
    rng = np.random.default_rng(seed)
    data = root / name
    wav_dir = data / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    scp, text = [], []
    for i in range(num_utts):
        words = [WORDS[j] for j in rng.integers(0, len(WORDS), size=rng.integers(1, 3))]
        samples = int(16000 * rng.uniform(0.6, 1.2))
        t = np.arange(samples) / 16000
        audio = 0.1 * np.sin(2 * np.pi * (200 + 100 * len(words[0])) * t) + 0.01 * rng.standard_normal(samples)
        utt = f"spk{i % 2}-utt{i:03d}"
        path = wav_dir / f"{utt}.wav"
        soundfile.write(path, audio.astype(np.float32), 16000, subtype="PCM_16")
        scp.append(f"{utt} {path}")
        text.append(f"{utt} {' '.join(words)}")
    (data / "wav.scp").write_text("\n".join(sorted(scp)) + "\n")
    (data / "text").write_text("\n".join(sorted(text)) + "\n")
    return data


def write_token_list(root: Path) -> Path:
    path = root / "tokens.txt"
    path.write_text("\n".join(TOKENS) + "\n")
    return path


def tiny_corpus(root: Path):
    """(root, train dir of 12 utterances, valid dir of 4, token list): what training tests share."""
    return root, make_data_dir(root, "train", 12, seed=0), make_data_dir(root, "valid", 4, seed=1), \
        write_token_list(root)


def write_config(root: Path, model_conf: Optional[Dict] = None, encoder_conf: Optional[Dict] = None,
                 extra: Optional[Dict] = None, name: str = "train.yaml") -> Path:
    config = {
        "encoder": "dynamic_conformer",
        "encoder_conf": {**TINY_ENCODER, **(encoder_conf or {})},
        "model": "supernet_ctc",
        "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [4, 8], **(model_conf or {})},
        "frontend_conf": dict(FRONTEND),
        "optim": "adam",
        "optim_conf": {"lr": 0.002},
        "batch_type": "unsorted",
        "batch_size": 4,
        "max_epoch": 1,
        "num_iters_per_epoch": None,
        "best_model_criterion": [["valid", "cer_ctc", "min"]],
        "keep_nbest_models": 1,
        "num_workers": 0,
        "seed": 0,
        **(extra or {}),
    }
    path = root / name
    path.write_text(yaml.safe_dump(config))
    return path


def untrained_model(folder: Path, tokens: List[str] = TOKENS, **changes) -> Path:
    """An untrained ESPnet ASR model as ESPnet leaves a trained one: config.yaml (every option)
    and a checkpoint beside it. Returns the checkpoint."""
    import torch

    from espnet_dynenc.registration import load_asr_task

    load_asr_task()  # ESPnet's ASR task, quietly: seconds to import
    from espnet_dynenc.espnet_task import DynEncASRTask

    config = vars(DynEncASRTask.get_parser().parse_args([]))
    config.update(encoder="conformer", encoder_conf=dict(TINY_ENCODER), model="espnet",
                  model_conf={"ctc_weight": 1.0}, frontend_conf=dict(FRONTEND), normalize="utterance_mvn",
                  token_list=list(tokens), optim="adam", optim_conf={"lr": 0.002})
    config.update(changes)
    torch.manual_seed(0)
    model = DynEncASRTask.build_model(argparse.Namespace(**copy.deepcopy(config)))
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(model.state_dict(), folder / "model.pth")
    return folder / "model.pth"


def data_args(prefix: str, data: Path) -> List[str]:
    return [
        f"--{prefix}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound",
        f"--{prefix}_data_path_and_name_and_type", f"{data}/text,text,text",
    ]


def run_module(module: str, args: List[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` in a fresh interpreter; raise with its output on failure."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{module} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


def run_main(module: str, args: List[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m module args`` run inside this process, as a CompletedProcess (status, stdout, stderr).

    For refusal checks, which call an entry point many times with bad input: a fresh interpreter
    each would spend most of its 5-9 s importing ESPnet. The ``__main__`` path of each entry point
    still runs in a subprocess in the tests of its successful runs."""
    main = importlib.import_module(module).main
    out, err = io.StringIO(), io.StringIO()
    here = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(list(args))
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) or exit_.code is None else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess([module, *args], status or 0, out.getvalue(), err.getvalue())


def _common_args(config: Path, token_list: Path) -> List[str]:
    return ["--use_preprocessor", "true", "--token_type", "char", "--token_list", str(token_list),
            "--config", str(config), "--ngpu", "0", "--num_workers", "0"]


# (module, train, valid, token list, frontend settings) -> the stats folder made for them
_STATS_MADE: Dict[Tuple[str, ...], Path] = {}


def _stats_key(module: str, config: Path, train: Path, valid: Path, token_list: Path) -> Tuple[str, ...]:
    """What ESPnet's collect-stats output depends on: the data, the token list and the frontend
    (its shapes and feature statistics do not change with the model, the optimizer or the batch size)."""
    settings = yaml.safe_load(config.read_text())
    frontend = yaml.safe_dump({k: settings.get(k) for k in ("frontend", "frontend_conf", "input_size",
                                                            "use_preprocessor", "token_type")}, sort_keys=True)
    return (module, *(str(path.resolve()) for path in (train, valid, token_list)), frontend)


def collect_stats(root: Path, config: Path, train: Path, valid: Path, token_list: Path, name: str,
                  module: str = "espnet_dynenc.bin.asr_train") -> Path:
    """ESPnet's collect-stats pass: shapes and feature statistics under ``root/name``.

    Made once per data, token list and frontend in a test process: a later training of the same
    data with another model or schedule reads the folder made first (an ESPnet start-up of 5-9 s
    saved per training). The cache is per process, so each pytest-xdist worker makes its own."""
    key = _stats_key(module, config, train, valid, token_list)
    made = _STATS_MADE.get(key)
    if made is not None and (made / "train" / "feats_stats.npz").exists():
        return made
    stats = root / name
    shape_args = []
    for prefix, data in (("train", train), ("valid", valid)):
        keys = root / f"{prefix}_keys"
        keys.write_text("".join(line.split()[0] + " 1\n" for line in (data / "wav.scp").read_text().splitlines()))
        shape_args += [f"--{prefix}_shape_file", str(keys)]
    run_module(module, _common_args(config, token_list) + data_args("train", train)
               + data_args("valid", valid) + shape_args + ["--collect_stats", "true", "--output_dir", str(stats)],
               cwd=root)
    _STATS_MADE[key] = stats
    return stats


def training_args(config: Path, train: Path, valid: Path, token_list: Path, stats: Path, exp: Path) -> List[str]:
    return _common_args(config, token_list) + data_args("train", train) + data_args("valid", valid) + [
        "--train_shape_file", f"{stats}/train/speech_shape",
        "--valid_shape_file", f"{stats}/valid/speech_shape",
        "--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats}/train/feats_stats.npz",
        "--output_dir", str(exp)]


def train_tiny_model(root: Path, config: Path, train: Path, valid: Path, token_list: Path, exp_name: str = "exp",
                     module: str = "espnet_dynenc.bin.asr_train") -> Path:
    """collect-stats then training through ESPnet's real entry points (``module``: this
    package's, or ``espnet2.bin.asr_train`` for a stock model); the log goes to exp/train.log."""
    stats = collect_stats(root, config, train, valid, token_list, f"{exp_name}_stats", module)
    exp = root / exp_name
    proc = run_module(module, training_args(config, train, valid, token_list, stats, exp), cwd=root)
    (exp / "train.log").write_text(proc.stdout + proc.stderr)
    return exp


def train_two_processes(root: Path, config: Path, train: Path, valid: Path, token_list: Path,
                        exp_name: str) -> Tuple[subprocess.CompletedProcess, Path]:
    """Training with two gloo ranks through ESPnet's launcher in its multi-host mode, with an
    ``ssh`` that runs the command on this machine. Returns the process and the experiment dir."""
    stats = collect_stats(root, config, train, valid, token_list, f"{exp_name}_stats")
    exp = root / exp_name
    bin_dir = root / "fake_bin"
    bin_dir.mkdir(exist_ok=True)
    ssh = bin_dir / "ssh"
    ssh.write_text('#!/usr/bin/env bash\n# ssh HOST COMMAND...: run COMMAND here.\nshift\nexec bash -c "$*"\n')
    ssh.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "espnet2.bin.launch", "--host", "localhost,localhost", "--ngpu", "0",
           "--envfile", "none", "--log", str(exp / "train.log"), "--init_file_prefix", str(exp / ".dist_init_"),
           "--", sys.executable, "-m", "espnet_dynenc.bin.asr_train",
           *training_args(config, train, valid, token_list, stats, exp)]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    return proc, exp


def report_encoder_names(process_index: int, out_file: str) -> None:
    """Spawn target: write the encoder names ESPnet's ASR task knows in this process."""
    from espnet2.tasks.asr import encoder_choices

    Path(out_file).write_text(" ".join(sorted(encoder_choices.classes)))


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """A folder that ``make(folder)`` fills once per test session, shared by every test file and
    every pytest-xdist worker: the first to ask makes it under a lock, the others wait and read it.

    For what several test files only read (a trained tiny model, an LM): each file's module
    fixture would otherwise train its own on every worker that runs one of its tests. The folder
    counts as made when ``make`` returned (a marker written last); a failed ``make`` leaves none."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's folder
    folder = shared / f"made_once_{name}"
    with filelock.FileLock(f"{folder}.lock"):
        if not (folder / ".made").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            (folder / ".made").write_text("")
    return folder


def trained_supernet(tmp_path_factory) -> Tuple[Path, Path, Path, Path, Path]:
    """The tiny supernet of sizes 4 and 8 (``write_config``'s defaults) trained one epoch on
    ``tiny_corpus``, made once per session: (folder, train, valid, token list, experiment dir).
    Read it, never write into it; tests that change the model copy what they change."""
    def make(folder: Path) -> None:
        _, train, valid, tokens = tiny_corpus(folder)
        train_tiny_model(folder, write_config(folder), train, valid, tokens)

    folder = made_once(tmp_path_factory, "supernet", make)
    return folder, folder / "train", folder / "valid", folder / "tokens.txt", folder / "exp"
