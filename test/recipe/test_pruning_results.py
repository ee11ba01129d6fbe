"""Pruned decodings through stages 12-13: merging nested outputs and the pruning tables."""
from pathlib import Path

import pytest
import yaml

from espnet_dynenc.bin import results_table as results_table_cli
from espnet_dynenc.recipe.decode_merge import merge_jobs, outputs_in
from espnet_dynenc.recipe.pruning_table import pruning_markdown

PLAN = {"subnet": 24, "num_blocks": 6, "dev_utterances": 10, "greedy_metric": "ctc_loss",
        "skip_blocks": {"top": {4: [4, 5], 2: [2, 3, 4, 5]}, "greedy": {4: [0, 5], 2: [0, 1, 3, 5]}}}


def write_output(folder: Path, keys, stats: dict) -> None:
    folder.mkdir(parents=True)
    for name in ("text", "token", "token_int", "score"):
        (folder / name).write_text("".join(f"{k} x\n" for k in keys))
    (folder / "decode_stats.yaml").write_text(yaml.safe_dump(stats))


def stats(seconds: float, flops: float, **extra) -> dict:
    return {"subnet": 24, **extra, "num_utterances": 2, "audio_seconds": 10.0, "decode_seconds": seconds,
            "rtf": seconds / 10.0, "parameters": int(flops / 100), "flops_per_second": flops}


def write_result(folder: Path, kind: str, err: float) -> None:
    (folder / f"score_{kind}").mkdir()
    (folder / f"score_{kind}" / "result.txt").write_text(
        f"| Sum/Avg|    2      10 | 90.0  5.0  5.0  0.0 {err:5.1f} 50.0 |\n")


def test_merge_keeps_pruned_outputs_and_their_labels(tmp_path):
    jobs = []
    for index, keys in enumerate((["u1", "u2"], ["u3"]), 1):
        job = tmp_path / f"output.{index}"
        write_output(job / "24", keys, stats(1.0, 2e6, skip_blocks=[]))
        write_output(job / "8", keys, stats(0.5, 1e6, skip_blocks=[]))
        write_output(job / "pruned" / "top" / "4", keys, stats(0.6, 1.5e6, strategy="top", depth=4, skip_blocks=[4, 5]))
        jobs.append(job)
    assert outputs_in(jobs[0]) == ["8", "24", "pruned/top/4"]
    assert merge_jobs(jobs, tmp_path / "merged") == ["8", "24", "pruned/top/4"]
    merged = yaml.safe_load((tmp_path / "merged" / "pruned" / "top" / "4" / "decode_stats.yaml").read_text())
    assert merged["strategy"] == "top" and merged["depth"] == 4 and merged["skip_blocks"] == [4, 5]
    assert merged["num_utterances"] == 4 and merged["num_jobs"] == 2
    assert merged["rtf"] == pytest.approx(1.2 / 20.0)
    text = (tmp_path / "merged" / "pruned" / "top" / "4" / "text").read_text().split("\n")
    assert [line.split()[0] for line in text if line] == ["u1", "u2", "u3"]


def test_merge_refuses_jobs_that_decoded_different_targets(tmp_path):
    write_output(tmp_path / "output.1" / "24", ["u1"], stats(1.0, 2e6))
    write_output(tmp_path / "output.1" / "pruned" / "top" / "4", ["u1"], stats(1.0, 2e6))
    write_output(tmp_path / "output.2" / "24", ["u2"], stats(1.0, 2e6))
    with pytest.raises(ValueError, match="output.2: decoded"):
        merge_jobs([tmp_path / "output.1", tmp_path / "output.2"], tmp_path / "merged")


def make_decode_dir(tmp_path: Path) -> Path:
    decode = tmp_path / "decode"
    (decode / "pruning").mkdir(parents=True)
    (decode / "pruning" / "pruning_plan.yaml").write_text(yaml.safe_dump(PLAN))
    full = decode / "test" / "24"
    write_output(full, ["u1"], stats(1.0, 6e6, skip_blocks=[]))
    write_result(full, "wer", 10.0)
    write_result(full, "cer", 4.0)
    for strategy, by_depth in PLAN["skip_blocks"].items():
        for depth, removed in by_depth.items():
            folder = decode / "test" / "pruned" / strategy / str(depth)
            write_output(folder, ["u1"], stats(0.25 * depth, 1e6 * depth, strategy=strategy, depth=depth,
                                               skip_blocks=removed))
            write_result(folder, "wer", 10.0 + 10 * (6 - depth) + (5 if strategy == "top" else 0))
            write_result(folder, "cer", 5.0)
    return decode


def table_rows(lines, first_cell):
    return [line for line in lines if line.startswith(f"| {first_cell} |")]


def test_pruning_tables_compare_rtf_speed_up_with_flops_ratio(tmp_path):
    lines = pruning_markdown(make_decode_dir(tmp_path), ["test"], [4, 2], ["top", "greedy"])
    assert "## Layer pruning on demand: subnet 24, 6 blocks" in lines
    # the stats name no checkpoint here: its column says n/a
    assert table_rows(lines, "none") == ["| none | 6 | none | 60k | 6M | 10.0 | 4.0 | 0.1000 | 1.00 | 1.00 | n/a |"]
    # depth 4: RTF 0.1 vs 0.1 -> 1.00; FLOPs 6M / 4M = 1.50; depth 2: 2.00 and 3.00
    assert table_rows(lines, "top") == ["| top | 4 | 4 5 | 40k | 4M | 35.0 | 5.0 | 0.1000 | 1.00 | 1.50 | n/a |",
                                        "| top | 2 | 2 3 4 5 | 20k | 2M | 55.0 | 5.0 | 0.0500 | 2.00 | 3.00 | n/a |"]
    assert table_rows(lines, "greedy")[1] == ("| greedy | 2 | 0 1 3 5 | 20k | 2M | 50.0 | 5.0 | 0.0500 | 2.00 | 3.00 "
                                              "| n/a |")
    start = lines.index("WER on test by blocks kept:")
    assert lines[start + 2:start + 7] == ["| blocks kept | WER top (%) | WER greedy (%) |", "|---:|---:|---:|",
                                          "| 6 | 10.0 | 10.0 |", "| 4 | 35.0 | 30.0 |", "| 2 | 55.0 | 50.0 |"]


def test_pruning_table_names_each_depths_checkpoint(tmp_path):
    """A depth decoded from its own checkpoint (asr.sh's --depth_model_file) says so in every
    strategy's row; the whole subnet and the other depths name the whole model's."""
    decode = make_decode_dir(tmp_path)
    for folder in (decode / "test").glob("**/decode_stats.yaml"):
        own = "/2/" in folder.as_posix()
        stats = yaml.safe_load(folder.read_text())
        stats["checkpoint"] = "valid.cer_interctc_layer2.ave.pth" if own else "valid.cer_ctc.ave.pth"
        folder.write_text(yaml.safe_dump(stats))
    lines = pruning_markdown(decode, ["test"], [4, 2], ["top", "greedy"])
    assert ("| strategy | blocks kept | removed | parameters | FLOPs / s of audio | WER test (%) | CER test (%) "
            "| RTF test | RTF speed-up | FLOPs ratio | checkpoint |") in lines
    checkpoints = {tuple(row.split(" | ")[:2]): row.split(" | ")[-1] for row in
                   table_rows(lines, "none") + table_rows(lines, "top") + table_rows(lines, "greedy")}
    assert checkpoints == {("| none", "6"): "`valid.cer_ctc.ave.pth` |",
                           ("| top", "4"): "`valid.cer_ctc.ave.pth` |", ("| greedy", "4"): "`valid.cer_ctc.ave.pth` |",
                           ("| top", "2"): "`valid.cer_interctc_layer2.ave.pth` |",
                           ("| greedy", "2"): "`valid.cer_interctc_layer2.ave.pth` |"}


def test_no_pruning_section_without_depths_or_plan(tmp_path):
    decode = make_decode_dir(tmp_path)
    assert pruning_markdown(decode, ["test"], [], ["top"]) == []
    (decode / "pruning" / "pruning_plan.yaml").unlink()
    assert pruning_markdown(decode, ["test"], [4], ["top"]) == []


def test_results_table_cli_appends_the_pruning_section(tmp_path, capsys):
    decode = make_decode_dir(tmp_path)
    results_table_cli.main(["--decode_dir", str(decode), "--test_sets", "test", "--subnets", "24",
                            "--prune_depths", "4 2", "--prune_strategies", "top greedy"])
    out = capsys.readouterr().out
    assert out.index("| 24 | 60k | 6M | 10.0 | 4.0 | 0.1000 |") < out.index("## Layer pruning on demand")
    assert "| top | 2 | 2 3 4 5 |" in out


def test_decoder_refuses_a_missing_foreign_or_malformed_pruning_plan(tmp_path):
    from types import SimpleNamespace

    from espnet_dynenc.decode.targets import pruning_targets

    model = SimpleNamespace(encoder=SimpleNamespace(num_blocks=6), subnet_sizes=[8, 24])
    with pytest.raises(FileNotFoundError, match="--pruning_plan: no such file"):
        pruning_targets(str(tmp_path / "missing.yaml"), model)
    plan = tmp_path / "pruning_plan.yaml"
    plan.write_text(yaml.safe_dump({"subnet": 24, "num_blocks": 6}))
    with pytest.raises(ValueError, match=r"pruning_plan.yaml: no 'skip_blocks'"):
        pruning_targets(str(plan), model)
    plan.write_text(yaml.safe_dump({**PLAN, "num_blocks": 12}))
    with pytest.raises(ValueError, match="made for subnet 24 of a 12-block encoder; this model has 6 blocks"):
        pruning_targets(str(plan), model)
    plan.write_text(yaml.safe_dump(PLAN))
    targets = pruning_targets(str(plan), model)
    assert {t.out_dir: t.skip_blocks for t in targets} == {
        "pruned/top/4": (4, 5), "pruned/top/2": (2, 3, 4, 5), "pruned/greedy/4": (0, 5), "pruned/greedy/2": (0, 1, 3, 5)}
    assert {t.size for t in targets} == {24}
