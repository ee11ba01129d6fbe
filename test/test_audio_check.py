"""Every decoder checks each audio file before it loads a model or writes an output.

The refusals need no trained model: the check runs first, so a training config that names
the frontend's rate (and a model file that is never opened) is enough. ``asr_inference``
sets a process-wide default subnet, so it runs in a subprocess; the others run in this
process (``tiny_asr.run_main``).
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from espnet_dynenc import audio_check
from espnet_dynenc.audio_check import AudioFileError, check_audio_scp, check_decoder_inputs, model_sample_rate
from tiny_asr import REPO, run_main

DECODERS = ("espnet_dynenc.bin.ctc_greedy_inference", "espnet_dynenc.bin.ctc_beam_inference",
            "espnet_dynenc.bin.onnx_inference", "espnet_dynenc.bin.choose_subnet")


def write_wav(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    samples = 0.1 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * rate)) / rate)
    soundfile.write(path, samples.astype(np.float32), rate, subtype="PCM_16")
    return path


def truncated_wav(path: Path) -> Path:
    """A WAV file cut inside its header, as a copy interrupted early leaves it."""
    whole = write_wav(path.with_name("whole_" + path.name))
    path.write_bytes(whole.read_bytes()[:30])
    return path


@pytest.fixture
def data(tmp_path):
    """A directory with one good WAV, a truncated one, a model config (16 kHz) and scp files."""
    write_wav(tmp_path / "good.wav")
    truncated_wav(tmp_path / "cut.wav")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"frontend": "default", "frontend_conf": {"fs": "16k"}}))
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "onnx_config.json").write_text(json.dumps({"fs": 16000}))
    (tmp_path / "decode").mkdir()
    return tmp_path


def scp(root: Path, name: str, *lines: str) -> Path:
    path = root / name
    path.write_text("".join(line + "\n" for line in lines))
    return path


# ---------------------------------------------------------------- the check itself
def test_good_files_pipes_and_present_arks_pass(data):
    (data / "feats.ark").write_bytes(b"\0")
    path = scp(data, "wav.scp", f"u1 {data}/good.wav", "u2 sox in.flac -t wav - |", f"u3 {data}/feats.ark:17",
               f"u4 {data}/feats.ark:17[0:100]", "")
    assert check_audio_scp(str(path), 16000) == 4


def test_every_bad_entry_is_named_with_its_line(data):
    (data / "silence.wav").write_bytes((data / "whole_cut.wav").read_bytes()[:44])  # a header, no samples
    write_wav(data / "8k.wav", rate=8000)
    path = scp(data, "wav.scp", f"u1 {data}/good.wav", f"u2 {data}/cut.wav", f"u3 {data}/gone.wav",
               f"u4 {data}/silence.wav", f"u5 {data}/8k.wav", f"u6 {data}/none.ark:3", "u7")
    with pytest.raises(AudioFileError) as error:
        check_audio_scp(str(path), 16000, rate_source="--fs")
    assert str(error.value).splitlines() == [
        f"{path}:2: u2: cannot read {data}/cut.wav as audio (Error in WAV file. No 'data' chunk marker.)",
        f"{path}:3: u3: no such file: {data}/gone.wav",
        f"{path}:4: u4: {data}/silence.wav holds no samples",
        f"{path}:5: u5: {data}/8k.wav is sampled at 8000 Hz, but --fs says 16000 Hz",
        f"{path}:6: u6: no such ark file: {data}/none.ark",
        f"{path}:7: u7: expected '<utterance> <audio>', got 'u7'",
    ]


def test_only_the_keys_decoded_are_checked_and_a_long_list_is_cut(data):
    lines = [f"u{i:02d} {data}/gone{i}.wav" for i in range(12)]
    path = scp(data, "wav.scp", *lines)
    assert check_audio_scp(str(path), keys=set()) == 0
    with pytest.raises(AudioFileError, match=r"wav.scp:2: u01: no such file"):
        check_audio_scp(str(path), keys={"u01"})
    with pytest.raises(AudioFileError) as error:
        check_audio_scp(str(path))
    assert len(str(error.value).splitlines()) == audio_check.MAX_LISTED + 1
    assert str(error.value).endswith(f"(12 entries of {path} cannot be decoded; the first 10 are listed)")
    with pytest.raises(FileNotFoundError, match="no such wav.scp: nowhere.scp"):
        check_audio_scp("nowhere.scp")


def test_the_rate_comes_from_fs_or_the_training_config(data):
    config = str(data / "config.yaml")
    assert model_sample_rate(config, 8000) == (8000, "--fs")
    assert model_sample_rate(config) == (16000, f"{config} (frontend_conf fs)")
    assert model_sample_rate(None) == (None, "")
    (data / "features.yaml").write_text(yaml.safe_dump({"frontend": None}))
    assert model_sample_rate(str(data / "features.yaml"))[0] is None
    with pytest.raises(FileNotFoundError, match="--asr_train_config: no such file: none.yaml"):
        model_sample_rate("none.yaml")
    path = scp(data, "wav.scp", f"u1 {data}/cut.wav")
    (data / "keys").write_text("u2\n")
    check_decoder_inputs([(str(path), "speech", "sound")], config, key_file=str(data / "keys"))  # u1 not decoded
    check_decoder_inputs([(str(path), "text", "text")], config)  # not audio
    with pytest.raises(AudioFileError, match="cut.wav as audio"):
        check_decoder_inputs([(str(path), "speech", "sound")], config)


# ---------------------------------------------------------------- every decoder refuses, writing nothing
def decoder_args(module: str, data: Path, wav_scp: Path) -> list:
    model = ["--asr_train_config", str(data / "config.yaml"), "--asr_model_file", str(data / "never_read.pth")]
    if module.endswith("onnx_inference"):
        return ["--model_dir", str(data / "onnx"), "--wav_scp", str(wav_scp), "--output", str(data / "out" / "text")]
    if module.endswith("choose_subnet"):
        return model + ["--decode_dir", str(data / "decode"), "--test_set", "test", "--wav_scp", str(wav_scp),
                        "--export", str(data / "out")]
    return model + ["--data_path_and_name_and_type", f"{wav_scp},speech,sound", "--output_dir", str(data / "out")]


@pytest.mark.parametrize("module", DECODERS)
@pytest.mark.parametrize("bad", ["cut.wav", "missing.wav"])
def test_a_decoder_names_a_bad_file_and_its_line_and_writes_nothing(module, bad, data):
    wav_scp = scp(data, "wav.scp", f"u1 {data}/good.wav", f"u2 {data}/{bad}")
    proc = run_main(module, decoder_args(module, data, wav_scp), cwd=data)
    prog = module.rsplit(".", 1)[1]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{prog}: error: {wav_scp}:2: u2: " in proc.stderr and f"{data}/{bad}" in proc.stderr, proc.stderr
    assert not (data / "out").exists()
    assert list((data / "decode").iterdir()) == []  # choose_subnet's work dir (decode/deploy) is not made


def test_a_greedy_decoder_refuses_audio_at_another_rate_than_fs(data):
    wav_scp = scp(data, "wav.scp", f"u1 {data}/good.wav")
    proc = run_main(DECODERS[0], decoder_args(DECODERS[0], data, wav_scp) + ["--fs", "8000"], cwd=data)
    assert proc.returncode == 2
    assert f"{wav_scp}:1: u1: {data}/good.wav is sampled at 16000 Hz, but --fs says 8000 Hz" in proc.stderr


def test_asr_inference_names_both_bad_files_and_writes_nothing(data):
    wav_scp = scp(data, "wav.scp", f"u1 {data}/good.wav", f"u2 {data}/cut.wav", f"u3 {data}/missing.wav")
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.asr_inference",
                           *decoder_args("asr_inference", data, wav_scp)],
                          cwd=data, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"asr_inference: error: {wav_scp}:2: u2: cannot read {data}/cut.wav as audio" in proc.stderr
    assert f"{wav_scp}:3: u3: no such file: {data}/missing.wav" in proc.stderr
    assert "Traceback" not in proc.stderr and not (data / "out").exists()


def test_the_copy_beside_an_onnx_export_checks_alone(data):
    """``export_onnx`` copies the decoder and this check beside the model; they run without the package."""
    shutil.copyfile(REPO / "espnet_dynenc/deploy/onnx_inference.py", data / "onnx" / "asr_onnx.py")
    shutil.copyfile(REPO / "espnet_dynenc/audio_check.py", data / "onnx" / "audio_check.py")
    wav_scp = scp(data, "wav.scp", f"u1 {data}/missing.wav")
    code = ("import sys; sys.path.insert(0, 'onnx'); import asr_onnx; "
            "status = asr_onnx.main(['--model_dir', 'onnx', '--wav_scp', 'wav.scp', '--output', 'text']); "
            "print(status, sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'espnet2', 'espnet_dynenc'}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=data, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "2 []", proc.stderr[-3000:]
    assert f"onnx_inference: error: wav.scp:1: u1: no such file: {data}/missing.wav" in proc.stderr
    assert not (data / "text").exists()
