"""The front door of the entry points: shared model options and one way to end a refusal."""
import argparse
import importlib.util
import pkgutil

import pytest

import espnet_dynenc.bin
from espnet_dynenc.entry import REFUSED, add_data_arguments, add_model_arguments, entry_point

# the trainer and the launcher run ESPnet's code and keep its tracebacks (see their docstrings)
NOT_THROUGH_THE_RUNNER = {"asr_train", "python"}


def test_an_expected_error_is_one_line_with_the_program_and_status_2(capsys):
    @entry_point("tool")
    def main(argv):
        raise FileNotFoundError(f"--thing: no such file: {argv[0]}")

    assert main(["x.yaml"]) == REFUSED == 2
    assert capsys.readouterr().err == "tool: error: --thing: no such file: x.yaml\n"


def test_a_key_error_reads_as_a_sentence_and_success_passes_through(capsys):
    @entry_point("tool")
    def main(argv):
        if argv:
            raise KeyError("data/utt2spk: no speaker for utterance 'u1'")
        return 0

    assert main(["bad"]) == 2
    assert capsys.readouterr().err == "tool: error: data/utt2spk: no speaker for utterance 'u1'\n"
    assert main([]) == 0 and capsys.readouterr().err == ""


def test_an_unexpected_error_keeps_its_traceback_unless_the_tool_expects_it(capsys):
    def failing(argv):
        raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        entry_point("decoder")(failing)([])
    assert entry_point("downloader", also=(RuntimeError,))(failing)([]) == 2
    assert capsys.readouterr().err == "downloader: error: CUDA out of memory\n"


def test_usage_errors_stay_argparse_s():
    @entry_point("tool")
    def main(argv):
        parser = argparse.ArgumentParser()
        add_model_arguments(parser)
        parser.parse_args(argv)
        return 0

    with pytest.raises(SystemExit) as stop:
        main([])
    assert stop.value.code == 2


def test_model_and_data_options_are_spelled_once():
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    add_data_arguments(parser, "dump/raw/test/wav.scp,speech,sound")
    args = parser.parse_args(["--asr_train_config", "c.yaml", "--asr_model_file", "m.pth",
                              "--data_path_and_name_and_type", "w.scp,speech,sound",
                              "--data_path_and_name_and_type", "t,text,text"])
    assert (args.asr_train_config, args.asr_model_file, args.key_file) == ("c.yaml", "m.pth", None)
    assert args.data_path_and_name_and_type == [("w.scp", "speech", "sound"), ("t", "text", "text")]
    optional = argparse.ArgumentParser()
    add_model_arguments(optional.add_argument_group("model"), required=False)
    assert vars(optional.parse_args([])) == {"asr_train_config": None, "asr_model_file": None}


def test_every_entry_point_goes_through_the_runner():
    """Each bin/ module's main is wrapped by ``entry_point`` (functools.wraps leaves ``__wrapped__``)."""
    names = [info.name for info in pkgutil.iter_modules(espnet_dynenc.bin.__path__)]
    assert len(names) > 25
    for name in sorted(set(names) - NOT_THROUGH_THE_RUNNER):
        source = importlib.util.find_spec(f"espnet_dynenc.bin.{name}").loader.get_source(f"espnet_dynenc.bin.{name}")
        assert f'@entry_point("{name}"' in source, name
        assert "except" not in source.split("def main", 1)[1], name  # no hand-written handler left
