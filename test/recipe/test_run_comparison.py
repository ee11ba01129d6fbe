"""run_comparison.sh's orchestration, with a STAND-IN run.sh that trains nothing.

What this proves is the comparison driver: seed by seed order, the options each run gets
(config, tag, seed, the second decoding of supernets with the full size's checkpoint), one
summary per finished run in comparison_runs/, continuing after a failed run without redoing
the finished ones, a report-only call when everything is summarised, and COMPARISON.md with a
row per method carrying the numbers of the runs. The stand-in (recipe/standin_run.py) writes
the experiment dirs asr.sh's stages 11-13 would leave, with made-up error rates.

Real trainings of the plan's methods are proven by their own tests (test_des_training,
test_dmao_training, test_pruning, test_mini_synth_recipe); test_mini_synth_recipe also
summarises a real experiment with compare_results.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from recipe.conftest import REPO, TEMPLATE
from recipe.test_mini_synth_recipe import CONFIG, RECIPE

PLAN = """# method role seeds config options
des_simple_topk  supernet  main   conf/cmp/des.yaml    --subnets "4 8"
des_zero_out     supernet  main   conf/cmp/zero.yaml   --subnets "4 8"
individual_4     alone     main   conf/cmp/ind4.yaml   --subnets 4
individual_8     alone     main   conf/cmp/ind8.yaml   --subnets 8
aux_loss         supernet  other  conf/cmp/aux.yaml    --subnets "4 8"
prune_on_demand  pruned    other  conf/cmp/pod.yaml    --subnets "" --prune_depths 1 --prune_strategies "top greedy"
dmao             dmao      other  conf/cmp/dmao.yaml   --subnets ""
"""
STANDIN_RUN_SH = """#!/usr/bin/env bash
# STAND-IN for run.sh (test only): trains nothing, writes experiment dirs (recipe/standin_run.py)
exec "${STANDIN_PYTHON}" -m recipe.standin_run "$@"
"""


def make_recipe(root: Path) -> Path:
    recipe = root / "egs2" / "mini_synth" / "asr1"
    (recipe / "conf" / "cmp").mkdir(parents=True)
    for name in ("path.sh", "utils", "run_comparison.sh"):
        (recipe / name).symlink_to(TEMPLATE / name)
    (recipe / "run.sh").write_text(STANDIN_RUN_SH)
    (recipe / "run.sh").chmod(0o755)
    per_size = [["valid", "cer_ctc_4", "min"], ["valid", "cer_ctc", "min"]]
    per_depth = [["valid", "cer_interctc_layer1", "min"], ["valid", "cer_ctc", "min"]]
    criteria = {"des": per_size, "zero": per_size, "pod": per_depth}
    for name in ("des", "zero", "ind4", "ind8", "aux", "pod", "dmao"):
        config = {**CONFIG, "best_model_criterion": criteria[name]} if name in criteria else CONFIG
        (recipe / "conf" / "cmp" / f"{name}.yaml").write_text(yaml.safe_dump(config))
    (recipe / "conf" / "plan.tsv").write_text(PLAN)
    ranks = {"cer_ctc": 0.1, "cer_ctc_4": 0.2, "cer_interctc_layer1": 0.3}  # every criterion: epoch 1 best
    reporter = {"epoch": 2, "stats": {e: {"valid": {k: v * e for k, v in ranks.items()}} for e in (2, 1)}}
    torch.save({"model": {"num_updates": torch.tensor(40), "w": torch.zeros(800)}, "reporter": reporter},
               root / "checkpoint.pth")
    return recipe


def compare(recipe: Path, *extra: str, fail: str = "", wer_shift: float = 0.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, STANDIN_PYTHON=sys.executable, STANDIN_FAIL=fail, STANDIN_WER_SHIFT=str(wer_shift),
               STANDIN_CHECKPOINT=str(recipe.parents[2] / "checkpoint.pth"),
               PYTHONPATH=f"{REPO / 'test'}:{REPO}")
    return subprocess.run(["./run_comparison.sh", "--plan", "conf/plan.tsv", "--seeds", "0 1", "--other_seeds", "0",
                           *extra], cwd=recipe, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)


def calls(recipe: Path) -> list:
    path = recipe / "exp" / "standin_calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow  # whole recipe scripts in subprocesses (~40 s), though no training
def test_run_comparison_orders_resumes_and_writes_every_table_with_a_row_per_method(tmp_path):
    recipe = make_recipe(tmp_path)

    # run 5 (aux_loss, seed 0) fails: the four before it are summarised, no report is written
    failed = compare(recipe, fail="aux_loss_seed0")
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "error: run aux_loss_seed0 failed; see exp/comparison/logs/aux_loss_seed0.log" in failed.stdout
    assert sorted(p.name for p in (recipe / "comparison_runs").iterdir()) == [
        "des_simple_topk_seed0.json", "des_zero_out_seed0.json", "individual_4_seed0.json", "individual_8_seed0.json"]
    assert not (recipe / "COMPARISON.md").exists()

    first_calls = len(calls(recipe))
    proc = compare(recipe)
    assert proc.returncode == 0, proc.stdout[-6000:]
    # seed by seed: every method of seed 0, then the main ones of seed 1; finished runs are not redone
    assert "run 1/11: des_simple_topk, seed 0: done (comparison_runs/des_simple_topk_seed0.json)" in proc.stdout
    assert "run 5/11: aux_loss, seed 0 (conf/cmp/aux.yaml" in proc.stdout
    assert "run 7/11: dmao, seed 0 (conf/cmp/dmao.yaml" in proc.stdout
    assert "run 11/11: individual_8, seed 1 (conf/cmp/ind8.yaml" in proc.stdout
    assert "Stage 11: training finished after 2 epochs (stand-in" in proc.stdout  # each run's progress shows
    made = calls(recipe)[first_calls:]
    assert made[0] == ["--stop_stage", "10"]  # data preparation first (run.sh skips what is done)
    tags = [call[call.index("--asr_tag") + 1] for call in made if "--asr_tag" in call and call[1] == "11"]
    assert tags == ["aux_loss_seed0", "prune_on_demand_seed0", "dmao_seed0", "des_simple_topk_seed1",
                    "des_zero_out_seed1", "individual_4_seed1", "individual_8_seed1"]
    # each run: its config, tag, seed and options; supernets (pruned models) decoded again with the
    # full size's checkpoint
    assert ["--stage", "11", "--stop_stage", "13", "--asr_config", "conf/cmp/des.yaml", "--asr_tag",
            "des_simple_topk_seed1", "--asr_args", "--seed 1", "--subnets", "4 8"] in made
    assert ["--stage", "12", "--stop_stage", "13", "--size_checkpoints", "false", "--asr_config", "conf/cmp/des.yaml",
            "--asr_tag", "des_simple_topk_seed1", "--asr_args", "--seed 1", "--subnets", "4 8"] in made
    assert ["--stage", "11", "--stop_stage", "13", "--asr_config", "conf/cmp/pod.yaml", "--asr_tag",
            "prune_on_demand_seed0", "--asr_args", "--seed 0", "--subnets", "", "--prune_depths", "1",
            "--prune_strategies", "top greedy"] in made
    second_decodings = [c[c.index("--asr_tag") + 1] for c in made if "--size_checkpoints" in c]
    assert second_decodings == ["aux_loss_seed0", "prune_on_demand_seed0", "des_simple_topk_seed1",
                                "des_zero_out_seed1"]

    text = (recipe / "COMPARISON.md").read_text()
    # the runs' numbers (stand-in WER: 10.0 / 6.0 alone at 4 / 8 modules, + 0.2 per seed, + 1.0 for DES,
    # - 0.5 from a size's own checkpoint), a row per method and size, means and sd over the seeds
    for row in ("| 4 | des_simple_topk | 2 | 400 | 4M | 10.6 ± 0.1 |", "| 8 | des_zero_out | 2 | 800 | 8M | 8.1 ± 0.1 |",
                "| 4 | aux_loss | 1 | 400 | 4M | 11.5 |", "| 4 | trained alone | 2 | 400 | 4M | 10.1 ± 0.1 |",
                "| 8 | trained alone | 2 | 800 | 8M | 6.1 ± 0.1 |",
                "| modules | des_simple_topk | des_zero_out | aux_loss | trained alone |",
                "| dmao (8 modules) | 1 |", "| uniform, trained alone (8 modules) | 2 |", "| des_simple_topk | 1 |",
                "| every size separately (2 models) | 2 |", "| claim | kind | seeds (a / b) |"):
        assert row in text, row
    # pruning: chosen on dev (top), not test; decoded from the depth's own checkpoint (- 0.5)
    assert "| 1 | 4 | 13.5 (top) | 11.5 | 13.5 | 10.1 ± 0.1 |" in text
    rule = text[text.index("## Checkpoint rule"):]
    assert "| prune_on_demand, 1 blocks (top) | 4 | 1 | `valid.cer_interctc_layer1.ave.pth` | 13.5 | 14.0 |" in rule
    assert (recipe / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    manifest = (recipe / "exp" / "comparison" / "manifest.tsv").read_text().splitlines()
    assert len(manifest) == 11 and manifest[0] == "des_simple_topk supernet 0 exp/asr_des_simple_topk_seed0"
    summaries = sorted(p.name for p in (recipe / "comparison_runs").iterdir())
    assert len(summaries) == 11 and "dmao_seed0.json" in summaries and "individual_8_seed1.json" in summaries
    summary = json.loads((recipe / "comparison_runs" / "des_simple_topk_seed1.json").read_text())
    assert summary["decode_dir"].endswith("_per_size") and summary["cost"]["updates"] == 40
    assert summary["sizes"]["4"]["checkpoint"] == "valid.cer_ctc_4.ave.pth"
    assert summary["full_size_rule"]["4"]["checkpoint"] == "valid.cer_ctc.ave.pth"
    pruned = json.loads((recipe / "comparison_runs" / "prune_on_demand_seed0.json").read_text())
    assert pruned["decode_dir"].endswith("_per_size") and pruned["pruned_full_size_rule"]["1"]["top"]["wer"] == {
        "test": 14.0}
    assert pruned["pruned"]["1"]["greedy"]["checkpoint"] == "valid.cer_interctc_layer1.ave.pth"

    # everything summarised: no run.sh call, only the report
    before = len(calls(recipe))
    again = compare(recipe)
    assert again.returncode == 0, again.stdout[-3000:]
    assert len(calls(recipe)) == before and "data preparation" not in again.stdout
    assert "run 11/11: individual_8, seed 1: done (comparison_runs/individual_8_seed1.json)" in again.stdout
    assert "all 11 runs finished (0 in this call" in again.stdout

    bad = compare(recipe, "--methods", "nonesuch")
    assert bad.returncode == 2 and "no run of conf/plan.tsv matches --methods 'nonesuch'" in bad.stdout


def _plan_rows(path):
    rows = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            method, role, group, config, *options = line.split()
            rows[method] = (role, group, config, " ".join(options))
    return rows


def test_ablation_plan_shares_the_comparisons_runs_and_has_every_config():
    """The rows both plans name are the same runs (their summaries count for both reports);
    every config of the ablation exists; the published supernet is the first supernet row."""
    comparison = _plan_rows(RECIPE / "conf" / "comparison_plan.tsv")
    ablation = _plan_rows(RECIPE / "conf" / "ablation_plan.tsv")
    for method in ("des_simple_topk", "individual_8", "individual_16", "individual_24", "prune_on_demand"):
        assert ablation[method] == comparison[method], method
    for method, (role, group, config, _) in ablation.items():
        assert (RECIPE / config).is_file(), config
        assert role in ("supernet", "alone", "pruned") and group in ("main", "other", "baseline"), method
        assert (group == "baseline") == (role == "alone"), method  # the sizes alone: six seeds
    assert next(m for m, row in ablation.items() if row[0] == "supernet") == "des_simple_topk"
    assert {"des_distill", "des_size_aware", "des_dropout_kept", "des_supernet_reg", "des_late_start",
            "des_combined", "prune_on_demand_distill"} <= set(ablation)
    combined = yaml.safe_load((RECIPE / ablation["des_combined"][2]).read_text())["model_conf"]
    assert combined["inplace_distillation"]["weight"] > 0 and combined["subnet_loss_weighting"] == "size_aware"
    assert combined["pass_regularization"] == "supernet_only"


def test_another_plan_writes_its_own_report_from_finished_runs(tmp_path):
    """--report ABLATION.md: the report and its plot under their own names, COMPARISON.md left
    alone; runs with a summary are not trained again (here: no run.sh would work)."""
    recipe = tmp_path / "egs2" / "mini_synth" / "asr1"
    (recipe / "conf").mkdir(parents=True)
    for name in ("run_comparison.sh", "path.sh", "utils"):
        (recipe / name).symlink_to(TEMPLATE / name)
    (recipe / "run.sh").write_text("#!/usr/bin/env bash\necho 'run.sh must not run' >&2\nexit 1\n")
    (recipe / "run.sh").chmod(0o755)
    runs = recipe / "comparison_runs"
    runs.mkdir()
    methods = {"des_simple_topk": "supernet", "individual_8": "alone", "individual_16": "alone"}
    lines = []
    for method, role in methods.items():
        (recipe / "conf" / f"{method}.yaml").write_text("{}\n")
        lines.append(f"{method} {role} main conf/{method}.yaml")
        shutil.copy(RECIPE / "comparison_runs" / f"{method}_seed0.json", runs)
    (recipe / "conf" / "plan.tsv").write_text("\n".join(lines) + "\n")
    (recipe / "COMPARISON.md").write_text("the comparison's own report\n")

    def compare(*extra):
        return subprocess.run(["./run_comparison.sh", "--plan", "conf/plan.tsv", "--seeds", "0", "--other_seeds", "0",
                               "--python", sys.executable, *extra], cwd=recipe, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=600)

    proc = compare("--report", "ABLATION.md")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "run 1/3: des_simple_topk, seed 0: done (comparison_runs/des_simple_topk_seed0.json)" in proc.stdout
    assert "ABLATION.md and ablation.png into ." in proc.stdout
    text = (recipe / "ABLATION.md").read_text()
    assert "--report ABLATION.md" in text and "| 8 | des_simple_topk | 1 |" in text
    assert "| 16 | trained alone | 1 |" in text
    assert (recipe / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    assert (recipe / "COMPARISON.md").read_text() == "the comparison's own report\n"
    assert not (recipe / "comparison.png").exists()
    default = compare()  # the comparison's names when no --report is given
    assert default.returncode == 0, default.stdout[-4000:]
    assert (recipe / "COMPARISON.md").read_text().startswith("<!-- Written by espnet_dynenc.bin.compare_results")
    assert (recipe / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    bad = compare("--report", "ablation.txt")
    assert bad.returncode == 2 and "--report must be a file name ending in .md, got 'ablation.txt'" in bad.stdout

    # a run of the plan without a summary: --report_only reports the others and trains nothing
    (recipe / "conf" / "individual_24.yaml").write_text("{}\n")
    (recipe / "conf" / "plan.tsv").write_text("\n".join(lines + ["individual_24 alone main conf/individual_24.yaml"]) + "\n")
    partial = compare("--report", "PARTIAL.md", "--report_only", "true")
    assert partial.returncode == 0, partial.stdout[-4000:]
    assert "run 4/4: individual_24, seed 0: not run yet, left out of the report (--report_only)" in partial.stdout
    assert "3 of 4 runs summarised (--report_only); PARTIAL.md and partial.png into ." in partial.stdout
    text = (recipe / "PARTIAL.md").read_text()
    assert "--report_only true" in text and "| 16 | trained alone | 1 |" in text and "| 24 | trained alone" not in text
    assert not list((recipe / "exp" / "comparison").glob("manifest.tsv.*"))  # no temporary manifest left
    trains = compare("--report", "PARTIAL.md")  # without it, the missing run is trained: run.sh is called
    assert trains.returncode == 1 and "data preparation failed" in trains.stdout
    wrong = compare("--report_only", "maybe")
    assert wrong.returncode == 2 and "--report_only must be true or false, got 'maybe'" in wrong.stdout


def test_a_plan_line_with_a_runner_trains_through_it(tmp_path):
    """"--runner SCRIPT" first among a plan line's options: SCRIPT gets the run's stages and options
    in place of ./run.sh (e.g. local/finetune_from_stock.sh); a runner that is not there is refused."""
    recipe = tmp_path / "recipe"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "local").mkdir()
    (recipe / "run_comparison.sh").symlink_to(TEMPLATE / "run_comparison.sh")
    (recipe / "path.sh").symlink_to(TEMPLATE / "path.sh")
    for script, status in (("run.sh", 0), ("local/runner.sh", 3)):
        (recipe / script).write_text(f'#!/usr/bin/env bash\necho "{script} $*" >>calls.txt\nexit {status}\n')
        (recipe / script).chmod(0o755)
    (recipe / "conf" / "des.yaml").write_text("model: supernet_ctc\n")
    (recipe / "conf" / "plan.tsv").write_text(
        'tuned  supernet  main  conf/des.yaml  --runner local/runner.sh --subnets "4 8"\n')

    def compare(plan: str = "conf/plan.tsv"):
        return subprocess.run(["./run_comparison.sh", "--plan", plan, "--seeds", "0"], cwd=recipe,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)

    proc = compare()
    assert proc.returncode == 1 and "error: run tuned_seed0 failed" in proc.stdout, proc.stdout
    assert (recipe / "calls.txt").read_text().splitlines() == [
        "run.sh --stop_stage 10",
        "local/runner.sh --stage 11 --stop_stage 13 --asr_config conf/des.yaml --asr_tag tuned_seed0 --asr_args "
        "--seed 0 --subnets 4 8"]
    (recipe / "conf" / "missing.tsv").write_text("tuned supernet main conf/des.yaml --runner local/nothing.sh\n")
    proc = compare("conf/missing.tsv")
    assert proc.returncode == 2 and "conf/missing.tsv:1: runner 'local/nothing.sh' is not an executable" in proc.stdout


def test_a_role_with_a_regime_runs_as_its_role_and_reaches_the_manifest(tmp_path):
    """"supernet@2x": trained and decoded as a supernet (a second decoding with the full size's
    checkpoint), the regime kept in the run's manifest line for the report; a bad regime refused."""
    recipe = tmp_path / "recipe"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "run_comparison.sh").symlink_to(TEMPLATE / "run_comparison.sh")
    (recipe / "path.sh").symlink_to(TEMPLATE / "path.sh")
    (recipe / "run.sh").write_text('#!/usr/bin/env bash\necho "run.sh $*" >>calls.txt\n')
    (recipe / "run.sh").chmod(0o755)
    (recipe / "conf" / "des.yaml").write_text("model: supernet_ctc\n")
    (recipe / "conf" / "plan.tsv").write_text('des_2x  supernet@2x  main  conf/des.yaml  --subnets "4 8"\n')

    def compare(plan: str = "conf/plan.tsv"):
        return subprocess.run(["./run_comparison.sh", "--plan", plan, "--seeds", "0", "--python", sys.executable],
                              cwd=recipe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)

    proc = compare()  # the stand-in trains nothing, so the run cannot be summarised
    assert proc.returncode == 1 and "error: cannot summarise run des_2x_seed0" in proc.stdout, proc.stdout
    assert (recipe / "calls.txt").read_text().splitlines()[1:] == [
        "run.sh --stage 11 --stop_stage 13 --asr_config conf/des.yaml --asr_tag des_2x_seed0 --asr_args --seed 0 "
        "--subnets 4 8",
        "run.sh --stage 12 --stop_stage 13 --size_checkpoints false --asr_config conf/des.yaml --asr_tag des_2x_seed0 "
        "--asr_args --seed 0 --subnets 4 8"]
    assert (recipe / "exp" / "comparison" / "run_des_2x_seed0.tsv").read_text() == \
        "des_2x supernet@2x 0 exp/asr_des_2x_seed0\n"
    (recipe / "conf" / "bad.tsv").write_text("des_2x supernet@/2x main conf/des.yaml\n")
    proc = compare("conf/bad.tsv")
    assert proc.returncode == 2 and "conf/bad.tsv:1: bad regime '/2x' in role 'supernet@/2x'" in proc.stdout
    (recipe / "conf" / "bad.tsv").write_text("des_2x winner@2x main conf/des.yaml\n")
    proc = compare("conf/bad.tsv")
    assert proc.returncode == 2 and "conf/bad.tsv:1: unknown role 'winner@2x'" in proc.stdout


def test_longer_plan_sets_twice_the_updates_against_the_comparisons_own_runs():
    """conf/longer_plan.tsv: the comparison's 1x rows as they are (their summaries count), the
    published supernet and every size alone at twice the updates, regime 2x, one seed."""
    comparison = _plan_rows(RECIPE / "conf" / "comparison_plan.tsv")
    longer = _plan_rows(RECIPE / "conf" / "longer_plan.tsv")
    for method in ("des_simple_topk", "individual_8", "individual_16", "individual_24"):
        assert longer[method] == comparison[method], method
        role, group, config, options = longer[f"{method}_2x"]
        assert role == comparison[method][0] + "@2x" and group == "other" and options == comparison[method][3]
        short = yaml.safe_load((RECIPE / comparison[method][2]).read_text())
        long = yaml.safe_load((RECIPE / config).read_text())
        assert long["scheduler_conf"]["total_steps"] == 2 * short["scheduler_conf"]["total_steps"]
        assert long["num_iters_per_epoch"] * long["max_epoch"] == 2 * short["num_iters_per_epoch"] * short["max_epoch"]
        assert {k: v for k, v in long.items() if k not in ("num_iters_per_epoch", "scheduler_conf", "model_conf")} \
            == {k: v for k, v in short.items() if k not in ("num_iters_per_epoch", "scheduler_conf", "model_conf")}
    # the ablation's des_late_kept: its 1x row as the ablation's, its 2x config that row's options at 2x
    ablation = _plan_rows(RECIPE / "conf" / "ablation_plan.tsv")
    assert longer["des_late_kept"] == ablation["des_late_kept"]
    role, group, config, options = longer["des_late_kept_2x"]
    assert (role, group, options) == ("supernet@2x", "other", ablation["des_late_kept"][3])
    short = yaml.safe_load((RECIPE / ablation["des_late_kept"][2]).read_text())
    long = yaml.safe_load((RECIPE / config).read_text())
    published = yaml.safe_load((RECIPE / longer["des_simple_topk_2x"][2]).read_text())
    assert long["scheduler_conf"] == published["scheduler_conf"] and long["max_epoch"] == published["max_epoch"]
    for option in ("subnet_start_fraction", "pass_regularization"):
        assert long["model_conf"][option] == short["model_conf"][option] and option not in published["model_conf"]
    header = (RECIPE / "conf" / "longer_plan.tsv").read_text()
    assert "./run_comparison.sh --plan conf/longer_plan.tsv --report LONGER.md --other_seeds 0" in header


@pytest.mark.slow  # whole recipe scripts in subprocesses, though no training
def test_reaverage_decodes_again_only_the_runs_whose_averages_changed_and_keeps_their_run_time(tmp_path):
    recipe = make_recipe(tmp_path)
    one_seed = ("--methods", "des_simple_topk individual_4", "--seeds", "0")
    assert compare(recipe, *one_seed).returncode == 0
    runs = recipe / "comparison_runs"
    before = {name: json.loads((runs / f"{name}_seed0.json").read_text()) for name in ("des_simple_topk", "individual_4")}
    exp = recipe / "exp" / "asr_des_simple_topk_seed0"
    assert not (exp / "valid.cer_ctc.ave_2best.pth").exists()  # the stand-in averaged nothing
    first_calls = len(calls(recipe))

    proc = compare(recipe, *one_seed, "--reaverage", "true")
    assert proc.returncode == 0, proc.stdout[-3000:]
    # the supernet's two criteria: averaged, hence decoded again (both rules) and its summary refreshed
    assert "valid.cer_ctc_4.ave_2best.pth (epochs 1 2): new" in proc.stdout
    assert "run des_simple_topk_seed0: decoding again" in proc.stdout
    assert (exp / "valid.cer_ctc.ave_2best.pth").is_file()
    made = calls(recipe)[first_calls:]
    assert [c[:4] for c in made] == [["--stage", "12", "--stop_stage", "13"]] * 2
    assert made[1][4:6] == ["--size_checkpoints", "false"] and "des_simple_topk_seed0" in made[0]
    after = json.loads((runs / "des_simple_topk_seed0.json").read_text())
    assert after["run_seconds"] == before["des_simple_topk"]["run_seconds"] is not None
    # one criterion: nothing to do; its summary untouched; nothing trained, the report written
    assert "no average of several epochs to make again (one criterion" in proc.stdout
    assert json.loads((runs / "individual_4_seed0.json").read_text()) == before["individual_4"]
    assert "2 of 2 runs summarised" in proc.stdout or "all 2 runs finished" in proc.stdout
    assert (recipe / "COMPARISON.md").is_file()

    again = compare(recipe, *one_seed, "--reaverage", "true")
    assert again.returncode == 0 and "every average as it was; nothing to decode again" in again.stdout
    assert len(calls(recipe)) == first_calls + 2
    bad = compare(recipe, "--reaverage", "maybe")
    assert bad.returncode == 2 and "--reaverage must be true or false, got 'maybe'" in bad.stdout


@pytest.mark.slow  # whole recipe scripts in subprocesses, though no training
def test_redecode_decodes_every_finished_run_again_and_keeps_its_run_time(tmp_path):
    """--redecode true: each run with a summary goes through stages 12-13 again (asr.sh decides
    what is out of date; both rules for a supernet), its summary takes the new results and
    keeps its run time; nothing is trained; a run without its experiment dir keeps its summary."""
    recipe = make_recipe(tmp_path)
    one_seed = ("--methods", "des_simple_topk individual_4 individual_8", "--seeds", "0")
    assert compare(recipe, *one_seed).returncode == 0
    runs = recipe / "comparison_runs"
    names = ("des_simple_topk", "individual_4", "individual_8")
    before = {name: json.loads((runs / f"{name}_seed0.json").read_text()) for name in names}
    first_calls = len(calls(recipe))
    shutil.rmtree(recipe / "exp" / "asr_individual_8_seed0")

    proc = compare(recipe, *one_seed, "--redecode", "true", wer_shift=1.0)  # the test set made again
    assert proc.returncode == 0, proc.stdout[-3000:]
    made = calls(recipe)[first_calls:]
    assert [c[:4] for c in made] == [["--stage", "12", "--stop_stage", "13"]] * 3
    assert "des_simple_topk_seed0" in made[0] and made[1][4:6] == ["--size_checkpoints", "false"]
    assert "individual_4_seed0" in made[2]
    assert "run individual_8_seed0: no exp/asr_individual_8_seed0 here; its summary is kept as it is" in proc.stdout
    after = {name: json.loads((runs / f"{name}_seed0.json").read_text()) for name in names}
    assert after["individual_8"] == before["individual_8"]
    for name in ("des_simple_topk", "individual_4"):
        assert after[name]["run_seconds"] == before[name]["run_seconds"] is not None
        for size, entry in after[name]["sizes"].items():
            assert entry["wer"]["test"] == pytest.approx(before[name]["sizes"][size]["wer"]["test"] + 1.0, abs=0.05)
    assert "all 3 runs finished" in proc.stdout or "3 of 3 runs summarised" in proc.stdout
    both = compare(recipe, "--redecode", "true", "--reaverage", "true")
    assert both.returncode == 2 and "--reaverage and --redecode: give one at a time" in both.stdout
    bad = compare(recipe, "--redecode", "maybe")
    assert bad.returncode == 2 and "--redecode must be true or false, got 'maybe'" in bad.stdout


@pytest.mark.slow  # whole recipe scripts in subprocesses, though no training
def test_the_baseline_seed_group_gives_the_sizes_alone_their_own_seeds(tmp_path):
    """Seed group "baseline" (the sizes trained alone, which every claim is set against) runs
    the seeds of --baseline_seeds, the other groups theirs; the runs still go seed by seed."""
    recipe = make_recipe(tmp_path)
    (recipe / "conf" / "plan.tsv").write_text(
        "des_simple_topk supernet main conf/cmp/des.yaml --subnets \"4 8\"\n"
        "individual_4 alone baseline conf/cmp/ind4.yaml --subnets 4\n"
        "individual_8 alone baseline conf/cmp/ind8.yaml --subnets 8\n")
    proc = compare(recipe, "--seeds", "0", "--baseline_seeds", "0 1")
    assert proc.returncode == 0, proc.stdout[-3000:]
    trained = [c[c.index("--asr_tag") + 1] for c in calls(recipe) if c[1] == "11"]
    assert trained == ["des_simple_topk_seed0", "individual_4_seed0", "individual_8_seed0",
                       "individual_4_seed1", "individual_8_seed1"]
    text = (recipe / "COMPARISON.md").read_text()
    assert "| 16 against 8 modules" not in text and "| 8 against 4 modules, both trained alone | better | 2 / 2 |" in text
    (recipe / "conf" / "plan.tsv").write_text("individual_4 alone many conf/cmp/ind4.yaml --subnets 4\n")
    bad = compare(recipe)
    assert bad.returncode == 2 and "unknown seed group 'many' (main, other, baseline)" in bad.stdout
