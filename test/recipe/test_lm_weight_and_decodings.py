"""Stage 12's lm_weight choice per output, the decoding check asr.sh runs first, and stage 13's
comparison of decodings (all without a model: files made on the spot)."""
from pathlib import Path

import pytest
import yaml

from espnet_dynenc.bin import check_decoding as check_decoding_cli
from espnet_dynenc.bin import choose_lm_weight
from espnet_dynenc.decode.lm_weights import read_lm_weights
from espnet_dynenc.recipe.decode_check import DecodingSetup, check_decoding
from espnet_dynenc.recipe.decodings_table import decodings_markdown, describe_decoding
from espnet_dynenc.recipe.lm_weight import parse_grid

REFS = {"u1": "the cat sat", "u2": "on a mat", "u3": "dog ran far"}
# per weight, per output: the hypotheses (size 4 is best at 0.5, size 8 at 0.0, a tie at 1.0)
HYPS = {
    "0.0": {"4": {"u1": "the cat", "u2": "on mat", "u3": "dog"}, "8": REFS},
    "0.5": {"4": REFS, "8": {"u1": "the cat sat", "u2": "on a", "u3": "dog ran far"}},
    "1.0": {"4": REFS, "8": {"u1": "the cat sat", "u2": "on a", "u3": "dog ran far"}},
}


def write_lines(path: Path, table: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())))


def make_tuning_dir(root: Path) -> Path:
    for weight, outputs in HYPS.items():
        for output, hyps in outputs.items():
            folder = root / weight / "dev" / output
            write_lines(folder / "text", hyps)
            (folder / "decode_stats.yaml").write_text("subnet: 1\n")
        # the jobs' own outputs stay in logdir/ and are not outputs of the set
        job = root / weight / "dev" / "logdir" / "output.1" / "4"
        write_lines(job / "text", {"u1": "x"})
        (job / "decode_stats.yaml").write_text("subnet: 4\n")
    write_lines(root / "ref_text", REFS)
    return root


def test_each_output_gets_the_weight_of_fewest_dev_errors(tmp_path):
    tuning = make_tuning_dir(tmp_path / "tuning")
    out = tmp_path / "lm_weights.yaml"
    argv = ["--tuning_dir", str(tuning), "--dev_set", "dev", "--grid", "0.0 0.5 1.0",
            "--ref_text", str(tuning / "ref_text"), "--output", str(out)]
    assert choose_lm_weight.main(argv) == 0
    assert read_lm_weights(out) == {"4": 0.5, "8": 0.0}  # 0.5 and 1.0 tie for size 4: the first wins
    document = yaml.safe_load(out.read_text())
    assert document["grid"] == [0.0, 0.5, 1.0] and document["dev_set"] == "dev"
    assert document["dev_wer"]["4"] == {0.0: round(100 * 4 / 9, 2), 0.5: 0.0, 1.0: 0.0}
    assert choose_lm_weight.main(argv[:5] + ["0.0 0.7"] + argv[6:]) == 2  # no decoding for 0.7


@pytest.mark.parametrize("grid, message", [("", "is empty"), ("0.3 x", "'x' is not a number"),
                                           ("0.3 0.30", "lists a weight twice"), ("-1", "is negative")])
def test_bad_grids_are_refused_by_name(grid, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(grid)


def test_the_decoding_follows_the_lm_and_the_beam(tmp_path, capsys):
    beam_config = tmp_path / "decode_beam.yaml"
    beam_config.write_text("beam_size: 4\nctc_weight: 1.0\n")
    assert check_decoding(DecodingSetup()) == "greedy"
    assert check_decoding(DecodingSetup(use_lm=True)) == "beam"
    assert check_decoding(DecodingSetup(inference_config=str(beam_config))) == "beam"
    assert check_decoding(DecodingSetup(inference_args="--beam_size=6 --penalty 0.5")) == "beam"
    assert check_decoding(DecodingSetup(inference_args="--batch_size 4 --num_threads 1")) == "greedy"
    # options of the other decoder are unknown to this one
    with pytest.raises(ValueError, match=r"unknown decoding option\(s\) \['--lm_weight'\] for greedy"):
        check_decoding(DecodingSetup(inference_args="--lm_weight 0.5"))
    # a module of one's own is not checked
    assert check_decoding(DecodingSetup(inference_args="--frobnicate 1", inference_module="my.decoder")) == "greedy"
    assert check_decoding_cli.main(["--inference_config", str(beam_config)]) == 0
    assert capsys.readouterr().out.strip() == "beam"
    not_a_mapping = tmp_path / "decode_list.yaml"
    not_a_mapping.write_text("- beam_size\n")
    assert check_decoding_cli.main(["--inference_config", str(not_a_mapping)]) == 2
    assert "a decoding config must be a mapping" in capsys.readouterr().err


def write_scored(decode_dir: Path, size: int, stats: dict, wer: float) -> None:
    folder = decode_dir / "test" / str(size)
    folder.mkdir(parents=True)
    (folder / "decode_stats.yaml").write_text(yaml.safe_dump({"subnet": size, "rtf": 0.01 * size, **stats}))
    for kind in ("wer", "cer"):
        (folder / f"score_{kind}").mkdir()
        (folder / f"score_{kind}" / "result.txt").write_text(
            f"| Sum/Avg | 3 9 | 90.0 5.0 5.0 0.0 {wer:.1f} 33.3 |\n")


def test_results_compare_every_scored_decoding_per_size(tmp_path):
    exp = tmp_path / "exp" / "asr_x"
    greedy, beam = exp / "decode_ctc_greedy_asr_model_a", exp / "decode_lm_lm_x_asr_model_a"
    for size, wer in ((4, 20.0), (8, 10.0)):
        write_scored(greedy, size, {}, wer)
        write_scored(beam, size, {"decoding": "beam + LM", "beam_size": 8, "lm_weight": 0.5 * size}, wer / 2)
    assert describe_decoding(greedy, ["test"], [4, 8]) == "greedy CTC"
    assert describe_decoding(beam, ["test"], [4, 8]) == "beam + LM (beam 8, lm_weight per size: 4: 2.0, 8: 4.0)"
    lines = decodings_markdown(exp, ["test"])
    assert "## Decodings compared" in lines
    rows = [line for line in lines if line.startswith("| ")][1:]
    assert rows == [
        "| greedy | 4 | - | - | 20.0 | 20.0 | 0.0400 | `decode_ctc_greedy_asr_model_a` |",
        "| greedy | 8 | - | - | 10.0 | 10.0 | 0.0800 | `decode_ctc_greedy_asr_model_a` |",
        "| beam + LM | 4 | 8 | 2.0 | 10.0 | 10.0 | 0.0400 | `decode_lm_lm_x_asr_model_a` |",
        "| beam + LM | 8 | 8 | 4.0 | 5.0 | 5.0 | 0.0800 | `decode_lm_lm_x_asr_model_a` |",
    ]
    assert decodings_markdown(exp, ["test"], [8])[-1].startswith("| beam + LM | 8 |")
    (beam / "test" / "4" / "score_wer" / "result.txt").unlink()
    (beam / "test" / "8" / "score_wer" / "result.txt").unlink()
    assert decodings_markdown(exp, ["test"]) == []  # one scored decoding: nothing to compare
