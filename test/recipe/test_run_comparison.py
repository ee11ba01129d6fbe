"""run_comparison.sh end to end on the embedded recipe with a tiny corpus and tiny models.

Every method of the plan runs (two seeds for the main rows, seed by seed), each finished run
leaves its summary in comparison_runs/, and COMPARISON.md has a row per method in each
table; a second call finds every run summarised and only writes the report.
"""
import copy
import shutil
import subprocess
import sys

import pytest
import yaml

from recipe.conftest import TEMPLATE
from recipe.test_mini_synth_recipe import CONFIG, CORPUS, RECIPE, mirror_recipe

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
        assert role in ("supernet", "alone", "pruned") and group in ("main", "other"), method
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
