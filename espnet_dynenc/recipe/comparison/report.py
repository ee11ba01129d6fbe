"""COMPARISON.md and comparison.png from the collected numbers: the Markdown tables and the plot.

Every cell over seeds is a mean with its sample standard deviation; every claim's row shows
its interval and verdict as :mod:`espnet_dynenc.recipe.comparison.claims` found them. This
module only lays out what the others measured and decided, so the wording and layout of the
report can change without touching how a number is read or a claim is judged.
"""
import datetime as dt
import statistics
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_dynenc.recipe.comparison.claims import Collected, interval, size_claim_label, verdict
from espnet_dynenc.recipe.comparison.cost import TrainingCost, sizes_cost
from espnet_dynenc.recipe.comparison.decodings import Measured
from espnet_dynenc.recipe.comparison.runs import MAIN_REGIME, regime_suffix
from espnet_dynenc.recipe.results_table import human, markdown_table
from espnet_dynenc.scoring.bootstrap import CONFIDENCE, REPLICATES

def mean_sd(values: Sequence[Optional[float]], digits: int = 1) -> str:
    """``'12.3 ± 0.4 (n=2)'``; a single value alone; missing values are left out."""
    known = [v for v in values if v is not None]
    if not known:
        return "n/a"
    mean = statistics.fmean(known)
    if len(known) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(known):.{digits}f}"


def _mean(values: Sequence[Optional[float]]) -> Optional[float]:
    known = [v for v in values if v is not None]
    return statistics.fmean(known) if known else None


def _main_counterpart(data: Collected, method: str, regime: str) -> Optional[str]:
    """The main regime's supernet that ``method`` (a supernet of ``regime``) is the longer or
    shorter version of: the one named ``method`` without ``_<regime>`` (des_simple_topk for
    des_simple_topk_2x), else the main regime's first supernet."""
    main = data.in_regime(MAIN_REGIME).methods("supernet")
    stem = method[:-len(f"_{regime}")] if method.endswith(f"_{regime}") else None
    if stem in main:
        return stem
    return main[0] if main else None


def claims_table(data: Collected, test_set: str) -> List[str]:
    header = ["claim", "kind", "seeds (a / b)", f"WER a (%)", f"WER b (%)", "a - b [95% interval]", "verdict"]
    rows = []
    for claim, found in data.checked_claims(test_set):
        rows.append([claim.label, claim.kind, f"{len(claim.a)} / {len(claim.b)}",
                     mean_sd([m.wer.get(test_set) for m in claim.a]), mean_sd([m.wer.get(test_set) for m in claim.b]),
                     str(found) if found is not None else "n/a", verdict(claim.kind, found)])
    return markdown_table(header, rows)


def gap_table(data: Collected, test_set: str) -> List[str]:
    """Per size, each other regime's supernet-minus-alone gap next to the main regime's, both
    with their intervals (the claims' own): whether the gap closes with the other schedule.
    One table per other regime; nothing when all runs are of the main regime."""
    checked = {claim.label: found for claim, found in data.checked_claims(test_set)}
    main_alone = data.alone_by_size(MAIN_REGIME)
    lines: List[str] = []
    for regime in data.regimes():
        if regime == MAIN_REGIME:
            continue
        view = data.in_regime(regime)
        alone = view.alone_by_size(regime)
        header = ["modules", f"supernet at {MAIN_REGIME}", f"gap at {MAIN_REGIME}: supernet - alone [95% interval]",
                  f"supernet at {regime}", f"gap at {regime}: supernet - alone [95% interval]",
                  f"verdict at {regime}"]
        rows = []
        for method in view.methods("supernet"):
            counterpart = _main_counterpart(data, method, regime)
            for size in sorted({s for r in view.runs_of(method) for s in view.sizes[r]}):
                if size not in alone:
                    continue
                before = None
                if counterpart is not None and size in main_alone:
                    before = checked.get(size_claim_label(counterpart, size))
                found = checked.get(size_claim_label(method, size, regime))
                rows.append([str(size), counterpart or "n/a", str(before) if before is not None else "n/a",
                             method, str(found) if found is not None else "n/a", verdict("parity", found)])
        if rows:
            lines += markdown_table(header, rows) + [""]
    return lines


def checkpoint_rule_table(data: Collected, test_set: str) -> List[str]:
    """Each supernet size (and each pruned depth) decoded from its own best epochs against the
    full size's best epochs."""
    header = ["method", "modules", "seeds", "own checkpoint", "WER own (%)", "WER full-size rule (%)",
              "own - full-size rule [95% interval]"]
    rows = []

    def row(name: str, units: int, pairs: List[Tuple[Measured, Measured]]) -> None:
        if not pairs:
            return
        own, full = [p[0] for p in pairs], [p[1] for p in pairs]
        found = interval(own, full, test_set, same_runs=True)
        checkpoints = "/".join(sorted({m.checkpoint or "?" for m in own}))
        rows.append([name, str(units), str(len(own)), f"`{checkpoints}`", mean_sd([m.wer.get(test_set) for m in own]),
                     mean_sd([m.wer.get(test_set) for m in full]), str(found) if found is not None else "n/a"])

    for method in data.methods("supernet"):
        runs = [r for r in data.runs_of(method) if data.full_size_rule.get(r)]
        for size in sorted({s for r in runs for s in data.full_size_rule[r]}):
            row(method, size, [(data.sizes[r][size], data.full_size_rule[r][size]) for r in runs
                               if size in data.sizes[r] and size in data.full_size_rule[r]])
    for method in data.methods("pruned"):
        runs = [r for r in data.runs_of(method) if data.pruned_full_size_rule.get(r)]
        for depth in sorted({d for r in runs for d in data.pruned_full_size_rule[r]}, reverse=True):
            strategies = sorted({s for r in runs for s in data.pruned_full_size_rule[r].get(depth, {}) if s != "best"})
            for strategy in strategies:
                pairs = [(data.pruned[r][depth][strategy], data.pruned_full_size_rule[r][depth][strategy])
                         for r in runs if strategy in data.pruned.get(r, {}).get(depth, {})
                         and strategy in data.pruned_full_size_rule[r].get(depth, {})]
                if pairs:
                    row(f"{method}, {depth} blocks ({strategy})", pairs[0][0].units, pairs)
    return markdown_table(header, rows) if rows else []


def _cells(results: Sequence[Measured], test_sets: Sequence[str]) -> List[str]:
    cells = [mean_sd([r.wer.get(t) for r in results]) for t in test_sets]
    cells += [mean_sd([r.cer.get(t) for r in results]) for t in test_sets]
    return cells


def size_table(data: Collected, test_sets: Sequence[str]) -> List[str]:
    """Every size of every supernet method and every model trained alone, one row each."""
    header = ["modules", "method", "seeds", "parameters", "FLOPs / s"]
    header += [f"WER {t} (%)" for t in test_sets] + [f"CER {t} (%)" for t in test_sets]
    rows = []
    all_sizes = sorted({s for run in data.runs if run.role in ("supernet", "alone") for s in data.sizes[run]})
    for size in all_sizes:
        for regime in data.regimes():  # each regime's rows of a size together, the main one first
            view = data.in_regime(regime)
            alone = view.alone_by_size(regime)
            for method in view.methods("supernet"):
                results = [view.sizes[r][size] for r in view.runs_of(method) if size in view.sizes[r]]
                if results:
                    rows.append([str(size), method + regime_suffix(regime), str(len(results)),
                                 human(_mean([r.parameters for r in results])),
                                 human(_mean([r.flops for r in results]))] + _cells(results, test_sets))
            if size in alone:
                results = alone[size]
                rows.append([str(size), "trained alone" + regime_suffix(regime), str(len(results)),
                             human(_mean([r.parameters for r in results])),
                             human(_mean([r.flops for r in results]))] + _cells(results, test_sets))
    return markdown_table(header, rows)


def pivot_table(data: Collected, test_set: str) -> List[str]:
    """WER per size (rows) and method (columns), trained alone last; each other regime's
    columns after the main regime's, its own trained-alone column last."""
    header = ["modules"]
    columns = []
    for regime in data.regimes():
        view = data.in_regime(regime)
        methods = view.methods("supernet")
        header += [m + regime_suffix(regime) for m in methods] + ["trained alone" + regime_suffix(regime)]
        columns.append((view, methods, view.alone_by_size(regime)))
    rows = []
    sizes = sorted({s for run in data.runs if run.role in ("supernet", "alone") for s in data.sizes[run]})
    for size in sizes:
        row = [str(size)]
        for view, methods, alone in columns:
            for method in methods:
                row.append(mean_sd([view.sizes[r][size].wer.get(test_set) for r in view.runs_of(method)
                                    if size in view.sizes[r]]))
            row.append(mean_sd([m.wer.get(test_set) for m in alone.get(size, [])]))
        rows.append(row)
    return markdown_table(header, rows)


def pruning_table(data: Collected, test_set: str) -> List[str]:
    lines: List[str] = []
    for method in data.methods("pruned"):
        regime = data.regime_of(method)
        alone = data.alone_by_size(regime)
        runs = data.runs_of(method)
        depths = sorted({d for r in runs for d in data.pruned[r]}, reverse=True)
        strategies = sorted({s for r in runs for d in data.pruned[r] for s in data.pruned[r][d] if s != "best"})
        header = ["blocks kept", "modules", f"{method}{regime_suffix(regime)}: best on dev (chosen)"] + strategies
        header += ["trained alone" + regime_suffix(regime)]
        rows = []
        full = sorted({s for r in runs for s in data.sizes[r]})
        for size in full[-1:]:
            whole = [data.sizes[r][size].wer.get(test_set) for r in runs if size in data.sizes[r]]
            rows.append([f"all ({size} modules)", str(size), mean_sd(whole)] + [mean_sd(whole)] * len(strategies)
                        + [mean_sd([m.wer.get(test_set) for m in alone.get(size, [])])])
        for depth in depths:
            found = [data.pruned[r][depth] for r in runs if depth in data.pruned[r]]
            units = next(iter(found[0].values())).units
            best = [f["best"] for f in found if "best" in f]
            chosen = "/".join(sorted({b.chosen for b in best}))
            row = [str(depth), str(units), f"{mean_sd([b.wer.get(test_set) for b in best])} ({chosen})"]
            row += [mean_sd([f[s].wer.get(test_set) for f in found if s in f]) for s in strategies]
            row.append(mean_sd([m.wer.get(test_set) for m in alone.get(units, [])]))
            rows.append(row)
        lines += markdown_table(header, rows) + [""]
    return lines


def dmao_table(data: Collected, test_sets: Sequence[str]) -> List[str]:
    header = ["model", "seeds", "parameters"] + [f"WER {t} (%)" for t in test_sets] + [f"CER {t} (%)" for t in test_sets]
    rows = []
    for method in data.methods("dmao"):
        regime = data.regime_of(method)
        alone = data.alone_by_size(regime)
        runs = data.runs_of(method)
        size = max(s for r in runs for s in data.sizes[r])
        results = [data.sizes[r][size] for r in runs]
        rows.append([f"{method}{regime_suffix(regime)} ({size} modules)", str(len(results)),
                     human(_mean([r.parameters for r in results]))] + _cells(results, test_sets))
        if size in alone:
            rows.append([f"uniform, trained alone{regime_suffix(regime)} ({size} modules)", str(len(alone[size])),
                         human(_mean([m.parameters for m in alone[size]]))] + _cells(alone[size], test_sets))
    return markdown_table(header, rows)


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes}m{seconds:02d}s"


PRETRAINED_MARK = "†"  # after an approach whose cost includes a pre-training (see cost_notes)


def cost_rows(data: Collected) -> Tuple[List[str], List[List[str]]]:
    """Training cost per seed: one supernet against every size separately (per regime). A run
    started from another experiment's training counts it: pre-training + fine-tuning."""
    header = ["approach", "runs per seed", "updates", "wall time (mean over seeds)", "parameter updates"]
    rows = []
    for method in data.methods("supernet", "pruned", "dmao"):
        costs = [data.costs[r] for r in data.runs_of(method)]
        name = method + regime_suffix(data.regime_of(method))
        if any(c.pretrained for c in costs):
            name += PRETRAINED_MARK
        rows.append([name, "1", mean_sd([c.total_updates() for c in costs], 0),
                     _seconds(_mean([c.total_seconds() for c in costs])),
                     human(_mean([c.parameter_updates() for c in costs]))])
    for regime in data.regimes():
        alone_runs = [r for r in data.runs if r.role == "alone" and r.regime == regime]
        if not alone_runs:
            continue
        by_seed: Dict[int, List[TrainingCost]] = {}
        for run in alone_runs:
            by_seed.setdefault(run.seed, []).append(data.costs[run])
        totals = [(sum(c.total_updates() or 0 for c in cs), sum(c.total_seconds() or 0 for c in cs),
                   sum(c.parameter_updates() for c in cs)) for cs in by_seed.values()]
        count = round(len(alone_runs) / len(by_seed))
        label = "every size separately" + (f", {regime}" if regime != MAIN_REGIME else "")
        rows.append([f"{label} ({count} models)", str(count), mean_sd([t[0] for t in totals], 0),
                     _seconds(_mean([t[1] for t in totals])), human(_mean([t[2] for t in totals]))])
    return header, rows


def more_sizes_table(data: Collected) -> List[str]:
    """The first supernet of the main regime against every size alone, for its sizes and for
    sizes in between (computed from the measured seconds per update; see ``sizes_cost``)."""
    supernets = [m for m in data.methods("supernet") if data.regime_of(m) == MAIN_REGIME]
    alone: Dict[int, List[TrainingCost]] = {}
    for run in data.runs:
        if run.role == "alone" and run.regime == MAIN_REGIME:
            for size in data.sizes[run]:
                alone.setdefault(size, []).append(data.costs[run])
    if not supernets:
        return []
    found = sizes_cost([data.costs[r] for r in data.runs_of(supernets[0])], alone)
    header = ["sizes (modules)", "how", f"{supernets[0]}: updates, wall time", "every size alone: updates, wall time",
              "alone / supernet (wall time)"]
    rows = [[" / ".join(map(str, c.sizes)), "measured" if c.measured else "computed per update",
             f"{c.updates_supernet}, {_seconds(c.seconds_supernet)}", f"{c.updates_alone}, {_seconds(c.seconds_alone)}",
             f"{c.ratio:.2f}"] for c in found]
    return markdown_table(header, rows) if rows else []


def cost_notes(data: Collected) -> List[str]:
    """One footnote per approach whose cost includes a pre-training: the two parts."""
    notes = []
    for method in data.methods("supernet", "pruned", "dmao"):
        costs = [data.costs[r] for r in data.runs_of(method)]
        if not any(c.pretrained for c in costs):
            continue
        sources = ", ".join(sorted({f"`{c.pretraining_exp_dir}`" for c in costs if c.pretrained}))
        notes.append(
            f"{PRETRAINED_MARK} {method}: pre-training + fine-tuning. Pre-training ({sources}): "
            f"{mean_sd([c.pretraining_updates for c in costs], 0)} updates, "
            f"{_seconds(_mean([c.pretraining_seconds for c in costs]))}; fine-tuning: "
            f"{mean_sd([c.updates for c in costs], 0)} updates, {_seconds(_mean([c.seconds for c in costs]))} "
            "(each part's updates from its checkpoint, its wall time from its train.log).")
    return notes


def _test_set_sizes(data: Collected, test_sets: Sequence[str]) -> List[Tuple[str, int]]:
    """How many utterances each test set has where the runs scored them one by one (collect
    has checked that every run scored the same ones)."""
    found = []
    for test_set in test_sets:
        count = next((len(m.utterances[test_set]) for by_size in data.sizes.values() for m in by_size.values()
                      if m.utterances.get(test_set)), None)
        if count:
            found.append((test_set, count))
    return found


def comparison_markdown(data: Collected, test_sets: Sequence[str], command: str, wall_seconds: Optional[float],
                        when: Optional[str] = None) -> str:
    when = when or dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    seeds = sorted({r.seed for r in data.runs})
    lines = [
        "<!-- Written by espnet_dynenc.bin.compare_results from the runs of run_comparison.sh. -->",
        "# Comparison: sizes cut from one model against sizes trained alone",
        "",
        f"- command: `{command}`",
        f"- date: {when}; seeds: {' '.join(map(str, seeds))}"
        + (f"; wall time of the whole comparison: {_seconds(wall_seconds)}" if wall_seconds else ""),
        "- every model: greedy CTC; each size decoded from the average of its own best epochs by its dev CER "
        "(`valid.cer_ctc_<size>.ave.pth`) where the run's config chose them per size, else by the dev CER of the "
        "full size (`valid.cer_ctc.ave.pth`); WER/CER from sclite's `Sum/Avg` line",
        *[f"- test set {t}: {n} utterances, the same for every run" for t, n in _test_set_sizes(data, test_sets)],
        "- cells: mean ± sample standard deviation over seeds (one value: one seed)",
        f"- intervals: WER difference a - b (points) with its {100 * CONFIDENCE:.0f}% interval from a paired bootstrap "
        f"over the test utterances (Bisani & Ney 2004, {REPLICATES} replicates), seeds pooled (each replicate also "
        "redraws each system's seeds); `parity` claims (as good as) fail when the whole interval is above 0, "
        "`better` claims hold only when it is below 0",
        "",
    ]
    for test_set in test_sets[:1]:
        lines += [f"## Claims and their intervals ({test_set})", ""] + claims_table(data, test_set) + [""]
        gaps = gap_table(data, test_set)
        if gaps:
            others = ", ".join(r for r in data.regimes() if r != MAIN_REGIME)
            lines += [f"## Does the gap close with longer training? ({test_set})", "",
                      f"Each size's supernet-minus-alone WER gap at the comparison's schedule ({MAIN_REGIME}) and "
                      f"at {others}: every regime's supernet is set against the sizes trained alone in that same "
                      "regime only (never against another regime's), each gap with its interval as in the claims.",
                      ""] + gaps
    lines += ["## Dynamic Encoder Size: every size, every method", ""]
    lines += size_table(data, test_sets) + [""]
    for test_set in test_sets:
        lines += [f"### WER (%) on {test_set}", ""] + pivot_table(data, test_set) + [""]
    if data.methods("pruned"):
        lines += ["## Layer pruning on demand against models of that depth trained alone", ""]
        for test_set in test_sets:
            lines += [f"### WER (%) on {test_set}", ""] + pruning_table(data, test_set)
    if data.methods("dmao"):
        lines += ["## DMAO against the uniform model of the same size", ""] + dmao_table(data, test_sets) + [""]
    rule = checkpoint_rule_table(data, test_sets[0])
    if rule:
        lines += [f"## Checkpoint rule: each size's own best epochs against the full size's ({test_sets[0]})", "",
                  "The same runs decoded twice: every size (and pruned depth) from the average of its own best "
                  "epochs by its dev CER (a depth: its intermediate CTC exit's), and from the average of the full "
                  "size's best epochs.", ""] + rule + [""]
    header, rows = cost_rows(data)
    lines += ["## Training cost (per seed)", "",
              "Updates and parameter updates (parameters x updates, summed over the models one needs) come from the "
              "checkpoints; wall time from train.log (first epoch started to last epoch finished).", ""]
    lines += markdown_table(header, rows) + [""]
    notes = cost_notes(data)
    if notes:
        lines += notes + [""]
    more = more_sizes_table(data)
    if more:
        lines += ["## Training cost with more sizes (per seed)", "",
                  "A supernet's sandwich trains the largest, the smallest and one middle size per update whatever "
                  "the number of sizes, so offering the sizes in between costs it nothing more; each size trained "
                  "alone costs its own training. Rows 'computed per update': the sizes alone from a least-squares "
                  "line through the measured seconds per update of the sizes trained alone, times their updates.",
                  ""] + more + [""]
    return "\n".join(lines) + "\n"


def plot_comparison(data: Collected, test_set: str, path: Path) -> None:
    """Left: WER against FLOPs per second of audio, one line per method (mean, error bars: sd
    over seeds). Right: every claim's difference in WER with its 95% interval (0: no difference)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(results_by_size: Dict[int, List[Measured]]):
        xs, ys, es = [], [], []
        for size in sorted(results_by_size):
            results = results_by_size[size]
            wers = [r.wer.get(test_set) for r in results if r.wer.get(test_set) is not None]
            if not wers:
                continue
            xs.append(_mean([r.flops for r in results]) / 1e6)
            ys.append(statistics.fmean(wers))
            es.append(statistics.stdev(wers) if len(wers) > 1 else 0.0)
        return xs, ys, es

    checked = [(claim, f) for claim, f in data.checked_claims(test_set) if f is not None]
    if checked:
        fig, (ax, right) = plt.subplots(1, 2, figsize=(13, max(4.5, 0.32 * len(checked) + 1.5)),
                                        gridspec_kw={"width_ratios": [1, 1.1]})
    else:
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method in data.methods("supernet"):
        by_size: Dict[int, List[Measured]] = {}
        for run in data.runs_of(method):
            for size, measured in data.sizes[run].items():
                by_size.setdefault(size, []).append(measured)
        ax.errorbar(*series(by_size), marker="o", capsize=3, label=method + regime_suffix(data.regime_of(method)))
    for regime, color in zip(data.regimes(), ("black", "dimgray", "darkgray", "silver")):
        if any(r.role == "alone" and r.regime == regime for r in data.runs):
            ax.errorbar(*series(data.alone_by_size(regime)), marker="s", capsize=3, linestyle="--", color=color,
                        label="trained alone" + regime_suffix(regime))
    for method in data.methods("pruned"):
        by_units: Dict[int, List[Measured]] = {}
        for run in data.runs_of(method):
            for found in data.pruned[run].values():
                if "best" in found:
                    by_units.setdefault(found["best"].units, []).append(found["best"])
            top = max(data.sizes[run])
            by_units.setdefault(top, []).append(data.sizes[run][top])
        ax.errorbar(*series(by_units), marker="^", capsize=3, linestyle=":", label=f"{method} (best on dev)")
    for method in data.methods("dmao"):
        by_size = {}
        for run in data.runs_of(method):
            top = max(data.sizes[run])
            by_size.setdefault(top, []).append(data.sizes[run][top])
        ax.errorbar(*series(by_size), marker="*", markersize=10, capsize=3, linestyle="none", label=method)
    ax.set_xlabel("FLOPs per second of audio (M)")
    ax.set_ylabel(f"WER on {test_set} (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if checked:
        ys = list(range(len(checked)))[::-1]
        colors = {"holds": "tab:green", "fails": "tab:red", "not resolved": "tab:gray"}
        for y, (claim, f) in zip(ys, checked):
            color = colors[next(k for k in colors if verdict(claim.kind, f).startswith(k))]
            right.errorbar([f.difference], [y], xerr=[[f.difference - f.low], [f.high - f.difference]], fmt="o",
                           color=color, capsize=3)
        right.axvline(0.0, color="black", linewidth=0.8)
        right.set_yticks(ys)
        right.set_yticklabels([claim.label for claim, _ in checked], fontsize=7)
        right.set_xlabel(f"WER difference a - b on {test_set} (points), 95% interval")
        right.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
