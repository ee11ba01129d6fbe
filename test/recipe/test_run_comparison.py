"""run_comparison.sh end to end on the embedded recipe with a tiny corpus and tiny models.

Every method of the plan runs (two seeds for the main rows, seed by seed), each finished run
leaves its summary in comparison_runs/, and COMPARISON.md has a row per method in each
table; a second call finds every run summarised and only writes the report.
"""
import copy
import subprocess

import pytest
import yaml

from recipe.conftest import TEMPLATE
from recipe.test_mini_synth_recipe import CONFIG, CORPUS, mirror_recipe

PLAN = """# method role seeds config options
des_simple_topk  supernet  main   conf/cmp/des.yaml    --subnets "4 8"
des_zero_out     supernet  main   conf/cmp/zero.yaml   --subnets "4 8"
individual_4     alone     main   conf/cmp/ind4.yaml   --subnets 4
individual_8     alone     main   conf/cmp/ind8.yaml   --subnets 8
aux_loss         supernet  other  conf/cmp/aux.yaml    --subnets "4 8"
prune_on_demand  pruned    other  conf/cmp/pod.yaml    --subnets "" --prune_depths 1 --prune_strategies "top greedy"
dmao             dmao      other  conf/cmp/dmao.yaml   --subnets ""
"""


def tiny_configs() -> dict:
    single = copy.deepcopy(CONFIG)
    single["model_conf"] = {"ctc_weight": 1.0}
    configs = {"des": CONFIG}
    configs["zero"] = {**CONFIG, "model_conf": {**CONFIG["model_conf"], "selector": "iterative_zero_out",
                                               "selector_conf": {"steps_per_iter": [2], "zero_out_counts": [4]}}}
    configs["ind4"] = {**single, "encoder_conf": {**CONFIG["encoder_conf"], "num_blocks": 1}}
    configs["ind8"] = single
    configs["aux"] = {**CONFIG, "model_conf": {"ctc_weight": 1.0, "subnet_sizes": [4, 8]}}
    configs["pod"] = {**single, "model_conf": {"ctc_weight": 1.0, "interctc_weight": 0.3},
                      "encoder_conf": {**CONFIG["encoder_conf"], "interctc_layer_idx": [1], "stochastic_depth_rate": 0.2,
                                       "stochastic_depth_schedule": "linear"}}
    configs["dmao"] = {**single, "encoder_conf": {**CONFIG["encoder_conf"], "linear_units": 64},
                       "model_conf": {"ctc_weight": 1.0, "dmao": {"event_updates": [2], "rho": 0.25,
                                                                  "score_interval": 1}}}
    return configs


@pytest.mark.slow
def test_run_comparison_writes_every_table_with_a_row_per_method(tmp_path):
    recipe = mirror_recipe(tmp_path)
    (recipe / "run_comparison.sh").symlink_to(TEMPLATE / "run_comparison.sh")
    (recipe / "conf" / "cmp").mkdir()
    for name, config in tiny_configs().items():
        (recipe / "conf" / "cmp" / f"{name}.yaml").write_text(yaml.safe_dump(config))
    (recipe / "conf" / "plan.tsv").write_text(PLAN)
    # the recipe's run.sh gets the tiny corpus, BPE size and default config through its own options
    run_sh = (recipe / "run.sh").read_text().replace(
        '    "$@"', f'    --local_data_opts "{CORPUS}" --nbpe 30 --asr_config conf/tiny.yaml "$@"')
    (recipe / "run.sh").write_text(run_sh)

    def compare(*extra):
        return subprocess.run(["./run_comparison.sh", "--plan", "conf/plan.tsv", "--seeds", "0 1", "--other_seeds", "0",
                               *extra],
                              cwd=recipe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800)

    proc = compare()
    assert proc.returncode == 0, proc.stdout[-6000:]
    # seed by seed: every method of seed 0, then the main ones of seed 1
    assert "run 1/11: des_simple_topk, seed 0" in proc.stdout and "run 7/11: dmao, seed 0" in proc.stdout
    assert "run 11/11: individual_8, seed 1" in proc.stdout
    assert "Stage 11: training finished after 2 epochs" in proc.stdout  # each run's progress on the console
    text = (recipe / "COMPARISON.md").read_text()
    for row in ("| 4 | des_simple_topk | 2 |", "| 8 | des_zero_out | 2 |", "| 4 | aux_loss | 1 |",
                "| 4 | trained alone | 2 |", "| 8 | trained alone | 2 |", "| modules | des_simple_topk | des_zero_out "
                "| aux_loss | trained alone |", "| 1 | 4 |", "| dmao (8 modules) | 1 |",
                "| uniform, trained alone (8 modules) | 2 |", "| des_simple_topk | 1 |",
                "| every size separately (2 models) | 2 |"):
        assert row in text, row
    assert (recipe / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    manifest = (recipe / "exp" / "comparison" / "manifest.tsv").read_text().splitlines()
    assert len(manifest) == 11 and manifest[0] == "des_simple_topk supernet 0 exp/asr_des_simple_topk_seed0"
    summaries = sorted(p.name for p in (recipe / "comparison_runs").iterdir())
    assert len(summaries) == 11 and "dmao_seed0.json" in summaries and "individual_8_seed1.json" in summaries
    assert "| claim | kind | seeds (a / b) |" in text

    again = compare()
    assert again.returncode == 0, again.stdout[-3000:]
    assert "Stage 11: training finished" not in again.stdout  # everything was done
    assert "run 11/11: individual_8, seed 1: done (comparison_runs/individual_8_seed1.json)" in again.stdout
    assert "data preparation" not in again.stdout
    bad = subprocess.run(["./run_comparison.sh", "--plan", "conf/plan.tsv", "--methods", "nonesuch"], cwd=recipe,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    assert bad.returncode == 2 and "no run of conf/plan.tsv matches --methods 'nonesuch'" in bad.stdout


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
