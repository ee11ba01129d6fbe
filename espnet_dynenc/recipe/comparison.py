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
(parameters, FLOPs per second of audio, the checkpoint decoded) and
``score_{wer,cer}/result.txt`` per test set, the word errors of every utterance (from
``score_wer/{ref,hyp}.trn``), the plan's ``dev_scores.tsv``, the training's ``train.log``
(wall time: from the first epoch started to the last epoch finished, summed over the logs
of a resumed run) and its checkpoint (parameters, optimizer updates). A supernet whose
sizes have their own checkpoints (asr.sh ``--size_checkpoints``) is read from the
decoding of that rule (``<decode dir>_per_size``), and from the decoding of the full-size
rule too, when there is one, so the effect of the rule is reported.

A run's numbers are kept in a small summary (:func:`summarise_run`, one JSON file per
run, in the recipe's ``comparison_runs/``), so the tables can be written again, and an
interrupted comparison finished, on a machine that does not have the experiment dirs.

Rows over seeds show the mean, and the sample standard deviation when there are two seeds
or more. Every claim (a size against that size trained alone, a pruned depth against that
depth trained alone, DMAO against its uniform model, each trained-alone size against the
next smaller one) gets the difference in WER with a 95% interval from a paired bootstrap
over the test utterances, seeds pooled (``espnet_dynenc.scoring.bootstrap``), and a
verdict read from that interval.
"""
import csv
import datetime as dt
import json
import re
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.decode.outputs import (
    DecodeOutput, decode_dir_name, dev_scores_file, finished_sizes, per_size_name, pruning_plan_file)
from espnet_dynenc.pruning.plan import PruningPlan
from espnet_dynenc.recipe.results_table import human, load_stats, markdown_table, read_sum_avg
from espnet_dynenc.scoring.bootstrap import CONFIDENCE, REPLICATES, Interval, UtteranceErrors, paired_bootstrap
from espnet_dynenc.scoring.sclite_format import score_files

ROLES = ("supernet", "alone", "pruned", "dmao")
DECODE_DIR = decode_dir_name()  # asr.sh's greedy decoding of valid.cer_ctc.ave.pth
SUMMARY_VERSION = 1
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
    checkpoint: Optional[str] = None  # the file it was decoded from
    # per test set: utterance id -> [word errors, reference words]
    utterances: Dict[str, Dict[str, List[int]]] = field(default_factory=dict)


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


def utterance_errors(folder: Path) -> Dict[str, List[int]]:
    """Word errors and reference words of every utterance scored in ``folder/score_wer``
    (the alignment sclite makes); empty when the .trn files are not there."""
    ref, hyp = folder / "score_wer" / "ref.trn", folder / "score_wer" / "hyp.trn"
    if not (ref.is_file() and hyp.is_file()):
        return {}
    return {utt.utt_id: [utt.counts.errors, utt.counts.ref_words]
            for speaker in score_files(ref, hyp) for utt in speaker.utterances}


def measure(folders: Dict[str, Path], units: int) -> Optional[Measured]:
    """The numbers of one decoded configuration (``folders``: test set -> its folder);
    None if it was never decoded."""
    stats = [load_stats(folder) for folder in folders.values()]
    known = next((s for s in stats if s), None)
    if known is None:
        return None
    per_utterance = {t: utterance_errors(f) for t, f in folders.items()}
    return Measured(units, known.get("parameters"), known.get("flops_per_second"),
                    {t: _error_rate(f, "wer") for t, f in folders.items()},
                    {t: _error_rate(f, "cer") for t, f in folders.items()},
                    checkpoint=known.get("checkpoint"),
                    utterances={t: errors for t, errors in per_utterance.items() if errors})


def size_results(run: Run, test_sets: Sequence[str], decode_dir: str = DECODE_DIR) -> Dict[int, Measured]:
    """Every size decoded for ``run`` (in units)."""
    root = run.exp_dir / decode_dir
    out = {}
    for size in finished_sizes(root / test_set for test_set in test_sets):
        measured = measure({t: DecodeOutput.whole(size).folder(root / t) for t in test_sets}, size)
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
    plan_path = pruning_plan_file(root)
    if not plan_path.is_file():
        return {}
    plan = PruningPlan.load(plan_path)
    per_block = plan.subnet // plan.num_blocks
    dev: Dict[int, List[dict]] = {}
    scores = dev_scores_file(root)
    if scores.is_file():
        with open(scores, encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                dev.setdefault(int(row["depth"]), []).append(row)
    out: Dict[int, Dict[str, Measured]] = {}
    for strategy, depth, _ in plan.removal_sets():
        folders = {t: DecodeOutput.pruned(strategy, depth).folder(root / t) for t in test_sets}
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
    # supernet sizes decoded from the full size's checkpoint too, when they have their own
    full_size_rule: Dict[Run, Dict[int, Measured]] = field(default_factory=dict)
    run_seconds: Dict[Run, Optional[float]] = field(default_factory=dict)  # training + decoding + scoring
    _checked: Dict[str, list] = field(default_factory=dict, repr=False)

    def checked_claims(self, test_set: str) -> List[Tuple["Claim", Optional["Interval"]]]:
        """Every claim with its interval on ``test_set``, bootstrapped once for the tables and the plot."""
        if test_set not in self._checked:
            self._checked[test_set] = [(claim, interval(claim.a, claim.b, test_set)) for claim in claims(self)]
        return self._checked[test_set]

    def total_run_seconds(self) -> Optional[float]:
        """The wall time of every run together, when each run's is known."""
        known = [self.run_seconds.get(run) for run in self.runs]
        return sum(known) if known and all(v is not None for v in known) else None

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


def primary_decode_dir(run: Run, decode_dir: str = DECODE_DIR) -> str:
    """The decoding a run's sizes are read from: the one with each size's own checkpoint
    (``<decode_dir>_per_size``) when asr.sh made it, else ``decode_dir``."""
    per_size = per_size_name(decode_dir)
    return per_size if (run.exp_dir / per_size).is_dir() else decode_dir


def discover_test_sets(runs: Sequence[Run], decode_dir: str = DECODE_DIR,
                       runs_dir: Optional[Path] = None) -> List[str]:
    """The test sets every run has decoded (asr.sh leaves ``<decode dir>/<test set>/.done``;
    a run with a summary in ``runs_dir`` lists its own)."""
    found = None
    for run in runs:
        summary = summary_path(runs_dir, run) if runs_dir is not None else None
        if summary is not None and summary.is_file():
            names = set(json.loads(summary.read_text(encoding="utf-8"))["test_sets"])
        else:
            root = run.exp_dir / primary_decode_dir(run, decode_dir)
            names = {p.parent.name for p in root.glob("*/.done")} if root.is_dir() else set()
        found = names if found is None else found & names
    if not found:
        raise FileNotFoundError(f"no test set decoded by every run (looked for {decode_dir}/<test set>/.done)")
    return sorted(found)


# ------------------------------------------------------------------------ run summaries
def summary_path(runs_dir: Path, run: Run) -> Path:
    return runs_dir / f"{run.method}_seed{run.seed}.json"


def summarise_run(run: Run, test_sets: Sequence[str], decode_dir: str = DECODE_DIR,
                  run_seconds: Optional[float] = None) -> dict:
    """What the tables and intervals need of one run, read from its experiment dir."""
    if not run.exp_dir.is_dir():
        raise FileNotFoundError(f"run {run.method} seed {run.seed}: no experiment dir {run.exp_dir}")
    primary = primary_decode_dir(run, decode_dir)
    sizes = size_results(run, test_sets, primary)
    if not sizes:
        raise FileNotFoundError(f"run {run.method} seed {run.seed}: nothing decoded in {run.exp_dir / primary}")
    full = size_results(run, test_sets, decode_dir) if primary != decode_dir else {}
    pruned = pruned_results(run, test_sets, primary) if run.role == "pruned" else {}
    return {
        "version": SUMMARY_VERSION,
        "method": run.method, "role": run.role, "seed": run.seed, "exp_dir": str(run.exp_dir),
        "test_sets": list(test_sets), "decode_dir": primary,
        "sizes": {str(size): asdict(m) for size, m in sizes.items()},
        "full_size_rule": {str(size): asdict(m) for size, m in full.items()},
        "pruned": {str(depth): {name: asdict(m) for name, m in found.items()} for depth, found in pruned.items()},
        "cost": asdict(training_cost(run)),
        "run_seconds": run_seconds,
    }


def save_summary(summary: dict, runs_dir: Path) -> Path:
    run = Run(summary["method"], summary["role"], summary["seed"], Path(summary["exp_dir"]))
    path = summary_path(runs_dir, run)
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=1, sort_keys=False)
    # one line per utterance: "<id>": [errors, words]
    text = re.sub(r"\[\s+(-?\d+),\s+(-?\d+)\s+\]", r"[\1, \2]", text)
    write_text_atomically(path, text + "\n")
    return path


def load_summary(path: Path, run: Run) -> dict:
    """A summary written by :func:`save_summary`, checked against the run it stands for."""
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("version") != SUMMARY_VERSION:
        raise ValueError(f"{path}: summary version {summary.get('version')}, expected {SUMMARY_VERSION} "
                         "(remove it to summarise the run again from its experiment dir)")
    if (summary["method"], summary["role"], summary["seed"]) != (run.method, run.role, run.seed):
        raise ValueError(f"{path}: stands for {summary['method']} ({summary['role']}) seed {summary['seed']}, "
                         f"not {run.method} ({run.role}) seed {run.seed}")
    return summary


def _measured(entries: dict) -> Dict[int, Measured]:
    return {int(size): Measured(**m) for size, m in entries.items()}


def collect(runs: Sequence[Run], test_sets: Sequence[str], decode_dir: str = DECODE_DIR,
            runs_dir: Optional[Path] = None, run_seconds: Optional[float] = None) -> Collected:
    """Every run's numbers: from its summary in ``runs_dir`` when there is one, else from its
    experiment dir (and then saved into ``runs_dir``, when given, with ``run_seconds``)."""
    sizes, pruned, costs, full, seconds = {}, {}, {}, {}, {}
    for run in runs:
        path = summary_path(runs_dir, run) if runs_dir is not None else None
        if path is not None and path.is_file():
            summary = load_summary(path, run)
            missing = sorted(set(test_sets) - set(summary["test_sets"]))
            if missing:
                raise ValueError(f"{path}: has no results for test set(s) {missing}")
        else:
            summary = summarise_run(run, test_sets, decode_dir, run_seconds)
            if runs_dir is not None:
                save_summary(summary, runs_dir)
        sizes[run] = _measured(summary["sizes"])
        full[run] = _measured(summary["full_size_rule"])
        pruned[run] = {int(depth): {name: Measured(**m) for name, m in found.items()}
                       for depth, found in summary["pruned"].items()}
        costs[run] = TrainingCost(**summary["cost"])
        seconds[run] = summary.get("run_seconds")
    return Collected(list(runs), sizes, pruned, costs, full, seconds)


# ------------------------------------------------------------------------ intervals
@dataclass
class Claim:
    """One comparison a conclusion rests on: ``a`` against ``b`` (both lists over seeds).

    ``kind`` says what the claim asserts: ``parity`` (a is as good as b: it fails when a
    is worse beyond the interval) or ``better`` (a is better than b: it holds only when
    the whole interval is below 0)."""

    section: str
    label: str
    kind: str
    a: List[Measured]
    b: List[Measured]


def pooled_errors(results: Sequence[Measured], test_set: str) -> Optional[UtteranceErrors]:
    """The utterance errors of every seed, or None when a seed has none (old results)."""
    per_seed = [r.utterances.get(test_set) for r in results]
    if not per_seed or any(not errors for errors in per_seed):
        return None
    return UtteranceErrors.from_seeds([{u: tuple(v) for u, v in errors.items()} for errors in per_seed])


def interval(a: Sequence[Measured], b: Sequence[Measured], test_set: str,
             same_runs: bool = False) -> Optional[Interval]:
    """WER(a) - WER(b) on ``test_set`` with its 95% paired-bootstrap interval, seeds pooled
    (``same_runs``: a[i] and b[i] are one training run decoded two ways)."""
    errors_a, errors_b = pooled_errors(a, test_set), pooled_errors(b, test_set)
    if errors_a is None or errors_b is None:
        return None
    return paired_bootstrap(errors_a, errors_b, pair_seeds=same_runs)


def verdict(kind: str, found: Optional[Interval]) -> str:
    """What the interval says of a claim of ``kind`` (see :class:`Claim`)."""
    if found is None:
        return "n/a (no utterance scores)"
    side = found.sign()
    if kind == "parity":
        return {"above": "fails (worse)", "below": "holds (better)", "includes 0": "holds (no difference resolved)"}[side]
    if kind == "better":
        return {"above": "fails (worse)", "below": "holds", "includes 0": "not resolved"}[side]
    raise ValueError(f"unknown claim kind '{kind}'")


def claims(data: Collected) -> List[Claim]:
    """Every claim the comparison can check, in the order of the report."""
    alone = data.alone_by_size()
    out: List[Claim] = []
    sizes = sorted(alone)
    for small, large in zip(sizes, sizes[1:]):
        out.append(Claim("sizes trained alone", f"{large} against {small} modules, both trained alone", "better",
                         alone[large], alone[small]))
    methods = data.methods("supernet")
    for method in methods:
        runs = data.runs_of(method)
        for size in sorted({s for r in runs for s in data.sizes[r]}):
            if size in alone:
                out.append(Claim("sizes cut from one model", f"{method} at {size} modules against {size} trained alone",
                                 "parity", [data.sizes[r][size] for r in runs if size in data.sizes[r]], alone[size]))
    for other in methods[1:]:
        first = methods[0]
        for size in sorted({s for r in data.runs_of(first) for s in data.sizes[r]}):
            a = [data.sizes[r][size] for r in data.runs_of(first) if size in data.sizes[r]]
            b = [data.sizes[r][size] for r in data.runs_of(other) if size in data.sizes[r]]
            if a and b:
                out.append(Claim("sizes cut from one model", f"{first} against {other} at {size} modules", "better",
                                 a, b))
    for method in data.methods("pruned"):
        runs = data.runs_of(method)
        top = max(s for r in runs for s in data.sizes[r])
        if top in alone:
            out.append(Claim("pruning on demand", f"{method}, all blocks ({top} modules), against {top} trained alone",
                             "parity", [data.sizes[r][top] for r in runs if top in data.sizes[r]], alone[top]))
        for depth in sorted({d for r in runs for d in data.pruned[r]}, reverse=True):
            best = [data.pruned[r][depth]["best"] for r in runs if "best" in data.pruned[r].get(depth, {})]
            if best and best[0].units in alone:
                out.append(Claim("pruning on demand", f"{method}, {depth} blocks kept (best on dev), against "
                                 f"{best[0].units} modules trained alone", "parity", best, alone[best[0].units]))
    for method in data.methods("dmao"):
        runs = data.runs_of(method)
        top = max(s for r in runs for s in data.sizes[r])
        if top in alone:
            out.append(Claim("DMAO", f"{method} against the uniform model of {top} modules trained alone", "better",
                             [data.sizes[r][top] for r in runs], alone[top]))
    return out


def claims_table(data: Collected, test_set: str) -> List[str]:
    header = ["claim", "kind", "seeds (a / b)", f"WER a (%)", f"WER b (%)", "a - b [95% interval]", "verdict"]
    rows = []
    for claim, found in data.checked_claims(test_set):
        rows.append([claim.label, claim.kind, f"{len(claim.a)} / {len(claim.b)}",
                     mean_sd([m.wer.get(test_set) for m in claim.a]), mean_sd([m.wer.get(test_set) for m in claim.b]),
                     str(found) if found is not None else "n/a", verdict(claim.kind, found)])
    return markdown_table(header, rows)


def checkpoint_rule_table(data: Collected, test_set: str) -> List[str]:
    """Each supernet size decoded from its own best epochs against the full size's best epochs."""
    header = ["method", "modules", "seeds", "own checkpoint", "WER own (%)", "WER full-size rule (%)",
              "own - full-size rule [95% interval]"]
    rows = []
    for method in data.methods("supernet"):
        runs = [r for r in data.runs_of(method) if data.full_size_rule.get(r)]
        for size in sorted({s for r in runs for s in data.full_size_rule[r]}):
            own = [data.sizes[r][size] for r in runs if size in data.sizes[r] and size in data.full_size_rule[r]]
            full = [data.full_size_rule[r][size] for r in runs if size in data.sizes[r] and size in data.full_size_rule[r]]
            if not own:
                continue
            found = interval(own, full, test_set, same_runs=True)
            checkpoints = "/".join(sorted({m.checkpoint or "?" for m in own}))
            rows.append([method, str(size), str(len(own)), f"`{checkpoints}`", mean_sd([m.wer.get(test_set) for m in own]),
                         mean_sd([m.wer.get(test_set) for m in full]), str(found) if found is not None else "n/a"])
    return markdown_table(header, rows) if rows else []


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
        "- every model: greedy CTC; each size decoded from the average of its own best epochs by its dev CER "
        "(`valid.cer_ctc_<size>.ave.pth`) where the run's config chose them per size, else by the dev CER of the "
        "full size (`valid.cer_ctc.ave.pth`); WER/CER from sclite's `Sum/Avg` line",
        "- cells: mean ± sample standard deviation over seeds (one value: one seed)",
        f"- intervals: WER difference a - b (points) with its {100 * CONFIDENCE:.0f}% interval from a paired bootstrap "
        f"over the test utterances (Bisani & Ney 2004, {REPLICATES} replicates), seeds pooled (each replicate also "
        "redraws each system's seeds); `parity` claims (as good as) fail when the whole interval is above 0, "
        "`better` claims hold only when it is below 0",
        "",
    ]
    for test_set in test_sets[:1]:
        lines += [f"## Claims and their intervals ({test_set})", ""] + claims_table(data, test_set) + [""]
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
                  "The same runs decoded twice: every size from the average of its own best epochs by its dev CER, "
                  "and every size from the average of the full size's best epochs.", ""] + rule + [""]
    header, rows = cost_rows(data)
    lines += ["## Training cost (per seed)", "",
              "Updates and parameter updates (parameters x updates, summed over the models one needs) come from the "
              "checkpoints; wall time from train.log (first epoch started to last epoch finished).", ""]
    lines += markdown_table(header, rows) + [""]
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

