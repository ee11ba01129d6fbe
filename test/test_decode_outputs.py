"""The layout of decoding outputs (espnet_dynenc.decode.outputs) and its entry point for asr.sh."""
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from espnet_dynenc.bin import decode_outputs as decode_outputs_cli
from espnet_dynenc.decode.outputs import (
    DecodeOutput, OutputRequest, decode_dir_name, finished_outputs, per_size_name, pruning_plan_file)

PLAN = {"subnet": 24, "num_blocks": 6, "skip_blocks": {"top": {4: [4, 5], 2: [2, 3, 4, 5]},
                                                       "every_other": {4: [1, 3], 10: []}}}


def supernet(sizes):
    """Enough of a supernet_ctc model for the decoder's targets (its sizes and block count)."""
    from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel

    class Sizes(ESPnetSupernetCTCModel):
        def __init__(self):
            torch.nn.Module.__init__(self)
            self.subnet_sizes = list(sizes)
            self.encoder = SimpleNamespace(num_blocks=6)

    return Sizes()


def finish(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "decode_stats.yaml").write_text("subnet: 1\n")


def test_every_layout_the_decoders_write_parses_back(tmp_path):
    from espnet_dynenc.decode.batch_decoding import targets_for

    plan = tmp_path / "pruning_plan.yaml"
    plan.write_text(yaml.safe_dump(PLAN))
    # sizes 8 and 16 asked for; the plan's subnet 24 comes along as the reference of its pruned forms
    targets = targets_for(supernet([8, 16, 24]), "8 16", [], str(plan), "config.yaml")
    assert [t.out_dir for t in targets[:3]] == ["8", "16", "24"]
    assert sorted(t.out_dir for t in targets[3:]) == ["pruned/every_other/10", "pruned/every_other/4",
                                                     "pruned/top/2", "pruned/top/4"]
    for target in targets:
        assert DecodeOutput.parse(target.out_dir) == target.output
        finish(tmp_path / "test" / target.out_dir)
    assert {dict(t.labels)["strategy"] for t in targets[3:]} == {"top", "every_other"} and targets[0].labels == ()
    # the listing finds them all, sizes by number first, whatever else the folder holds
    finish(tmp_path / "test" / "logdir" / "output.1" / "8")
    (tmp_path / "test" / "32").mkdir()  # no decode_stats.yaml: not finished
    assert [o.relative_dir for o in finished_outputs(tmp_path / "test")] == [
        "8", "16", "24", "pruned/every_other/4", "pruned/every_other/10", "pruned/top/2", "pruned/top/4"]


def test_a_one_size_model_is_one_output_named_by_its_units(monkeypatch):
    from espnet_dynenc.decode import batch_decoding

    monkeypatch.setattr(batch_decoding, "count_units", lambda encoder: 12)
    (target,) = batch_decoding.targets_for(SimpleNamespace(encoder=None), "", [], None, "config.yaml")
    assert target.out_dir == "12" and DecodeOutput.parse("12") == target.output


@pytest.mark.parametrize("bad", ["logdir", "pruned/top", "pruned/top/x", "pruned/../4", "16/extra", "", "top/4/2"])
def test_a_path_outside_the_layout_is_refused_by_name(bad):
    with pytest.raises(ValueError, match=f"'{bad}' is not a decoding output"):
        DecodeOutput.parse(bad)


def test_an_output_is_a_size_or_a_strategy_and_depth():
    with pytest.raises(ValueError, match="not both"):
        DecodeOutput(size=8, strategy="top", depth=2)
    with pytest.raises(ValueError, match="needs a strategy and a depth"):
        DecodeOutput(strategy="top")


def test_a_stray_folder_under_pruned_is_named(tmp_path):
    finish(tmp_path / "test" / "pruned" / "top" / "four")
    with pytest.raises(ValueError, match="'pruned/top/four' is not a decoding output"):
        finished_outputs(tmp_path / "test")
    with pytest.raises(FileNotFoundError, match="no such decoding directory"):
        finished_outputs(tmp_path / "missing")


def test_a_request_chooses_and_names_what_is_missing():
    found = [DecodeOutput.whole(8), DecodeOutput.whole(24), DecodeOutput.pruned("top", 4)]
    request = OutputRequest((8, 16), (4,), ("top", "greedy"))
    assert request.chosen(found) == [DecodeOutput.whole(8), DecodeOutput.pruned("top", 4)]
    assert [o.relative_dir for o in request.missing(found)] == ["16", "pruned/greedy/4"]
    assert OutputRequest().chosen(found) == found
    assert OutputRequest(depths=()).chosen(found) == found[:2]


def test_the_listing_entry_point(tmp_path, capsys):
    decode = tmp_path / "decode"
    for output in ("8", "16", "24", "pruned/top/4", "pruned/top/2", "pruned/greedy/4"):
        finish(decode / "test" / output)
    plan = pruning_plan_file(decode)
    plan.parent.mkdir()
    plan.write_text(yaml.safe_dump(PLAN))

    def listed(*argv):
        assert decode_outputs_cli.main(["list", "--dir", str(decode / "test"), *argv]) == 0
        return capsys.readouterr().out.split()

    assert listed() == ["8", "16", "24", "pruned/greedy/4", "pruned/top/2", "pruned/top/4"]
    # asr.sh's stage 13: --subnets, with the plan's subnet, and the depths and strategies asked for
    asked = ["--subnets", "8", "--prune_depths", "4", "--prune_strategies", "top", "--pruning_plan", str(plan)]
    assert listed(*asked) == ["8", "24", "pruned/top/4"]
    assert listed(*asked, "--prune_depths", "") == ["8", "24"]  # stage 14: sizes only
    assert listed("--subnets", "8,32", "--prune_depths", "4 6", "--prune_strategies", "top greedy",
                  "--missing") == ["32", "pruned/greedy/6", "pruned/top/6"]
    assert decode_outputs_cli.main(["list", "--dir", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such decoding directory" in capsys.readouterr().err
    assert decode_outputs_cli.main(["list", "--dir", str(decode / "test"), "--subnets", "8 x"]) == 2
    assert "--subnets: '8 x' is not a list of whole numbers" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        decode_outputs_cli.main(["--help"])
    assert exit_info.value.code == 0 and "finished outputs" in capsys.readouterr().out


@pytest.mark.parametrize("options, name", [
    ({}, "decode_ctc_greedy_asr_model_valid.cer_ctc.ave"),
    ({"model": "valid.loss.ave_3best.pth", "per_size": True}, "decode_ctc_greedy_asr_model_valid.loss.ave_3best_per_size"),
    ({"inference_args": "--beam_size 4 --penalty=0.5", "decoding": "beam"},
     "decode_ctc_beam_beam_size4_penalty0.5_asr_model_valid.cer_ctc.ave"),
    ({"inference_config": "conf/decode_lm.yaml", "lm_exp": "exp/lm_tiny_lm_en_bpe30/",
      "inference_lm": "valid.loss.ave.pth", "lm_weight_tuned": True, "decoding": "beam"},
     "decode_lm_lm_lm_tiny_lm_en_bpe30_valid.loss.ave_lm_weight_tuned_asr_model_valid.cer_ctc.ave"),
    ({"model": "sub/dir/latest.pth", "inference_tag": "mine", "per_size": True}, "decode_mine"),
])
def test_decode_dir_names_follow_asr_sh(options, name, capsys):
    assert decode_dir_name(**options) == name
    argv = ["name", "--model", options.get("model", "valid.cer_ctc.ave.pth")]
    for key, value in options.items():
        if key != "model":
            argv += [f"--{key}"] if value is True else [f"--{key}={value}"]
    assert decode_outputs_cli.main(argv) == 0
    assert capsys.readouterr().out.strip() == name
    assert per_size_name(name).endswith("_per_size")


def test_plan_path_is_the_one_the_readers_use(capsys):
    """asr.sh asks `decode_outputs plan` where a decoding directory's pruning plan lies; the
    comparison and the tables read it through pruning_plan_file."""
    assert decode_outputs_cli.main(["plan", "--decode_dir", "exp/a/decode_b"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(pruning_plan_file(Path("exp/a/decode_b"))) == "exp/a/decode_b/pruning/pruning_plan.yaml"
