"""COMPARISON.md and comparison.png from fabricated experiment dirs (espnet_dynenc.recipe.comparison)."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from recipe.fabricated import TRAIN_LOG, decoded, write_pruning_plan
from espnet_dynenc.decode.outputs import PER_SIZE
from espnet_dynenc.recipe.comparison.report import comparison_markdown, mean_sd
from espnet_dynenc.recipe.comparison.runs import DECODE_DIR, Run, read_manifest
from espnet_dynenc.recipe.comparison.summaries import (collect, discover_test_sets, load_summary, save_summary,
                                                        summary_path)


def experiment(root: Path, name: str, sizes: dict, minutes: int, updates: int, params: int) -> Path:
    exp = root / "exp" / f"asr_{name}"
    decode = exp / DECODE_DIR / "test"
    decode.mkdir(parents=True)
    (decode / ".done").write_text("done\n")
    for size, (wer, flops) in sizes.items():
        decoded(decode / str(size), params * size // 24, flops, wer)
    (exp / "train.log").write_text(TRAIN_LOG.format(m=minutes))
    torch.save({"model": {"num_updates": torch.tensor(updates), "w": torch.zeros(params)}}, exp / "checkpoint.pth")
    return exp


@pytest.fixture
def comparison(tmp_path):
    lines = []
    for seed, shift in ((0, 0.0), (1, 2.0)):
        exp = experiment(tmp_path, f"des_seed{seed}", {8: (14.0 + shift, 70e6), 16: (11.0 + shift, 110e6),
                                                      24: (10.0 + shift, 140e6)}, 9, 2800, 1200)
        lines.append(f"des_simple_topk supernet {seed} {exp}")
        for size, wer in ((8, 7.0), (16, 6.0), (24, 5.0 + seed)):
            exp = experiment(tmp_path, f"ind{size}_seed{seed}", {size: (wer, size * 6e6)}, size // 8, 2800, 50 * size)
            lines.append(f"individual_{size} alone {seed} {exp}")
    exp = experiment(tmp_path, "pod_seed0", {24: (8.8, 140e6)}, 5, 2800, 1200)
    write_pruning_plan(exp / DECODE_DIR, 24, 6, {"top": {4: [4, 5]}, "greedy": {4: [3, 5]}},
                       {"top": 0.08, "greedy": 0.09})
    decoded(exp / DECODE_DIR / "test" / "pruned" / "top" / "4", 900, 110e6, 15.0, strategy="top", depth=4)
    decoded(exp / DECODE_DIR / "test" / "pruned" / "greedy" / "4", 900, 110e6, 12.0, strategy="greedy", depth=4)
    lines.append(f"prune_on_demand pruned 0 {exp}")
    exp = experiment(tmp_path, "dmao_seed0", {24: (4.5, 141e6)}, 6, 2800, 1210)
    lines.append(f"dmao dmao 0 {exp}")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return tmp_path, manifest


def test_tables_have_a_row_per_method_and_size_with_mean_and_sd(comparison):
    root, manifest = comparison
    data = collect(read_manifest(manifest), ["test"])
    text = comparison_markdown(data, ["test"], "./run_comparison.sh", 3600, when="2026-12-01 12:00")
    assert "| 8 | des_simple_topk | 2 | 400 | 70M | 15.0 ± 1.4 | 7.5 ± 0.7 |" in text
    assert "| 8 | trained alone | 2 | 133 | 48M | 7.0 ± 0.0 | 3.5 ± 0.0 |" in text
    assert "| 24 | 11.0 ± 1.4 | 5.5 ± 0.7 |" in text  # the pivot: DES, then trained alone
    # pruning: the best strategy on dev is top (lower dev CER), though greedy is better on test
    assert "| 4 | 16 | 15.0 (top) | 12.0 | 15.0 | 6.0 ± 0.0 |" in text
    assert "| dmao (24 modules) | 1 | 1.21k | 4.5 | 2.2 |" in text
    assert "| uniform, trained alone (24 modules) | 2 | 1.2k | 5.5 ± 0.7 | 2.8 ± 0.4 |" in text
    # training cost: updates and wall time from checkpoint and train.log, summed over the models trained alone
    assert "| des_simple_topk | 1 | 2800 ± 0 | 9m30s | 3.36M |" in text
    assert "| every size separately (3 models) | 3 | 8400 ± 0 | 7m30s | 6.72M |" in text
    assert "wall time of the whole comparison: 60m00s" in text


def test_every_claim_has_its_bootstrap_interval_and_verdict(comparison):
    root, manifest = comparison
    text = comparison_markdown(collect(read_manifest(manifest), ["test"]), ["test"], "./run_comparison.sh", 3600)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if " | better | " in line
            or " | parity | " in line}
    # 30 and 35 wrong utterances of 100 (5 words each), the same first ones: only 5 utterances differ
    assert rows["16 against 8 modules, both trained alone"].startswith(
        "| 16 against 8 modules, both trained alone | better | 2 / 2 | 6.0 ± 0.0 | 7.0 ± 0.0 | -1.00 [")
    assert rows["16 against 8 modules, both trained alone"].endswith("| holds |")
    # seeds of the 24-module model disagree (5 and 6%): the interval reaches 0
    assert rows["24 against 16 modules, both trained alone"].endswith("| not resolved |")
    assert rows["des_simple_topk at 8 modules against 8 trained alone"].endswith("| +8.00 [+5.80, +10.20] | fails (worse) |")
    assert rows["dmao against the uniform model of 24 modules trained alone"].endswith("| holds |")
    assert "prune_on_demand, 4 blocks kept (best on dev), against 16 modules trained alone" in rows
    assert "paired bootstrap over the test utterances (Bisani & Ney 2004, 2000 replicates)" in text
    assert "\n- test set test: 100 utterances, the same for every run\n" in text


def test_summaries_stand_for_the_runs_without_their_experiment_dirs(comparison, tmp_path):
    root, manifest = comparison
    runs = read_manifest(manifest)
    runs_dir = tmp_path / "comparison_runs"
    first = comparison_markdown(collect(runs, ["test"], runs_dir=runs_dir), ["test"], "x", 3600, when="w")
    assert sorted(p.name for p in runs_dir.iterdir())[:2] == ["des_simple_topk_seed0.json", "des_simple_topk_seed1.json"]
    assert len(list(runs_dir.iterdir())) == len(runs)
    shutil.rmtree(root / "exp")
    again = comparison_markdown(collect(runs, ["test"], runs_dir=runs_dir), ["test"], "x", 3600, when="w")
    assert again == first
    # a summary that stands for another run is refused by name
    summary_path(runs_dir, runs[1]).write_text(summary_path(runs_dir, runs[0]).read_text())
    with pytest.raises(ValueError, match="not individual_8 \\(alone\\) seed 0"):
        collect(runs, ["test"], runs_dir=runs_dir)


def test_a_summary_keeps_the_utterance_ids_once_and_older_ones_load_the_same(comparison, tmp_path):
    """Version 2 keeps each test set's ids and reference words once per run and a list of
    errors per size; a version-1 summary (an [errors, words] pair per utterance and size)
    loads to the same numbers and is written as version 2 when saved again."""
    root, manifest = comparison
    runs = read_manifest(manifest)
    runs_dir = tmp_path / "comparison_runs"
    new = collect(runs, ["test"], runs_dir=runs_dir)
    path = summary_path(runs_dir, runs[0])
    summary = json.loads(path.read_text())
    assert summary["version"] == 2
    ids, words = summary["references"]["test"]["ids"], summary["references"]["test"]["words"]
    assert ids == sorted(ids) and len(ids) == len(words) > 0
    for size, entry in summary["sizes"].items():
        assert "utterances" not in entry and len(entry["errors"]["test"]) == len(ids)
        assert new.sizes[runs[0]][int(size)].utterances["test"] == {
            u: [e, n] for u, e, n in zip(ids, entry["errors"]["test"], words)}
    # the same run written as version 1
    old = json.loads(path.read_text())
    del old["references"]
    old["version"] = 1
    for entry in old["sizes"].values():
        entry["utterances"] = {"test": {u: [e, n] for u, e, n in zip(ids, entry.pop("errors")["test"], words)}}
    for entry in old["full_size_rule"].values():
        entry["utterances"] = {t: {u: [e, n] for u, e, n in zip(ids, errors, words)}
                               for t, errors in entry.pop("errors").items()}
    path.write_text(json.dumps(old, indent=1))
    again = collect(runs, ["test"], runs_dir=runs_dir)
    assert again.sizes[runs[0]] == new.sizes[runs[0]] and again.full_size_rule[runs[0]] == new.full_size_rule[runs[0]]
    save_summary(load_summary(path, runs[0]), runs_dir)
    assert json.loads(path.read_text()) == summary
    # a run scored on another test set (one utterance less) cannot be set against the others
    fewer = json.loads(path.read_text())
    fewer["references"]["test"]["ids"].pop()
    fewer["references"]["test"]["words"].pop()
    for entry in list(fewer["sizes"].values()) + list(fewer["full_size_rule"].values()):
        entry["errors"]["test"].pop()
    path.write_text(json.dumps(fewer))
    expected = (f"scored different utterances of test set 'test' ({len(ids)} utterances: individual_8 seed 0, "
                f"individual_16 seed 0, individual_24 seed 0, des_simple_topk seed 1 and 5 more; {len(ids) - 1} "
                "utterances: des_simple_topk seed 0): decode them again on the same test set "
                "(./run_comparison.sh --redecode true)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        collect(runs, ["test"], runs_dir=runs_dir)
    # two decodings of one test set that scored other utterances cannot make one summary
    first, second = list(old["sizes"].values())[:2]
    second["utterances"]["test"].pop(ids[0])
    path.write_text(json.dumps(old, indent=1))
    with pytest.raises(ValueError, match="test set 'test' scored other utterances or references than each other"):
        load_summary(path, runs[0])


def test_sizes_from_their_own_checkpoints_and_from_the_full_sizes_are_both_reported(comparison):
    root, manifest = comparison
    for seed in (0, 1):
        exp = root / "exp" / f"asr_des_seed{seed}"
        own = exp / (DECODE_DIR + PER_SIZE) / "test"
        own.mkdir(parents=True)
        (own / ".done").write_text("done\n")
        for size, wer in ((8, 9.0), (16, 8.0), (24, 10.0 + 2 * seed)):
            decoded(own / str(size), 50 * size, 1e6 * size, wer)
            stats = yaml.safe_load((own / str(size) / "decode_stats.yaml").read_text())
            stats["checkpoint"] = f"valid.cer_ctc_{size}.ave.pth" if size < 24 else "valid.cer_ctc.ave.pth"
            (own / str(size) / "decode_stats.yaml").write_text(yaml.safe_dump(stats))
    text = comparison_markdown(collect(read_manifest(manifest), ["test"]), ["test"], "x", 3600)
    # the size tables use each size's own checkpoint
    assert "| 8 | des_simple_topk | 2 | 400 | 8M | 9.0 ± 0.0 |" in text
    assert "## Checkpoint rule: each size's own best epochs against the full size's (test)" in text
    rule = [line for line in text.splitlines() if line.startswith("| des_simple_topk | 8 |")][0]
    assert rule.startswith("| des_simple_topk | 8 | 2 | `valid.cer_ctc_8.ave.pth` | 9.0 ± 0.0 | 15.0 ± 1.4 | -6.00 [")


def test_cli_writes_both_files_and_refuses_bad_input(comparison, tmp_path):
    root, manifest = comparison
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.compare_results", "--manifest", str(manifest),
                           "--output_dir", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "COMPARISON.md").read_text().startswith("<!-- Written by espnet_dynenc.bin.compare_results")
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    bad = tmp_path / "bad.tsv"
    bad.write_text("des_simple_topk winner 0 exp/x\n")
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.compare_results", "--manifest", str(bad),
                           "--output_dir", str(out)], capture_output=True, text=True)
    assert proc.returncode != 0 and f"{bad}:1: expected '<method> <role: supernet|alone|pruned|dmao>" in proc.stderr
    missing = tmp_path / "missing.tsv"
    missing.write_text(f"des_simple_topk supernet 0 {tmp_path / 'nowhere'}\n")
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.compare_results", "--manifest", str(missing),
                           "--output_dir", str(out), "--test_sets", "test"], capture_output=True, text=True)
    assert proc.returncode != 0 and "no experiment dir" in proc.stderr and "nowhere" in proc.stderr


def test_mean_sd():
    assert mean_sd([1.0, 3.0]) == "2.0 ± 1.4"
    assert mean_sd([2.0, None]) == "2.0" and mean_sd([None]) == "n/a"


def test_the_pruning_folder_of_a_decoding_is_no_test_set(tmp_path):
    """Stage 12 marks its pruning plan's folder done as it marks a test set's: neither the
    decoding directory nor a summary written before the rule makes it a test set."""
    exp = experiment(tmp_path, "prune_on_demand", {24: (3.0, 9e6)}, 5, 40, 1000)
    (exp / DECODE_DIR / "pruning").mkdir()
    (exp / DECODE_DIR / "pruning" / ".done").write_text("done\n")
    run = Run("prune_on_demand", "pruned", 0, exp)
    assert discover_test_sets([run]) == ["test"]
    runs_dir = tmp_path / "comparison_runs"
    runs_dir.mkdir()
    summary_path(runs_dir, run).write_text(json.dumps({"test_sets": ["pruning", "test"]}))
    assert discover_test_sets([run], runs_dir=runs_dir) == ["test"]
