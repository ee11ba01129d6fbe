"""Every audio file a decoder is given, checked before a model is loaded or an output written.

A decoder that meets a missing or damaged file half-way through a test set stops with
what the audio library says (``soundfile.LibsndfileError``, whose text is lost when a
data-loader worker read the file), names neither the file nor the line of the wav.scp,
and may leave outputs behind. The decoders (``ctc_greedy_inference``,
``ctc_beam_inference``, ``asr_inference``, ``onnx_inference``, ``choose_subnet``) call
:func:`check_audio_scp` (through :func:`check_decoder_inputs` where they take ESPnet's
``--data_path_and_name_and_type``) before anything else, so a bad file ends the run
before it has written anything, with every bad entry named as ``<scp>:<line>: <utt>: <what>``.

What a wav.scp value may be, and what is checked of it:

- an audio file (``utt path.wav``): it exists, soundfile reads its header, it holds
  samples, and its sampling rate is the one the model expects. Only the header is read:
  libsndfile reads a file cut short inside its samples up to the cut, so such a file
  decodes (shorter) and is not refused; one cut inside its header is.
- a Kaldi pipe (``utt cmd args |``): not checked; running every command an extra time
  would read the whole set twice.
- a Kaldi ark position (``utt file.ark:123``, optionally with a ``[...]`` range): the ark
  file exists; what is at the offset is not read.

This module needs soundfile alone (yaml and humanfriendly only to read a training
config): ``export_onnx`` copies it beside the standalone ONNX decoder.
"""
import os
import re
from typing import Collection, Iterable, Optional, Set, Tuple

import soundfile

#: ESPnet data types whose scp lists audio (``sound``) or ark positions (``kaldi_ark``).
AUDIO_TYPES = ("sound", "kaldi_ark")
#: Bad entries named in one message; the rest are counted.
MAX_LISTED = 10
#: ESPnet's frontends compute their features for 16 kHz audio unless ``fs`` says otherwise.
DEFAULT_FS = 16000

_ARK_POSITION = re.compile(r"^(?P<file>.+):\d+(\[[^\]]*\])?$")


class AudioFileError(ValueError):
    """Entries of a wav.scp that cannot be decoded; the message lists them with their lines."""


def check_audio_scp(scp: str, sample_rate: Optional[int] = None, keys: Optional[Collection[str]] = None,
                    rate_source: str = "the model") -> int:
    """Check every entry of the Kaldi ``scp`` (only those of ``keys`` when given); return how many.

    Args:
        scp: a wav.scp (``<utterance> <value>`` lines).
        sample_rate: the rate every audio file must have (None: any).
        keys: the utterances that will be decoded (a ``--key_file``'s); None: all.
        rate_source: where ``sample_rate`` comes from, for the message (e.g. ``--fs``).

    Raises:
        FileNotFoundError: ``scp`` does not exist.
        AudioFileError: an entry is malformed, or its audio missing, unreadable, empty or
            at another rate; every such entry is listed (up to :data:`MAX_LISTED`).
    """
    if not os.path.isfile(scp):
        raise FileNotFoundError(f"no such wav.scp: {scp}")
    problems, checked = [], 0
    with open(scp, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.strip().split(maxsplit=1)
            if not parts or (keys is not None and parts[0] not in keys):
                continue
            checked += 1
            problem = (f"expected '<utterance> <audio>', got '{line.strip()}'" if len(parts) < 2
                       else _entry_problem(parts[1], sample_rate, rate_source))
            if problem:
                problems.append(f"{scp}:{number}: {parts[0]}: {problem}")
    if problems:
        listed = "\n".join(problems[:MAX_LISTED])
        if len(problems) > MAX_LISTED:
            listed += f"\n({len(problems)} entries of {scp} cannot be decoded; the first {MAX_LISTED} are listed)"
        raise AudioFileError(listed)
    return checked


def _entry_problem(value: str, sample_rate: Optional[int], rate_source: str) -> Optional[str]:
    """What is wrong with one wav.scp value, or None (see the module's docstring)."""
    if value.endswith("|"):
        return None
    ark = _ARK_POSITION.match(value)
    if ark and not os.path.isfile(value):
        return None if os.path.isfile(ark["file"]) else f"no such ark file: {ark['file']}"
    if not os.path.isfile(value):
        return f"no such file: {value}"
    try:
        info = soundfile.info(value)
    except RuntimeError as error:  # soundfile.LibsndfileError
        reason = (getattr(error, "error_string", "") or str(error)).strip()
        return f"cannot read {value} as audio ({reason})"
    if info.frames <= 0:
        return f"{value} holds no samples"
    if sample_rate is not None and info.samplerate != sample_rate:
        return f"{value} is sampled at {info.samplerate} Hz, but {rate_source} says {sample_rate} Hz"
    return None


def model_sample_rate(asr_train_config: Optional[str], fs: Optional[int] = None) -> Tuple[Optional[int], str]:
    """(rate the audio must have, where that comes from): ``fs`` (``--fs``) when given, else
    the training config's ``frontend_conf.fs`` (default 16000); None for a model that has no
    frontend (it reads features) or no config file (an ESPnet model tag)."""
    if fs is not None:
        return fs, "--fs"
    if asr_train_config is None:
        return None, ""
    if not os.path.isfile(asr_train_config):
        raise FileNotFoundError(f"--asr_train_config: no such file: {asr_train_config}")
    import yaml

    with open(asr_train_config, encoding="utf-8") as f:
        config = yaml.safe_load(f) or {}
    if config.get("frontend", "default") is None:
        return None, ""
    return frontend_sample_rate(config.get("frontend_conf")), f"{asr_train_config} (frontend_conf fs)"


def frontend_sample_rate(frontend_conf: Optional[dict]) -> int:
    """The rate a training config's frontend computes its features for: ``frontend_conf.fs``
    (a number, or a size such as ``"16k"``), else :data:`DEFAULT_FS`. The one reading of this
    rule: the decoders (``sampling_rate``) and the ONNX export use it too."""
    rate = (frontend_conf or {}).get("fs", DEFAULT_FS)
    if isinstance(rate, str):
        import humanfriendly

        return int(humanfriendly.parse_size(rate))
    return int(rate)


def read_keys(key_file: str) -> Set[str]:
    """The utterances of a ``--key_file`` (its first column)."""
    if not os.path.isfile(key_file):
        raise FileNotFoundError(f"--key_file: no such file: {key_file}")
    with open(key_file, encoding="utf-8") as f:
        return {line.split(maxsplit=1)[0] for line in f if line.strip()}


def check_decoder_inputs(data_path_and_name_and_type: Iterable[Tuple[str, str, str]],
                         asr_train_config: Optional[str], fs: Optional[int] = None,
                         key_file: Optional[str] = None) -> None:
    """:func:`check_audio_scp` on every audio input of an ESPnet-style decoder: each
    ``(path, name, type)`` of a type in :data:`AUDIO_TYPES`, at the rate of
    :func:`model_sample_rate` (an ark's content is not read, so its rate is not checked)."""
    sample_rate, source = model_sample_rate(asr_train_config, fs)
    keys = read_keys(key_file) if key_file else None
    for path, _name, kind in data_path_and_name_and_type:
        if kind in AUDIO_TYPES:
            check_audio_scp(path, sample_rate if kind == "sound" else None, keys, source)
