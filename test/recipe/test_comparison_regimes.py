"""Regimes (runs at another number of updates, compared only with each other) and the cost of a
run fine-tuned from a pre-trained model, in COMPARISON.md (espnet_dynenc.recipe.comparison)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from recipe.conftest import REPO
from recipe.fabricated import TRAIN_LOG
from recipe.test_comparison import experiment
from espnet_dynenc.recipe.comparison.claims import Collected, claims
from espnet_dynenc.recipe.comparison.cost import TrainingCost, between_sizes, sizes_cost, training_cost
from espnet_dynenc.recipe.comparison.decodings import Measured
from espnet_dynenc.recipe.comparison.report import checkpoint_rule_table, comparison_markdown
from espnet_dynenc.recipe.comparison.runs import MAIN_REGIME, Run, read_manifest
from espnet_dynenc.recipe.comparison.summaries import (collect, load_summary, refresh_costs, refresh_results,
                                                        summary_path)

RECIPE = REPO / "egs2" / "mini_synth" / "asr1"


@pytest.fixture
def regimes(tmp_path):
    """1x: a supernet (two seeds) and every size alone (two seeds), alone WER 7 / 6 / 5; 2x: the
    supernet and the sizes alone (one seed), alone WER 2 / 2 / 2, supernet 3 / 2 / 2."""
    lines = []
    for seed, shift in ((0, 0.0), (1, 1.0)):
        exp = experiment(tmp_path, f"des_seed{seed}", {8: (10.0 + shift, 70e6), 16: (8.0 + shift, 110e6),
                                                      24: (6.0 + shift, 140e6)}, 9, 8400, 1200)
        lines.append(f"des_simple_topk supernet {seed} {exp}")
        for size, wer in ((8, 7.0), (16, 6.0), (24, 5.0)):
            exp = experiment(tmp_path, f"ind{size}_seed{seed}", {size: (wer, size * 6e6)}, size // 8, 8400, 50 * size)
            lines.append(f"individual_{size} alone {seed} {exp}")
    exp = experiment(tmp_path, "des_2x_seed0", {8: (3.0, 70e6), 16: (2.0, 110e6), 24: (2.0, 140e6)}, 9, 16800, 1200)
    lines.append(f"des_simple_topk_2x supernet@2x 0 {exp}")
    for size in (8, 16, 24):
        exp = experiment(tmp_path, f"ind{size}_2x_seed0", {size: (2.0, size * 6e6)}, 2 * size // 8, 16800, 50 * size)
        lines.append(f"individual_{size}_2x alone@2x 0 {exp}")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_claims_of_a_regime_are_set_only_against_its_own_runs_alone(regimes):
    runs = read_manifest(regimes)
    assert {r.regime for r in runs} == {MAIN_REGIME, "2x"}
    assert [r.role for r in runs if r.regime == "2x"] == ["supernet", "alone", "alone", "alone"]
    data = collect(runs, ["test"])
    found = {claim.label: claim for claim in claims(data)}
    main = found["des_simple_topk at 8 modules against 8 trained alone"]
    longer = found["des_simple_topk_2x at 8 modules against 8 trained alone (2x)"]
    # 1x: both seeds of the 1x supernet against the two 1x runs alone (WER 7), nothing of 2x
    assert [m.wer["test"] for m in main.a] == [10.0, 11.0] and [m.wer["test"] for m in main.b] == [7.0, 7.0]
    # 2x: the one 2x supernet against the one 2x run alone (WER 2), never the 1x ones
    assert [m.wer["test"] for m in longer.a] == [3.0] and [m.wer["test"] for m in longer.b] == [2.0]
    for claim in found.values():
        pooled = {id(m) for m in claim.a + claim.b}
        assert not (pooled & {id(m) for r in runs if r.regime == "2x" for m in data.sizes[r].values()}
                    and pooled & {id(m) for r in runs if r.regime == MAIN_REGIME for m in data.sizes[r].values()}), \
            claim.label
    # no 1x supernet against 2x supernet claim, and the sizes alone compared within their regime
    assert "des_simple_topk against des_simple_topk_2x at 8 modules" not in found
    assert "16 against 8 modules, both trained alone (2x)" in found


def test_report_shows_2x_rows_next_to_1x_and_one_gap_line_per_size(regimes):
    data = collect(read_manifest(regimes), ["test"])
    text = comparison_markdown(data, ["test"], "./run_comparison.sh --plan conf/longer_plan.tsv", 3600, when="w")
    lines = text.splitlines()
    # the size table: per size the 1x rows, then the 2x rows
    eight = [line for line in lines if line.startswith("| 8 | ") and "M |" in line]
    assert [line.split(" | ")[1] for line in eight] == ["des_simple_topk", "trained alone", "des_simple_topk_2x (2x)",
                                                        "trained alone (2x)"]
    assert "| 8 | trained alone (2x) | 1 | 133 | 48M | 2.0 | 1.0 |" in text
    assert "| modules | des_simple_topk | trained alone | des_simple_topk_2x (2x) | trained alone (2x) |" in text
    assert "| 8 | 10.5 ± 0.7 | 7.0 ± 0.0 | 3.0 | 2.0 |" in text
    # one gap line per size: the 1x gap (10 / 11 against 7: +3.5) and the 2x gap (3 against 2: +1.0)
    assert "## Does the gap close with longer training? (test)" in text
    assert ("| modules | supernet at 1x | gap at 1x: supernet - alone [95% interval] | supernet at 2x | "
            "gap at 2x: supernet - alone [95% interval] | verdict at 2x |") in text
    gaps = [line for line in lines if line.startswith("| ") and "| des_simple_topk_2x | " in line]
    assert [line.split(" | ")[0] for line in gaps] == ["| 8", "| 16", "| 24"]
    assert gaps[0].startswith("| 8 | des_simple_topk | +3.50 [") and "| des_simple_topk_2x | +1.00 [" in gaps[0]
    assert gaps[0].endswith("| fails (worse) |")
    assert gaps[2].startswith("| 24 | des_simple_topk | +1.50 [") and "| +0.00 [+0.00, +0.00] |" in gaps[2]
    assert gaps[2].endswith("| holds (no difference resolved) |")
    # the training cost of each regime's sizes alone, apart
    assert "| every size separately (3 models) | 3 | 25200 ± 0 |" in text
    assert "| every size separately, 2x (3 models) | 3 | 50400 |" in text
    assert "| des_simple_topk_2x (2x) | 1 | 16800 |" in text


def test_cost_of_more_sizes_from_the_measured_seconds_per_update():
    """The supernet's measured wall time against every size alone: measured for the sizes trained,
    and for the sizes in between from a line through the measured seconds per update."""
    assert between_sizes([24, 8, 16]) == [8, 12, 16, 20, 24]
    assert between_sizes([2, 3]) == [2, 3] and between_sizes([4]) == [4]
    supernet = [TrainingCost(100, 900.0, 10), TrainingCost(100, 1000.0, 10)]
    # 1, 2 and 3 s per update at 8 / 16 / 24 modules; a run without a wall time is left out
    alone = {8: [TrainingCost(100, 100.0, 1), TrainingCost(100, None, 1)], 16: [TrainingCost(100, 200.0, 2)],
             24: [TrainingCost(100, 300.0, 3)]}
    measured, computed = sizes_cost(supernet, alone)
    assert (measured.sizes, measured.measured, measured.updates_alone) == ([8, 16, 24], True, 300)
    assert (measured.seconds_supernet, measured.seconds_alone) == (950.0, 600.0)
    assert measured.ratio == pytest.approx(600 / 950)
    # 1 + 1.5 + 2 + 2.5 + 3 s per update, 100 updates each; the supernet's side unchanged
    assert (computed.sizes, computed.measured, computed.updates_alone) == ([8, 12, 16, 20, 24], False, 500)
    assert computed.seconds_alone == pytest.approx(1000.0) and computed.seconds_supernet == 950.0
    assert sizes_cost(supernet, {8: alone[8]}) == []  # one size alone: no line to draw
    assert sizes_cost([TrainingCost(100, None, 10)], alone) == []


def test_report_has_the_cost_of_more_sizes(regimes):
    data = collect(read_manifest(regimes), ["test"])
    text = comparison_markdown(data, ["test"], "x", None, when="w")
    section = text[text.index("## Training cost with more sizes (per seed)"):]
    assert "| 8 / 16 / 24 | measured | 8400, " in section
    assert "| 8 / 12 / 16 / 20 / 24 | computed per update | 8400, " in section and "2x" not in section


def test_checkpoint_rule_rows_of_pruned_depths_when_a_run_lacks_one(tmp_path):
    """Pruned depths decoded by both rules: one row per depth and strategy, over the runs that
    have that depth (seed 1 decoded depth 4 only)."""
    def measured(wer, checkpoint):
        return Measured(16, 400, 4e6, wer={"test": wer}, checkpoint=checkpoint)

    runs = [Run("prune_on_demand", "pruned", seed, tmp_path / f"s{seed}") for seed in (0, 1)]
    own = {runs[0]: {4: {"top": measured(5.0, "valid.cer_interctc_layer4.ave.pth")},
                     2: {"top": measured(9.0, "valid.cer_interctc_layer2.ave.pth")}},
           runs[1]: {4: {"top": measured(6.0, "valid.cer_interctc_layer4.ave.pth")}}}
    full = {runs[0]: {4: {"top": measured(5.5, "valid.cer_ctc.ave.pth")}, 2: {"top": measured(10.0, "x")}},
            runs[1]: {4: {"top": measured(6.5, "valid.cer_ctc.ave.pth")}}}
    data = Collected(runs, {r: {} for r in runs}, own, {}, pruned_full_size_rule=full)
    rows = checkpoint_rule_table(data, "test")
    assert "| prune_on_demand, 4 blocks (top) | 16 | 2 | `valid.cer_interctc_layer4.ave.pth` | 5.5 ± 0.7 | 6.0 ± 0.7 |" \
        in "\n".join(rows)
    assert any(row.startswith("| prune_on_demand, 2 blocks (top) | 16 | 1 |") for row in rows)


def test_manifest_regimes_are_checked_by_line():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        bad = Path(tmp) / "bad.tsv"
        bad.write_text("des supernet@ 0 exp/a\n")
        with pytest.raises(ValueError, match="bad.tsv:1: expected '<method> <role: supernet|alone|pruned|dmao>"
                                             r"\[@<regime>\]"):
            read_manifest(bad)
        bad.write_text("des supernet 0 exp/a\ndes supernet@2x 1 exp/b\n")
        with pytest.raises(ValueError, match="bad.tsv:2: method des is of regime 2x here but of 1x on line 1"):
            read_manifest(bad)


# ------------------------------------------------------------------ pre-training + fine-tuning
def stock_experiment(recipe: Path, tag: str, minutes: int, steps: int = 0, epochs: int = 7) -> Path:
    """exp/asr_<tag>_stock as finetune_from_stock.sh leaves it: ESPnet's stock model (no
    num_updates buffer; Adam's per-parameter step count, or none for SGD), its train.log, and
    the conversion's supernet_init/init.yaml naming it."""
    stock = recipe / "exp" / f"asr_{tag}_stock"
    (stock / "supernet_init").mkdir(parents=True)
    (stock / "train.log").write_text(TRAIN_LOG.format(m=minutes))
    (stock / "config.yaml").write_text(yaml.safe_dump({"num_iters_per_epoch": 900, "max_epoch": epochs,
                                                       "accum_grad": 3, "encoder": "conformer"}))
    weights = {"encoder.w": torch.zeros(300), "ctc.ctc_lo.weight": torch.zeros(20),
               "encoder.norm.num_batches_tracked": torch.tensor(5)}
    state = {0: {"step": torch.tensor(float(steps)), "exp_avg": torch.zeros(3)},
             1: {"step": torch.tensor(float(steps)), "exp_avg": torch.zeros(3)}} if steps else {}
    torch.save({"model": weights, "optimizers": [{"state": state, "param_groups": []}],
                "schedulers": [{"last_epoch": epochs}], "reporter": {"epoch": epochs, "stats": {}}},
               stock / "checkpoint.pth")
    (stock / "supernet_init" / "init.yaml").write_text(yaml.safe_dump({"source": {
        "asr_train_config": f"exp/asr_{tag}_stock/config.yaml",
        "asr_model_file": f"exp/asr_{tag}_stock/valid.cer_ctc.ave.pth"}, "method": "des"}))
    return stock


def finetuned(recipe: Path, tag: str, steps: int = 6300) -> Path:
    """A supernet fine-tuned from the converted stock model (its config's init_param, relative to
    the recipe dir as asr.sh writes it), 2100 updates in 4m30s."""
    stock_experiment(recipe, tag, 7, steps)
    exp = experiment(recipe, tag, {8: (12.0, 70e6), 24: (8.0, 140e6)}, 4, 2100, 1000)
    (exp / "config.yaml").write_text(yaml.safe_dump({
        "init_param": [f"exp/asr_{tag}_stock/supernet_init/model.pth"], "ignore_init_mismatch": False}))
    return exp


def test_a_finetuned_run_counts_its_pretraining(tmp_path):
    recipe = tmp_path / "recipe"
    exp = finetuned(recipe, "des_finetune_seed0")
    cost = training_cost(Run("des_finetune", "supernet", 0, exp))
    # fine-tuning: its num_updates and train.log (4m30s); pre-training: Adam's step count, 7m30s,
    # its floating-point weights (320, no buffers)
    assert (cost.updates, cost.seconds, cost.parameters) == (2100, 270.0, 1000)
    assert (cost.pretraining_updates, cost.pretraining_seconds, cost.pretraining_parameters) == (6300, 450.0, 320)
    assert cost.pretraining_exp_dir == "exp/asr_des_finetune_seed0_stock"
    assert cost.total_updates() == 8400 and cost.total_seconds() == 720.0
    # an optimizer without a step count (SGD): epochs run x num_iters_per_epoch / accum_grad of its config
    other = finetuned(recipe, "des_finetune_seed1", steps=0)
    assert training_cost(Run("des_finetune", "supernet", 1, other)).pretraining_updates == 7 * 900 // 3
    # a run from scratch, and one whose init_param has no conversion record: no pre-training
    plain = experiment(recipe, "des_seed0", {8: (10.0, 70e6)}, 9, 8400, 1200)
    assert training_cost(Run("des", "supernet", 0, plain)).pretraining_exp_dir is None
    (plain / "config.yaml").write_text(yaml.safe_dump({"init_param": ["/elsewhere/model.pth:encoder:encoder"]}))
    assert not training_cost(Run("des", "supernet", 0, plain)).pretrained


def test_cost_table_shows_pretraining_plus_finetuning_with_a_footnote(tmp_path, monkeypatch):
    recipe = tmp_path / "recipe"
    lines = [f"des_finetune supernet {seed} {finetuned(recipe, f'des_finetune_seed{seed}')}" for seed in (0, 1)]
    alone = experiment(recipe, "ind8_seed0", {8: (7.0, 48e6)}, 1, 8400, 400)
    lines.append(f"individual_8 alone 0 {alone}")
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)  # the paths in the configs resolve under the recipe dir, not here
    data = collect(read_manifest(manifest), ["test"], runs_dir=tmp_path / "runs")
    text = comparison_markdown(data, ["test"], "x", None, when="w")
    # 6300 + 2100 updates, 7m30s + 4m30s, 6300 x 320 + 2100 x 1000 parameter updates
    assert "| des_finetune† | 1 | 8400 ± 0 | 12m00s | 4.12M |" in text
    assert ("† des_finetune: pre-training + fine-tuning. Pre-training (`exp/asr_des_finetune_seed0_stock`, "
            "`exp/asr_des_finetune_seed1_stock`): 6300 ± 0 updates, 7m30s; fine-tuning: 2100 ± 0 updates, 4m30s") in text
    saved = json.loads((tmp_path / "runs" / "des_finetune_seed0.json").read_text())
    assert saved["cost"]["pretraining_updates"] == 6300 and saved["regime"] == MAIN_REGIME


def test_older_summaries_load_and_their_costs_can_be_refreshed(tmp_path, monkeypatch):
    # a summary as written before regimes and pre-training costs: the recipe's committed one
    # without those fields
    old = json.loads((RECIPE / "comparison_runs" / "des_finetune_seed0.json").read_text())
    old.pop("regime", None)
    old["cost"] = {k: v for k, v in old["cost"].items() if not k.startswith("pretraining_")}
    committed = tmp_path / "des_finetune_seed0.json"
    committed.write_text(json.dumps(old, indent=1) + "\n")
    run = Run("des_finetune", "supernet", 0, Path(old["exp_dir"]))
    cost = TrainingCost(**load_summary(committed, run)["cost"])
    assert not cost.pretrained and cost.total_updates() == cost.updates
    with pytest.raises(ValueError, match=r"stands for des_finetune \(supernet\) seed 0, not des_finetune "
                                         r"\(supernet@2x\) seed 0"):
        load_summary(committed, Run("des_finetune", "supernet", 0, Path(old["exp_dir"]), "2x"))

    recipe = tmp_path / "recipe"
    finetuned(recipe, "des_finetune_seed0")
    monkeypatch.chdir(recipe)
    runs_dir = recipe / "comparison_runs"
    runs_dir.mkdir()
    old["exp_dir"] = "exp/asr_des_finetune_seed0"
    (runs_dir / "des_finetune_seed0.json").write_text(json.dumps(old, indent=1) + "\n")
    before = load_summary(runs_dir / "des_finetune_seed0.json", Run("des_finetune", "supernet", 0, Path(old["exp_dir"])))
    manifest = recipe / "one.tsv"
    manifest.write_text("des_finetune supernet 0 exp/asr_des_finetune_seed0\n")
    proc = subprocess.run([sys.executable, "-m", "espnet_dynenc.bin.compare_results", "--manifest", str(manifest),
                           "--runs_dir", "comparison_runs", "--refresh_costs"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "cost refreshed: comparison_runs/des_finetune_seed0.json" in proc.stdout
    refreshed = json.loads((runs_dir / "des_finetune_seed0.json").read_text())
    assert refreshed["cost"] == {"updates": 2100, "seconds": 270.0, "parameters": 1000, "pretraining_updates": 6300,
                                 "pretraining_seconds": 450.0, "pretraining_parameters": 320,
                                 "pretraining_exp_dir": "exp/asr_des_finetune_seed0_stock"}
    assert {k: v for k, v in refreshed.items() if k != "cost"} == {k: v for k, v in before.items() if k != "cost"}
    # a run whose experiment dir is not here is refused by name, nothing written
    gone = Run("des_finetune", "supernet", 0, recipe / "exp" / "nowhere")
    with pytest.raises(FileNotFoundError, match="no experiment dir .*nowhere to read it again from"):
        refresh_costs([gone], runs_dir)
    with pytest.raises(FileNotFoundError, match="no summary .*individual_8_seed0.json to refresh"):
        refresh_costs([Run("individual_8", "alone", 0, recipe)], runs_dir)
    assert summary_path(runs_dir, gone).read_text() == (runs_dir / "des_finetune_seed0.json").read_text()


def test_results_refreshed_after_a_run_is_decoded_again_keep_its_run_time(tmp_path, monkeypatch):
    """A run averaged again and decoded again: its summary takes the new WER and keeps the
    wall time it was measured with (the decoding again is no training cost)."""
    import shutil

    monkeypatch.chdir(tmp_path)
    experiment(tmp_path, "des_seed0", {8: (10.0, 70e6), 24: (6.0, 140e6)}, 9, 8400, 1200)
    run = Run("des_simple_topk", "supernet", 0, Path("exp/asr_des_seed0"))
    runs_dir = tmp_path / "runs"
    collect([run], ["test"], runs_dir=runs_dir, run_seconds=1234.0)
    shutil.rmtree(tmp_path / "exp" / "asr_des_seed0")
    experiment(tmp_path, "des_seed0", {8: (10.0, 70e6), 24: (4.0, 140e6)}, 9, 8400, 1200)  # 24 decoded again
    with pytest.raises(FileNotFoundError, match="no summary .*individual_8_seed0.json to refresh"):
        refresh_results([run, Run("individual_8", "alone", 0, Path("exp/asr_des_seed0"))], runs_dir)
    assert load_summary(summary_path(runs_dir, run), run)["sizes"]["24"]["wer"] == {"test": 6.0}  # nothing written
    assert refresh_results([run], runs_dir) == [summary_path(runs_dir, run)]
    summary = load_summary(summary_path(runs_dir, run), run)
    assert summary["sizes"]["24"]["wer"] == {"test": 4.0} and summary["sizes"]["8"]["wer"] == {"test": 10.0}
    assert summary["run_seconds"] == 1234.0 and summary["test_sets"] == ["test"]
