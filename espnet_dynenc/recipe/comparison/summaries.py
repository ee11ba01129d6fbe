"""One JSON summary per finished run (in the recipe's ``comparison_runs/``), and every run's
numbers collected from the summaries or the experiment dirs.

A summary keeps what the tables and intervals need of a run (its sizes, pruned depths,
per-utterance word errors, training cost), small enough to keep in the repository, so the
report can be written again, and an interrupted comparison finished, on a machine without
the experiment dirs. A summary is written whole or not at all and is checked against the
run it stands for when it is read back.

Version 2 keeps each test set's utterance ids and reference word counts once per run
(``references``) and, per size or pruned depth, only the list of word errors in that order
(``errors``): a run decoded at a dozen depths and strategies on thousands of utterances stays
a few hundred kB instead of several MB. Version 1 (one ``[errors, words]`` per utterance and
entry) still loads, and is written as version 2 the next time its summary is saved.
"""
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from espnet_dynenc.atomic_files import write_text_atomically
from espnet_dynenc.decode.outputs import PRUNING_DIR
from espnet_dynenc.recipe.comparison.claims import Collected
from espnet_dynenc.recipe.comparison.cost import TrainingCost, training_cost
from espnet_dynenc.recipe.comparison.decodings import Measured, pruned_results, size_results
from espnet_dynenc.recipe.comparison.runs import DECODE_DIR, MAIN_REGIME, Run, primary_decode_dir, role_text

SUMMARY_VERSION = 2
READABLE_VERSIONS = (1, 2)


def summary_path(runs_dir: Path, run: Run) -> Path:
    return runs_dir / f"{run.method}_seed{run.seed}.json"


def discover_test_sets(runs: Sequence[Run], decode_dir: str = DECODE_DIR,
                       runs_dir: Optional[Path] = None) -> List[str]:
    """The test sets every run has decoded (asr.sh leaves ``<decode dir>/<test set>/.done``;
    a run with a summary in ``runs_dir`` lists its own). Stage 12's pruning folder has a
    ``.done`` too and is never a test set (summaries written before this rule may list it)."""
    found = None
    for run in runs:
        summary = summary_path(runs_dir, run) if runs_dir is not None else None
        if summary is not None and summary.is_file():
            names = set(json.loads(summary.read_text(encoding="utf-8"))["test_sets"])
        else:
            root = run.exp_dir / primary_decode_dir(run, decode_dir)
            names = {p.parent.name for p in root.glob("*/.done")} if root.is_dir() else set()
        names.discard(PRUNING_DIR)
        found = names if found is None else found & names
    if not found:
        raise FileNotFoundError(f"no test set decoded by every run (looked for {decode_dir}/<test set>/.done)")
    return sorted(found)


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
    pruned_full = pruned_results(run, test_sets, decode_dir) if run.role == "pruned" and primary != decode_dir else {}
    # written as a version-1 summary, then compacted: new and old summaries take one path to version 2
    return _compact({
        "version": 1,
        "method": run.method, "role": run.role, "regime": run.regime, "seed": run.seed,
        "exp_dir": str(run.exp_dir), "test_sets": list(test_sets), "decode_dir": primary,
        "sizes": {str(size): asdict(m) for size, m in sizes.items()},
        "full_size_rule": {str(size): asdict(m) for size, m in full.items()},
        "pruned": _pruned_entries(pruned),
        "pruned_full_size_rule": _pruned_entries(pruned_full),
        "cost": asdict(training_cost(run)),
        "run_seconds": run_seconds,
    })


def _entries(summary: dict) -> Iterator[dict]:
    """Every decoded configuration of a summary: sizes and pruned depths, under both rules."""
    for key in ("sizes", "full_size_rule"):
        yield from summary.get(key, {}).values()
    for key in ("pruned", "pruned_full_size_rule"):
        for by_strategy in summary.get(key, {}).values():
            yield from by_strategy.values()


def _compact(summary: dict) -> dict:
    """A version-1 summary (every entry's ``utterances``: test set -> id -> [errors, words]) as
    version 2: ``references`` (test set -> sorted ids and their reference words, once per run)
    and each entry's ``errors`` (test set -> word errors in that order). Every decoding of a
    test set in one run must have scored the same utterances against the same references."""
    references: Dict[str, dict] = {}
    for entry in _entries(summary):
        errors = {}
        for test_set, scored in (entry.pop("utterances", None) or {}).items():
            ids = sorted(scored)
            words = [scored[u][1] for u in ids]
            known = references.setdefault(test_set, {"ids": ids, "words": words})
            if known["ids"] != ids or known["words"] != words:
                raise ValueError(f"run {summary['method']} seed {summary['seed']}: its decodings of test set "
                                 f"'{test_set}' scored other utterances or references than each other")
            errors[test_set] = [scored[u][0] for u in ids]
        entry["errors"] = errors
    summary["version"] = SUMMARY_VERSION
    summary["references"] = references
    return summary


def save_summary(summary: dict, runs_dir: Path) -> Path:
    run = Run(summary["method"], summary["role"], summary["seed"], Path(summary["exp_dir"]),
              summary.get("regime", MAIN_REGIME))
    path = summary_path(runs_dir, run)
    runs_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=1, sort_keys=False)
    # a list of numbers on one line (the ids stay one per line)
    text = re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]", lambda m: "[" + re.sub(r"\s+", "", m.group(1)) + "]", text)
    write_text_atomically(path, text + "\n")
    return path


def load_summary(path: Path, run: Run) -> dict:
    """A summary written by :func:`save_summary`, checked against the run it stands for
    (one without a regime, written before regimes existed, is of the main one; one without
    the pre-training fields in its cost loads with none)."""
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"{path}: summary version {summary.get('version')}, expected one of {READABLE_VERSIONS} "
                         "(remove it to summarise the run again from its experiment dir)")
    if summary["version"] == 1:
        summary = _compact(summary)
    regime = summary.get("regime", MAIN_REGIME)
    stands_for = Run(summary["method"], summary["role"], summary["seed"], run.exp_dir, regime)
    if (stands_for.method, stands_for.role, stands_for.seed, regime) != (run.method, run.role, run.seed, run.regime):
        raise ValueError(f"{path}: stands for {summary['method']} ({role_text(stands_for)}) seed {summary['seed']}, "
                         f"not {run.method} ({role_text(run)}) seed {run.seed}")
    return summary


def _check_refreshable(runs: Sequence[Run], runs_dir: Path) -> None:
    """Every run needs both its summary in ``runs_dir`` and its experiment dir."""
    for run in runs:
        if not summary_path(runs_dir, run).is_file():
            raise FileNotFoundError(f"run {run.method} seed {run.seed}: no summary {summary_path(runs_dir, run)} to "
                                    "refresh (summarise the run first: --summarise_only)")
        if not run.exp_dir.is_dir():
            raise FileNotFoundError(f"run {run.method} seed {run.seed}: no experiment dir {run.exp_dir} to read "
                                    "it again from (run in the recipe dir the manifest's paths are relative to)")


def refresh_costs(runs: Sequence[Run], runs_dir: Path) -> List[Path]:
    """Read each run's training cost again from its experiment dir into its summary in
    ``runs_dir`` (e.g. after the cost learned to count a pre-training); everything else in
    the summary is kept. Every run needs both its summary and its experiment dir."""
    _check_refreshable(runs, runs_dir)
    written = []
    for run in runs:
        summary = load_summary(summary_path(runs_dir, run), run)
        summary["cost"] = asdict(training_cost(run))
        written.append(save_summary(summary, runs_dir))
    return written


def refresh_results(runs: Sequence[Run], runs_dir: Path, decode_dir: str = DECODE_DIR) -> List[Path]:
    """Summarise each run again from its experiment dir (its decodings and cost) into its
    summary in ``runs_dir``, keeping the summary's test sets and measured run time: e.g. after
    its checkpoints were averaged again and decoded again, which a run's time should not
    count. Every run needs both its summary and its experiment dir; nothing is written
    unless every run can be summarised."""
    _check_refreshable(runs, runs_dir)
    summaries = []
    for run in runs:
        old = load_summary(summary_path(runs_dir, run), run)
        summaries.append(summarise_run(run, old["test_sets"], decode_dir, old.get("run_seconds")))
    return [save_summary(summary, runs_dir) for summary in summaries]


def _measure(entry: dict, references: Dict[str, dict]) -> Measured:
    """A :class:`Measured` from a version-2 entry and its run's ``references``."""
    fields = {k: v for k, v in entry.items() if k != "errors"}
    fields["utterances"] = {
        test_set: {u: [e, n] for u, e, n in zip(references[test_set]["ids"], errors, references[test_set]["words"])}
        for test_set, errors in entry.get("errors", {}).items()}
    return Measured(**fields)


def _measured(entries: dict, references: Dict[str, dict]) -> Dict[int, Measured]:
    return {int(size): _measure(m, references) for size, m in entries.items()}


def _pruned_entries(pruned: Dict[int, Dict[str, Measured]]) -> dict:
    return {str(depth): {name: asdict(m) for name, m in found.items()} for depth, found in pruned.items()}


def _pruned_measured(entries: dict, references: Dict[str, dict]) -> Dict[int, Dict[str, Measured]]:
    return {int(depth): {name: _measure(m, references) for name, m in found.items()}
            for depth, found in entries.items()}


def collect(runs: Sequence[Run], test_sets: Sequence[str], decode_dir: str = DECODE_DIR,
            runs_dir: Optional[Path] = None, run_seconds: Optional[float] = None) -> Collected:
    """Every run's numbers: from its summary in ``runs_dir`` when there is one, else from its
    experiment dir (and then saved into ``runs_dir``, when given, with ``run_seconds``)."""
    sizes, pruned, costs, full, seconds, pruned_full = {}, {}, {}, {}, {}, {}
    scored: Dict[str, Dict[tuple, List[Run]]] = {}  # test set -> its utterance ids -> the runs that scored them
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
        references = summary["references"]
        for test_set in test_sets:
            if test_set in references:
                scored.setdefault(test_set, {}).setdefault(tuple(references[test_set]["ids"]), []).append(run)
        sizes[run] = _measured(summary["sizes"], references)
        full[run] = _measured(summary["full_size_rule"], references)
        pruned[run] = _pruned_measured(summary["pruned"], references)
        # summaries written before pruned depths had checkpoints of their own have no such entry
        pruned_full[run] = _pruned_measured(summary.get("pruned_full_size_rule", {}), references)
        costs[run] = TrainingCost(**summary["cost"])
        seconds[run] = summary.get("run_seconds")
    _check_same_utterances(scored)
    return Collected(list(runs), sizes, pruned, costs, full, seconds, pruned_full)


def _check_same_utterances(scored: Dict[str, Dict[tuple, List[Run]]]) -> None:
    """Every run must have scored the same utterances of a test set: runs decoded before the
    test set was made again (e.g. with more utterances) cannot be set against runs decoded after."""
    for test_set, groups in scored.items():
        if len(groups) > 1:
            described = "; ".join(
                f"{len(ids)} utterances: " + ", ".join(f"{r.method} seed {r.seed}" for r in found[:4])
                + (f" and {len(found) - 4} more" if len(found) > 4 else "")
                for ids, found in sorted(groups.items(), key=lambda item: -len(item[1])))
            raise ValueError(f"the runs scored different utterances of test set '{test_set}' ({described}): decode "
                             "them again on the same test set (./run_comparison.sh --redecode true)")
