"""The benchmarks' timing helper and the GPU check's option checks (no GPU needed)."""
import argparse
import subprocess
from pathlib import Path

import pytest
import torch

from espnet_dynenc.analysis.timing import add_device_argument, interleaved_medians, parse_args_with_device, resolve_device

REPO = Path(__file__).resolve().parents[1]


def test_interleaved_medians_warms_up_once_then_runs_round_robin():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = interleaved_medians(fns, repeats=3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert set(times) == {"a", "b"} and all(t >= 0.0 for t in times.values())


def test_interleaved_medians_refuses_no_repeats():
    with pytest.raises(ValueError, match="--repeats must be at least 1, got 0"):
        interleaved_medians({"a": lambda: None}, repeats=0)


def test_resolve_device_names_the_bad_value():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="'tpu' is not a device name"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="'meta' is neither the CPU nor a CUDA device"):
        resolve_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_resolve_device_without_cuda_says_so():
    with pytest.raises(ValueError, match="--device cuda: torch sees no CUDA device here"):
        resolve_device("cuda")


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "3"], "--epochs must be at least 4"),
    (["--ngpu", "2"], "--ngpu must be 0 or 1, got '2'"),
    (["--updates_per_epoch", "x"], "--updates_per_epoch must be a positive whole number, got 'x'"),
    (["--bogus"], "unknown option '--bogus'"),
    (["--part", "decode"], "--part must be all, recipe or benchmarks, got 'decode'"),
    (["--part", "benchmarks", "--ngpu", "0"], "--part benchmarks needs the GPU (--ngpu 1)"),
])
def test_gpu_check_refuses_bad_options_before_any_work(argv, message):
    result = subprocess.run(["bash", str(REPO / "tools" / "gpu_check.sh")] + argv, capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_parse_args_with_device_gives_a_torch_device_or_exits_as_argparse(capsys):
    parser = argparse.ArgumentParser(prog="bench")
    add_device_argument(parser)
    assert parse_args_with_device(parser, []).device == torch.device("cpu")
    with pytest.raises(SystemExit) as exit_info:
        parse_args_with_device(parser, ["--device", "tpu"])
    assert exit_info.value.code == 2
    assert "bench: error: --device: 'tpu' is not a device name" in capsys.readouterr().err
