"""COMPARISON.md and comparison.png: every method of a recipe's comparison, side by side.

``run_comparison.sh`` trains and decodes each run of a plan (``conf/comparison_plan.tsv``)
through asr.sh and lists the finished runs in a manifest, one line per run::

    <method> <role> <seed> <experiment dir>

Roles say what a run is compared as:

``supernet``  one model decoded at several sizes (Dynamic Encoder Size, Aux-Loss);
``alone``     a model trained for its one size (the individually trained baseline);
``pruned``    one model whose blocks are removed at run time (layer pruning on demand);
              the best strategy per depth is the one with the lowest dev CER (then dev
              CTC loss) in its plan's ``dev_scores.tsv``, never chosen on test;
``dmao``      a reallocated single-size model, against the ``alone`` model of its size.

Each run's numbers come from the files asr.sh leaves: ``<size>/decode_stats.yaml``
(parameters, FLOPs per second of audio) and ``score_{wer,cer}/result.txt`` per test set,
the plan's ``dev_scores.tsv``, the training's ``train.log`` (wall time: from the first
epoch started to the last epoch finished, summed over the logs of a resumed run) and
its checkpoint (parameters, optimizer updates). Rows over seeds show the mean, and the
sample standard deviation when there are two seeds or more, so a reader sees whether a
difference is larger than the spread between seeds.
"""
import csv
import datetime as dt
import re
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_dynenc.pruning.plan import PruningPlan
from espnet_dynenc.recipe.results_table import human, load_stats, markdown_table, read_sum_avg

ROLES = ("supernet", "alone", "pruned", "dmao")
DECODE_DIR = "decode_ctc_greedy_asr_model_valid.cer_ctc.ave"
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) \(trainer:\d+\) INFO: (.*)")
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked", "num_updates", "subnet_masks")


@dataclass(frozen=True)
class Run:
    method: str
    role: str
    seed: int
    exp_dir: Path


@dataclass
class Measured:
    """One decoded configuration of one run: a size, or a size with blocks removed."""

    units: int
    parameters: Optional[float]
    flops: Optional[float]
    wer: Dict[str, Optional[float]] = field(default_factory=dict)
    cer: Dict[str, Optional[float]] = field(default_factory=dict)
    chosen: Optional[str] = None  # the strategy a "best" pruned result stands for


@dataclass
class TrainingCost:
    updates: Optional[int]
    seconds: Optional[float]
    parameters: Optional[int]


def read_manifest(path: Path) -> List[Run]:
    """The runs listed by run_comparison.sh; a bad line names the file and line."""
    runs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or fields[1] not in ROLES or not fields[2].lstrip("-").isdigit():
            raise ValueError(f"{path}:{number}: expected '<method> <role: {'|'.join(ROLES)}> <seed> <exp dir>', "
                             f"got '{line}'")
        runs.append(Run(fields[0], fields[1], int(fields[2]), Path(fields[3])))
    if not runs:
        raise ValueError(f"{path}: no runs listed")
    return runs


def _error_rate(folder: Path, kind: str) -> Optional[float]:
    path = folder / f"score_{kind}" / "result.txt"
    return read_sum_avg(path).errors if path.is_file() else None


def measure(folders: Dict[str, Path], units: int) -> Optional[Measured]:
    """The numbers of one decoded configuration (``folders``: test set -> its folder);
    None if it was never decoded."""
    stats = [load_stats(folder) for folder in folders.values()]
    known = next((s for s in stats if s), None)
    if known is None:
        return None
    return Measured(units, known.get("parameters"), known.get("flops_per_second"),
                    {t: _error_rate(f, "wer") for t, f in folders.items()},
                    {t: _error_rate(f, "cer") for t, f in folders.items()})


def size_results(run: Run, test_sets: Sequence[str], decode_dir: str = DECODE_DIR) -> Dict[int, Measured]:
    """Every size decoded for ``run`` (in units)."""
    root = run.exp_dir / decode_dir
    sizes = set()
    for test_set in test_sets:
        if (root / test_set).is_dir():
            sizes |= {int(p.name) for p in (root / test_set).iterdir() if p.is_dir() and p.name.isdigit()}
    out = {}
    for size in sorted(sizes):
        measured = measure({t: root / t / str(size) for t in test_sets}, size)
        if measured is not None:
            out[size] = measured
    return out


def _dev_choice(rows: List[dict]) -> Optional[str]:
    def key(row):
        return (float(row["cer"]), float(row["ctc_loss"]), row["strategy"])
    return min(rows, key=key)["strategy"] if rows else None


def pruned_results(run: Run, test_sets: Sequence[str], decode_dir: str = DECODE_DIR
                   ) -> Dict[int, Dict[str, Measured]]:
    """``{blocks kept: {strategy: Measured}}``, plus under ``"best"`` the strategy with the
    lowest dev CER (then dev CTC loss) at that depth."""
    root = run.exp_dir / decode_dir
    plan_path = root / "pruning" / "pruning_plan.yaml"
    if not plan_path.is_file():
        return {}
    plan = PruningPlan.load(plan_path)
    per_block = plan.subnet // plan.num_blocks
    dev: Dict[int, List[dict]] = {}
    scores = root / "pruning" / "dev_scores.tsv"
    if scores.is_file():
        with open(scores, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                dev.setdefault(int(row["depth"]), []).append(row)
    out: Dict[int, Dict[str, Measured]] = {}
    for strategy, depth, _ in plan.removal_sets():
        folders = {t: root / t / "pruned" / strategy / str(depth) for t in test_sets}
        measured = measure(folders, depth * per_block)
        if measured is not None:
            out.setdefault(depth, {})[strategy] = measured
    for depth, by_strategy in out.items():
        best = _dev_choice([r for r in dev.get(depth, []) if r["strategy"] in by_strategy])
        if best is not None:
            by_strategy["best"] = replace(by_strategy[best], chosen=best)
    return out


def _log_seconds(log: Path) -> float:
    """Seconds from the first 'epoch started' to the last 'epoch results' line of one log."""
    first = last = None
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = _TIMESTAMP.search(line)
            if not match:
                continue
            when = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S") + dt.timedelta(
                milliseconds=int(match.group(2)))
            message = match.group(3)
            if first is None and "epoch started" in message:
                first = when
            if "epoch results" in message:
                last = when
    return (last - first).total_seconds() if first is not None and last is not None else 0.0


def training_cost(run: Run) -> TrainingCost:
    logs = sorted(run.exp_dir.glob("train*.log"))
    seconds = sum(_log_seconds(log) for log in logs) if logs else None
    updates = parameters = None
    checkpoint = run.exp_dir / "checkpoint.pth"
    if checkpoint.is_file():
        import torch

        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
        if "num_updates" in state:
            updates = int(state["num_updates"])
        parameters = sum(v.numel() for k, v in state.items()
                         if isinstance(v, torch.Tensor) and v.is_floating_point() and not k.endswith(_BUFFERS))
    return TrainingCost(updates, seconds or None, parameters)


# ------------------------------------------------------------------------ aggregation
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


@dataclass
class Collected:
    runs: List[Run]
    sizes: Dict[Run, Dict[int, Measured]]
    pruned: Dict[Run, Dict[int, Dict[str, Measured]]]
    costs: Dict[Run, TrainingCost]

    def methods(self, *roles: str) -> List[str]:
        seen: List[str] = []
        for run in self.runs:
            if run.role in roles and run.method not in seen:
                seen.append(run.method)
        return seen

    def runs_of(self, method: str) -> List[Run]:
        return [r for r in self.runs if r.method == method]

    def alone_by_size(self) -> Dict[int, List[Measured]]:
        """Individually trained results per size, over every 'alone' method and seed."""
        out: Dict[int, List[Measured]] = {}
        for run in self.runs:
            if run.role == "alone":
                for size, measured in self.sizes[run].items():
                    out.setdefault(size, []).append(measured)
        return out


def discover_test_sets(runs: Sequence[Run], decode_dir: str = DECODE_DIR) -> List[str]:
    """The test sets every run has decoded (asr.sh leaves ``<decode dir>/<test set>/.done``)."""
    found = None
    for run in runs:
        root = run.exp_dir / decode_dir
        names = {p.parent.name for p in root.glob("*/.done")} if root.is_dir() else set()
        found = names if found is None else found & names
    if not found:
        raise FileNotFoundError(f"no test set decoded by every run (looked for {decode_dir}/<test set>/.done)")
    return sorted(found)


def collect(runs: Sequence[Run], test_sets: Sequence[str], decode_dir: str = DECODE_DIR) -> Collected:
    sizes, pruned, costs = {}, {}, {}
    for run in runs:
        if not run.exp_dir.is_dir():
            raise FileNotFoundError(f"run {run.method} seed {run.seed}: no experiment dir {run.exp_dir}")
        sizes[run] = size_results(run, test_sets, decode_dir)
        if not sizes[run]:
            raise FileNotFoundError(f"run {run.method} seed {run.seed}: nothing decoded in {run.exp_dir / decode_dir}")
        pruned[run] = pruned_results(run, test_sets, decode_dir) if run.role == "pruned" else {}
        costs[run] = training_cost(run)
    return Collected(list(runs), sizes, pruned, costs)


# ------------------------------------------------------------------------ tables
def _cells(results: Sequence[Measured], test_sets: Sequence[str]) -> List[str]:
    cells = [mean_sd([r.wer.get(t) for r in results]) for t in test_sets]
    cells += [mean_sd([r.cer.get(t) for r in results]) for t in test_sets]
    return cells


def size_table(data: Collected, test_sets: Sequence[str]) -> List[str]:
    """Every size of every supernet method and every model trained alone, one row each."""
    header = ["modules", "method", "seeds", "parameters", "FLOPs / s"]
    header += [f"WER {t} (%)" for t in test_sets] + [f"CER {t} (%)" for t in test_sets]
    rows = []
    alone = data.alone_by_size()
    all_sizes = sorted({s for run in data.runs if run.role in ("supernet", "alone") for s in data.sizes[run]})
    for size in all_sizes:
        for method in data.methods("supernet"):
            results = [data.sizes[r][size] for r in data.runs_of(method) if size in data.sizes[r]]
            if results:
                rows.append([str(size), method, str(len(results)), human(_mean([r.parameters for r in results])),
                             human(_mean([r.flops for r in results]))] + _cells(results, test_sets))
        if size in alone:
            results = alone[size]
            rows.append([str(size), "trained alone", str(len(results)), human(_mean([r.parameters for r in results])),
                         human(_mean([r.flops for r in results]))] + _cells(results, test_sets))
    return markdown_table(header, rows)


def pivot_table(data: Collected, test_set: str) -> List[str]:
    """WER per size (rows) and method (columns), trained alone last."""
    methods = data.methods("supernet")
    header = ["modules"] + methods + ["trained alone"]
    alone = data.alone_by_size()
    rows = []
    sizes = sorted({s for run in data.runs if run.role in ("supernet", "alone") for s in data.sizes[run]})
    for size in sizes:
        row = [str(size)]
        for method in methods:
            row.append(mean_sd([data.sizes[r][size].wer.get(test_set) for r in data.runs_of(method)
                                if size in data.sizes[r]]))
        row.append(mean_sd([m.wer.get(test_set) for m in alone.get(size, [])]))
        rows.append(row)
    return markdown_table(header, rows)


def pruning_table(data: Collected, test_set: str) -> List[str]:
    lines: List[str] = []
    alone = data.alone_by_size()
    for method in data.methods("pruned"):
        runs = data.runs_of(method)
        depths = sorted({d for r in runs for d in data.pruned[r]}, reverse=True)
        strategies = sorted({s for r in runs for d in data.pruned[r] for s in data.pruned[r][d] if s != "best"})
        header = ["blocks kept", "modules", f"{method}: best on dev (chosen)"] + strategies + ["trained alone"]
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
    alone = data.alone_by_size()
    for method in data.methods("dmao"):
        runs = data.runs_of(method)
        size = max(s for r in runs for s in data.sizes[r])
        results = [data.sizes[r][size] for r in runs]
        rows.append([f"{method} ({size} modules)", str(len(results)), human(_mean([r.parameters for r in results]))]
                    + _cells(results, test_sets))
        if size in alone:
            rows.append([f"uniform, trained alone ({size} modules)", str(len(alone[size])),
                         human(_mean([m.parameters for m in alone[size]]))] + _cells(alone[size], test_sets))
    return markdown_table(header, rows)


def _seconds(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes}m{seconds:02d}s"


def cost_rows(data: Collected) -> Tuple[List[str], List[List[str]]]:
    """Training cost per seed: one supernet against every size separately."""
    header = ["approach", "runs per seed", "updates", "wall time (mean over seeds)", "parameter updates"]
    rows = []
    for method in data.methods("supernet", "pruned", "dmao"):
        costs = [data.costs[r] for r in data.runs_of(method)]
        rows.append([method, "1", mean_sd([c.updates for c in costs], 0), _seconds(_mean([c.seconds for c in costs])),
                     human(_mean([(c.updates or 0) * (c.parameters or 0) for c in costs]))])
    alone_runs = [r for r in data.runs if r.role == "alone"]
    if alone_runs:
        by_seed: Dict[int, List[TrainingCost]] = {}
        for run in alone_runs:
            by_seed.setdefault(run.seed, []).append(data.costs[run])
        totals = [(sum(c.updates or 0 for c in cs), sum(c.seconds or 0 for c in cs),
                   sum((c.updates or 0) * (c.parameters or 0) for c in cs)) for cs in by_seed.values()]
        count = round(len(alone_runs) / len(by_seed))
        rows.append([f"every size separately ({count} models)", str(count), mean_sd([t[0] for t in totals], 0),
                     _seconds(_mean([t[1] for t in totals])), human(_mean([t[2] for t in totals]))])
    return header, rows


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
        "- every model: greedy CTC, decoded from the average of its best epochs by dev CER of its full size "
        "(`valid.cer_ctc.ave.pth`); WER/CER from sclite's `Sum/Avg` line",
        "- cells: mean ± sample standard deviation over seeds (one value: one seed)",
        "",
        "## Dynamic Encoder Size: every size, every method",
        "",
    ]
    lines += size_table(data, test_sets) + [""]
    for test_set in test_sets:
        lines += [f"### WER (%) on {test_set}", ""] + pivot_table(data, test_set) + [""]
    if data.methods("pruned"):
        lines += ["## Layer pruning on demand against models of that depth trained alone", ""]
        for test_set in test_sets:
            lines += [f"### WER (%) on {test_set}", ""] + pruning_table(data, test_set)
    if data.methods("dmao"):
        lines += ["## DMAO against the uniform model of the same size", ""] + dmao_table(data, test_sets) + [""]
    header, rows = cost_rows(data)
    lines += ["## Training cost (per seed)", "",
              "Updates and parameter updates (parameters x updates, summed over the models one needs) come from the "
              "checkpoints; wall time from train.log (first epoch started to last epoch finished).", ""]
    lines += markdown_table(header, rows) + [""]
    return "\n".join(lines) + "\n"


def plot_comparison(data: Collected, test_set: str, path: Path) -> None:
    """WER against FLOPs per second of audio, one line per method (mean, error bars: sd over seeds)."""
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

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method in data.methods("supernet"):
        by_size: Dict[int, List[Measured]] = {}
        for run in data.runs_of(method):
            for size, measured in data.sizes[run].items():
                by_size.setdefault(size, []).append(measured)
        ax.errorbar(*series(by_size), marker="o", capsize=3, label=method)
    ax.errorbar(*series(data.alone_by_size()), marker="s", capsize=3, linestyle="--", color="black",
                label="trained alone")
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
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)

