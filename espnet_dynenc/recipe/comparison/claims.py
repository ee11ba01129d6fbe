"""Every run's numbers together (:class:`Collected`) and what they support: the claims, each with
its paired-bootstrap interval and a verdict.

A claim sets one group of results against another (a supernet size against that size trained
alone, a pruned depth, DMAO against its uniform model, a size alone against the next smaller
one), always within one training regime, so a longer schedule never borrows the shorter one's
baseline. The intervals are bootstrapped once per test set and shared by the tables and the
plot, which is why the collected numbers and the claims live in one module.
"""
from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_dynenc.recipe.comparison.cost import TrainingCost
from espnet_dynenc.recipe.comparison.decodings import Measured
from espnet_dynenc.recipe.comparison.runs import MAIN_REGIME, Run, regime_suffix
from espnet_dynenc.scoring.bootstrap import Interval, UtteranceErrors, paired_bootstrap

@dataclass
class Collected:
    runs: List[Run]
    sizes: Dict[Run, Dict[int, Measured]]
    pruned: Dict[Run, Dict[int, Dict[str, Measured]]]
    costs: Dict[Run, TrainingCost]
    # supernet sizes decoded from the full size's checkpoint too, when they have their own
    full_size_rule: Dict[Run, Dict[int, Measured]] = field(default_factory=dict)
    run_seconds: Dict[Run, Optional[float]] = field(default_factory=dict)  # training + decoding + scoring
    # pruned depths decoded from the full depth's checkpoint too, when they have their own
    pruned_full_size_rule: Dict[Run, Dict[int, Dict[str, Measured]]] = field(default_factory=dict)
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
