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

A role may carry a training regime, ``<role>@<regime>`` (e.g. ``supernet@2x``, ``alone@2x``:
trained for twice the comparison's updates); a plain role is the comparison's own regime,
``1x``. Runs are set only against runs of their own regime: a supernet at 2x against the
sizes trained alone at 2x, never against the 1x ones, so a longer schedule cannot borrow
the shorter one's baseline. Every regime's rows are shown next to the others', and per
size the supernet-minus-alone gap of each regime with its interval (does the gap close
with longer training?).

Each run's numbers come from the files asr.sh leaves: ``<size>/decode_stats.yaml``
(parameters, FLOPs per second of audio, the checkpoint decoded) and
``score_{wer,cer}/result.txt`` per test set, the word errors of every utterance (from
``score_wer/{ref,hyp}.trn``), the plan's ``dev_scores.tsv``, the training's ``train.log``
(wall time: from the first epoch started to the last epoch finished, summed over the logs
of a resumed run) and its checkpoint (parameters, optimizer updates). A run that starts
from a converted model (its config's ``init_param`` names ``<dir>/model.pth`` and
``<dir>/init.yaml`` names the experiment it was converted from) counts that experiment's
training too, as its pre-training. A supernet whose
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
MAIN_REGIME = "1x"  # the regime of a role without "@<regime>": the comparison's own schedule
_REGIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
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
    regime: str = MAIN_REGIME


def split_role(text: str) -> Tuple[str, str]:
    """``'supernet@2x'`` -> ``('supernet', '2x')``; a plain role is of the main regime."""
    role, at, regime = text.partition("@")
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}' (expected {', '.join(ROLES)}, optionally with @<regime>)")
    if at and not _REGIME.fullmatch(regime):
        raise ValueError(f"bad regime '{regime}' in role '{text}' (letters, digits, '.', '_', '-', e.g. 2x)")
    return role, regime or MAIN_REGIME


def role_text(run: Run) -> str:
    """The role as a manifest or plan line writes it."""
    return run.role if run.regime == MAIN_REGIME else f"{run.role}@{run.regime}"


def regime_suffix(regime: str) -> str:
    """What labels of a regime other than the main one end in, e.g. ``' (2x)'``."""
    return "" if regime == MAIN_REGIME else f" ({regime})"


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
    """One run's training: optimizer updates, wall seconds, parameters; for a run started from
    another experiment's converted model, that experiment's training too (``pretraining_*``,
    None otherwise; summaries written before these fields existed load with None)."""

    updates: Optional[int]
    seconds: Optional[float]
    parameters: Optional[int]
    pretraining_updates: Optional[int] = None
    pretraining_seconds: Optional[float] = None
    pretraining_parameters: Optional[int] = None
    pretraining_exp_dir: Optional[str] = None

    @property
    def pretrained(self) -> bool:
        return self.pretraining_exp_dir is not None

    def total_updates(self) -> Optional[int]:
        """Pre-training and this training's updates together."""
        if self.updates is None and self.pretraining_updates is None:
            return None
        return (self.updates or 0) + (self.pretraining_updates or 0)

    def total_seconds(self) -> Optional[float]:
        if self.seconds is None and self.pretraining_seconds is None:
            return None
        return (self.seconds or 0.0) + (self.pretraining_seconds or 0.0)

    def parameter_updates(self) -> float:
        """Parameters x updates, of the pre-training and of this training, summed."""
        return ((self.updates or 0) * (self.parameters or 0)
                + (self.pretraining_updates or 0) * (self.pretraining_parameters or 0))


def read_manifest(path: Path) -> List[Run]:
    """The runs listed by run_comparison.sh; a bad line names the file and line."""
    runs = []
    regimes: Dict[str, Tuple[str, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        try:
            role, regime = split_role(fields[1]) if len(fields) == 4 else ("", "")
        except ValueError:
            role = ""
        if not role or not fields[2].lstrip("-").isdigit():
            raise ValueError(f"{path}:{number}: expected '<method> <role: {'|'.join(ROLES)}>[@<regime>] <seed> "
                             f"<exp dir>', got '{line}'")
        seen, first = regimes.setdefault(fields[0], (regime, number))
        if seen != regime:
            raise ValueError(f"{path}:{number}: method {fields[0]} is of regime {regime} here but of {seen} on line "
                             f"{first}: give the runs of another regime their own method name (e.g. "
                             f"{fields[0]}_{regime})")
        runs.append(Run(fields[0], role, int(fields[2]), Path(fields[3]), regime))
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


def _checkpoint_updates(checkpoint: dict, config: dict) -> Optional[int]:
    """Optimizer updates of a training checkpoint (ESPnet's ``checkpoint.pth``).

    This package's models count them in their ``num_updates`` buffer. A stock ESPnet model has
    none: then the step count Adam-type optimizers keep per parameter (the largest: every
    update steps every trained parameter), which is exact whatever the scheduler (a scheduler's
    ``last_epoch`` counts updates or epochs depending on its kind, and the state does not say
    which); for an optimizer without one (SGD), the epochs run (the reporter's) times
    ``num_iters_per_epoch / accum_grad`` from the experiment's config, which assumes every
    epoch ran its full number of iterations."""
    state = checkpoint.get("model", {})
    if "num_updates" in state:
        return int(state["num_updates"])
    steps = [int(s["step"]) for optimizer in checkpoint.get("optimizers") or []
             for s in optimizer.get("state", {}).values() if "step" in s]
    if steps:
        return max(steps)
    epochs = (checkpoint.get("reporter") or {}).get("epoch")
    iters = config.get("num_iters_per_epoch")
    if epochs is None or not iters:
        return None
    return int(epochs) * int(iters) // int(config.get("accum_grad") or 1)


def _experiment_cost(exp_dir: Path) -> TrainingCost:
    """Updates, wall seconds (its train*.log) and parameters (its checkpoint.pth) of one training."""
    logs = sorted(exp_dir.glob("train*.log"))
    seconds = sum(_log_seconds(log) for log in logs) if logs else None
    updates = parameters = None
    checkpoint_path = exp_dir / "checkpoint.pth"
    if checkpoint_path.is_file():
        import torch

        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        updates = _checkpoint_updates(checkpoint, _read_config(exp_dir))
        parameters = sum(v.numel() for k, v in checkpoint["model"].items()
                         if isinstance(v, torch.Tensor) and v.is_floating_point() and not k.endswith(_BUFFERS))
    return TrainingCost(updates, seconds or None, parameters)


def _read_config(exp_dir: Path) -> dict:
    import yaml

    path = exp_dir / "config.yaml"
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def _recipe_path(name: str, exp_dir: Path) -> Optional[Path]:
    """A path as asr.sh wrote it (relative to the recipe dir it ran in): absolute as is, else
    under the nearest folder above ``exp_dir`` where it exists (the recipe dir, wherever the
    experiments are now), else under the working directory; None when it is nowhere."""
    path = Path(name)
    if path.is_absolute():
        return path if path.exists() else None
    for base in [*exp_dir.resolve().parents, Path.cwd()]:
        if (base / path).exists():
            return base / path
    return None


def pretraining_source(exp_dir: Path) -> Optional[Tuple[Path, str]]:
    """The experiment whose training a run started from: its config's ``init_param`` (asr.sh
    ``--pretrained_model``) names ``<dir>/model.pth``, whose ``<dir>/init.yaml`` (written by
    ``espnet_dynenc.bin.init_supernet``) names the converted model's ``asr_train_config``; its
    folder is the pre-training: where it is, and its name as init.yaml gives it. None when the run starts from scratch or from a model whose
    training is not here (no init.yaml, or its experiment is gone)."""
    import yaml

    init_param = _read_config(exp_dir).get("init_param") or []
    for entry in [init_param] if isinstance(init_param, str) else init_param:
        model = str(entry).split(":")[0]  # path[:src_key:dst_key:excluded]
        init_yaml = _recipe_path(str(Path(model).parent / "init.yaml"), exp_dir)
        if init_yaml is None:
            continue
        init = yaml.safe_load(init_yaml.read_text(encoding="utf-8")) or {}
        config = (init.get("source") or {}).get("asr_train_config")
        found = _recipe_path(str(config), exp_dir) if config else None
        if found is not None:
            return found.parent, str(Path(config).parent)
    return None


def training_cost(run: Run) -> TrainingCost:
    """The run's training, and its pre-training when it started from a converted model
    (:func:`pretraining_source`)."""
    cost = _experiment_cost(run.exp_dir)
    found = pretraining_source(run.exp_dir)
    if found is not None and found[0].resolve() != run.exp_dir.resolve():
        before = _experiment_cost(found[0])
        cost = replace(cost, pretraining_updates=before.updates, pretraining_seconds=before.seconds,
                       pretraining_parameters=before.parameters, pretraining_exp_dir=found[1])
    return cost


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

    def alone_by_size(self, regime: str = MAIN_REGIME) -> Dict[int, List[Measured]]:
        """Individually trained results per size, over every 'alone' method and seed of one
        regime (never pooled across regimes)."""
        out: Dict[int, List[Measured]] = {}
        for run in self.runs:
            if run.role == "alone" and run.regime == regime:
                for size, measured in self.sizes[run].items():
                    out.setdefault(size, []).append(measured)
        return out

    def regimes(self) -> List[str]:
        """The regimes of the runs, the main one first, then in the order they appear."""
        found = [MAIN_REGIME] if any(r.regime == MAIN_REGIME for r in self.runs) else []
        for run in self.runs:
            if run.regime not in found:
                found.append(run.regime)
        return found

    def in_regime(self, regime: str) -> "Collected":
        """The runs of one regime (their numbers shared, not copied)."""
        return replace(self, runs=[r for r in self.runs if r.regime == regime], _checked={})

    def regime_of(self, method: str) -> str:
        return next(r.regime for r in self.runs if r.method == method)


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
        "method": run.method, "role": run.role, "regime": run.regime, "seed": run.seed,
        "exp_dir": str(run.exp_dir), "test_sets": list(test_sets), "decode_dir": primary,
        "sizes": {str(size): asdict(m) for size, m in sizes.items()},
        "full_size_rule": {str(size): asdict(m) for size, m in full.items()},
        "pruned": {str(depth): {name: asdict(m) for name, m in found.items()} for depth, found in pruned.items()},
        "cost": asdict(training_cost(run)),
        "run_seconds": run_seconds,
    }


def save_summary(summary: dict, runs_dir: Path) -> Path:
    run = Run(summary["method"], summary["role"], summary["seed"], Path(summary["exp_dir"]),
              summary.get("regime", MAIN_REGIME))
    path = summary_path(runs_dir, run)
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=1, sort_keys=False)
    # one line per utterance: "<id>": [errors, words]
    text = re.sub(r"\[\s+(-?\d+),\s+(-?\d+)\s+\]", r"[\1, \2]", text)
    write_text_atomically(path, text + "\n")
    return path


def load_summary(path: Path, run: Run) -> dict:
    """A summary written by :func:`save_summary`, checked against the run it stands for
    (one without a regime, written before regimes existed, is of the main one; one without
    the pre-training fields in its cost loads with none)."""
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("version") != SUMMARY_VERSION:
        raise ValueError(f"{path}: summary version {summary.get('version')}, expected {SUMMARY_VERSION} "
                         "(remove it to summarise the run again from its experiment dir)")
    regime = summary.get("regime", MAIN_REGIME)
    stands_for = Run(summary["method"], summary["role"], summary["seed"], run.exp_dir, regime)
    if (stands_for.method, stands_for.role, stands_for.seed, regime) != (run.method, run.role, run.seed, run.regime):
        raise ValueError(f"{path}: stands for {summary['method']} ({role_text(stands_for)}) seed {summary['seed']}, "
                         f"not {run.method} ({role_text(run)}) seed {run.seed}")
    return summary


def refresh_costs(runs: Sequence[Run], runs_dir: Path) -> List[Path]:
    """Read each run's training cost again from its experiment dir into its summary in
    ``runs_dir`` (e.g. after the cost learned to count a pre-training); everything else in
    the summary is kept. Every run needs both its summary and its experiment dir."""
    for run in runs:
        if not summary_path(runs_dir, run).is_file():
            raise FileNotFoundError(f"run {run.method} seed {run.seed}: no summary {summary_path(runs_dir, run)} to "
                                    "refresh (summarise the run first: --summarise_only)")
        if not run.exp_dir.is_dir():
            raise FileNotFoundError(f"run {run.method} seed {run.seed}: no experiment dir {run.exp_dir} to read "
                                    "its cost from (run in the recipe dir the manifest's paths are relative to)")
    written = []
    for run in runs:
        summary = load_summary(summary_path(runs_dir, run), run)
        summary["cost"] = asdict(training_cost(run))
        written.append(save_summary(summary, runs_dir))
    return written


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


def size_claim_label(method: str, size: int, regime: str = MAIN_REGIME) -> str:
    """The label of the claim "this supernet size is as good as the size trained alone"."""
    return f"{method} at {size} modules against {size} trained alone{regime_suffix(regime)}"


def claims(data: Collected) -> List[Claim]:
    """Every claim the comparison can check, in the order of the report: those of the main
    regime, then those of each other regime (each set against its own regime's runs only)."""
    return [claim for regime in data.regimes() for claim in _regime_claims(data.in_regime(regime), regime)]


def _regime_claims(data: Collected, regime: str) -> List[Claim]:
    """The claims among the runs of one regime (``data`` holds only those)."""
    alone = data.alone_by_size(regime)
    tail = regime_suffix(regime)
    out: List[Claim] = []
    sizes = sorted(alone)
    for small, large in zip(sizes, sizes[1:]):
        out.append(Claim("sizes trained alone", f"{large} against {small} modules, both trained alone{tail}", "better",
                         alone[large], alone[small]))
    methods = data.methods("supernet")
    for method in methods:
        runs = data.runs_of(method)
        for size in sorted({s for r in runs for s in data.sizes[r]}):
            if size in alone:
                out.append(Claim("sizes cut from one model", size_claim_label(method, size, regime), "parity",
                                 [data.sizes[r][size] for r in runs if size in data.sizes[r]], alone[size]))
    for other in methods[1:]:
        first = methods[0]
        for size in sorted({s for r in data.runs_of(first) for s in data.sizes[r]}):
            a = [data.sizes[r][size] for r in data.runs_of(first) if size in data.sizes[r]]
            b = [data.sizes[r][size] for r in data.runs_of(other) if size in data.sizes[r]]
            if a and b:
                out.append(Claim("sizes cut from one model", f"{first} against {other} at {size} modules{tail}",
                                 "better", a, b))
    for method in data.methods("pruned"):
        runs = data.runs_of(method)
        top = max(s for r in runs for s in data.sizes[r])
        if top in alone:
            out.append(Claim("pruning on demand", f"{method}, all blocks ({top} modules), against {top} trained "
                             f"alone{tail}", "parity", [data.sizes[r][top] for r in runs if top in data.sizes[r]],
                             alone[top]))
        for depth in sorted({d for r in runs for d in data.pruned[r]}, reverse=True):
            best = [data.pruned[r][depth]["best"] for r in runs if "best" in data.pruned[r].get(depth, {})]
            if best and best[0].units in alone:
                out.append(Claim("pruning on demand", f"{method}, {depth} blocks kept (best on dev), against "
                                 f"{best[0].units} modules trained alone{tail}", "parity", best, alone[best[0].units]))
    for method in data.methods("dmao"):
        runs = data.runs_of(method)
        top = max(s for r in runs for s in data.sizes[r])
        if top in alone:
            out.append(Claim("DMAO", f"{method} against the uniform model of {top} modules trained alone{tail}",
                             "better", [data.sizes[r][top] for r in runs], alone[top]))
    return out


def _main_counterpart(data: Collected, method: str, regime: str) -> Optional[str]:
    """The main regime's supernet that ``method`` (a supernet of ``regime``) is the longer or
    shorter version of: the one named ``method`` without ``_<regime>`` (des_simple_topk for
    des_simple_topk_2x), else the main regime's first supernet."""
    main = data.in_regime(MAIN_REGIME).methods("supernet")
    stem = method[:-len(f"_{regime}")] if method.endswith(f"_{regime}") else None
    if stem in main:
        return stem
    return main[0] if main else None


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
                  "The same runs decoded twice: every size from the average of its own best epochs by its dev CER, "
                  "and every size from the average of the full size's best epochs.", ""] + rule + [""]
    header, rows = cost_rows(data)
    lines += ["## Training cost (per seed)", "",
              "Updates and parameter updates (parameters x updates, summed over the models one needs) come from the "
              "checkpoints; wall time from train.log (first epoch started to last epoch finished).", ""]
    lines += markdown_table(header, rows) + [""]
    notes = cost_notes(data)
    if notes:
        lines += notes + [""]
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

