"""Stage 13: the layer-pruning-on-demand section of RESULTS.md.

Stage 12 decodes, next to every subnet size, the plan's subnet with blocks removed at run
time (``<test_set>/pruned/<strategy>/<depth>/``) and the same subnet whole
(``<test_set>/<subnet>/``), all in the same decoding pass. Per test set this writes:

- a long table, one row per strategy and depth: removed blocks, parameters, FLOPs per
  second of audio, WER, CER, RTF, and the speed-up in RTF next to the reduction in FLOPs
  (both relative to the whole subnet, so the two can be compared directly), and the
  checkpoint each row was decoded from (a depth's own, ``--depth_model_file``, or the whole
  model's);
- a compact table of WER by number of remaining blocks, one column per strategy.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from espnet_dynenc.decode.outputs import DecodeOutput, pruning_plan_file
from espnet_dynenc.pruning.plan import PruningPlan
from espnet_dynenc.recipe.results_table import MISSING, error_rate, human, load_stats, markdown_table


def _ratio(numerator: Optional[float], denominator: Optional[float]) -> str:
    if not numerator or not denominator:
        return MISSING
    return f"{numerator / denominator:.2f}"


def _or_missing(value: Optional[object]) -> object:
    return MISSING if value is None else value


def _row(strategy: str, depth: int, folder: Path, reference: Optional[dict]) -> List[str]:
    stats = load_stats(folder) or {}
    removed = stats.get("skip_blocks")
    reference = reference or {}
    return [
        strategy,
        str(depth),
        (" ".join(map(str, removed)) or "none") if removed is not None else MISSING,
        human(stats.get("parameters")),
        human(stats.get("flops_per_second")),
        error_rate(folder, "wer"),
        error_rate(folder, "cer"),
        f"{stats['rtf']:.4f}" if "rtf" in stats else MISSING,
        _ratio(reference.get("rtf"), stats.get("rtf")),
        _ratio(reference.get("flops_per_second"), stats.get("flops_per_second")),
        f"`{stats['checkpoint']}`" if "checkpoint" in stats else MISSING,
    ]


def load_plan(decode_dir: Path) -> Optional[PruningPlan]:
    path = pruning_plan_file(decode_dir)
    return PruningPlan.load(path) if path.is_file() else None


def pruning_rows(decode_dir: Path, test_set: str, plan: PruningPlan, depths: Sequence[int],
                 strategies: Sequence[str]) -> List[List[str]]:
    """The whole subnet first, then every strategy at every depth (deepest first)."""
    size, num_blocks = plan.subnet, plan.num_blocks
    set_dir = decode_dir / test_set
    reference_dir = DecodeOutput.whole(size).folder(set_dir)
    reference = load_stats(reference_dir)
    rows = [_row("none", num_blocks, reference_dir, reference)]
    for strategy in strategies:
        for depth in sorted(depths, reverse=True):
            rows.append(_row(strategy, depth, DecodeOutput.pruned(strategy, depth).folder(set_dir), reference))
    return rows


def wer_by_depth(rows: List[List[str]], depths: Sequence[int], strategies: Sequence[str],
                 num_blocks: int) -> List[str]:
    """WER per remaining blocks (rows) and strategy (columns), from ``pruning_rows``."""
    wer: Dict[tuple, str] = {(row[0], int(row[1])): row[5] for row in rows}
    full = wer[("none", num_blocks)]
    table_rows = [[str(num_blocks)] + [full for _ in strategies]]
    for depth in sorted(set(depths) - {num_blocks}, reverse=True):
        table_rows.append([str(depth)] + [wer.get((s, depth), MISSING) for s in strategies])
    return markdown_table(["blocks kept"] + [f"WER {s} (%)" for s in strategies], table_rows)


def pruning_markdown(decode_dir: Path, test_sets: Sequence[str], depths: Sequence[int],
                     strategies: Sequence[str]) -> List[str]:
    """The RESULTS.md section; no lines when nothing was pruned."""
    plan = load_plan(decode_dir)
    if not depths or plan is None:
        return []
    num_blocks = plan.num_blocks
    lines = [
        "",
        f"## Layer pruning on demand: subnet {plan.subnet}, {num_blocks} blocks",
        f"- blocks removed at run time, no fine-tuning; chosen on {_or_missing(plan.dev_utterances)} dev "
        f"utterances (`{pruning_plan_file(decode_dir)}`; greedy by dev {_or_missing(plan.greedy_metric)})",
        "- RTF speed-up and FLOPs ratio: the whole subnet's RTF and FLOPs over the pruned one's, "
        "decoded in the same pass (in a pass of its own over the same data where the depth has its own checkpoint)",
        "- checkpoint: the file each row was decoded from: a depth's own average of best epochs (by the "
        "intermediate CTC exit after that many blocks: exact for `top`, a proxy for the other strategies) where "
        "the training config's `best_model_criterion` made one and asr.sh's `--size_checkpoints` is true, else "
        "the whole model's",
    ]
    for test_set in test_sets:
        rows = pruning_rows(decode_dir, test_set, plan, depths, strategies)
        header = ["strategy", "blocks kept", "removed", "parameters", "FLOPs / s of audio",
                  f"WER {test_set} (%)", f"CER {test_set} (%)", f"RTF {test_set}", "RTF speed-up", "FLOPs ratio",
                  "checkpoint"]
        lines += ["", f"### {test_set}", ""] + markdown_table(header, rows)
        lines += ["", f"WER on {test_set} by blocks kept:", ""] + wer_by_depth(rows, depths, strategies, num_blocks)
    return lines
