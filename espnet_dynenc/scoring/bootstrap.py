"""Paired bootstrap confidence intervals for a difference in error rate between two systems.

Bisani & Ney, "Bootstrap estimates for confidence intervals in ASR performance
evaluation", ICASSP 2004: the test set is a sample of utterances, so the error rate of a
system, and the difference between two systems decoded on the same utterances, are
estimates whose spread is found by redrawing the test set. Each replicate draws as many
utterances as the test set has, with replacement, and computes

    diff* = sum_i e_A(i) / sum_i n(i) - sum_i e_B(i) / sum_i n(i)

over the drawn utterances (``e``: errors, ``n``: reference words, the same for both
systems). Drawing the *same* utterances for both systems (paired) removes what the two
share (hard utterances stay hard for both), which makes the interval of the difference
much narrower than the two intervals of the error rates.

Several seeds of a system (models trained with other random seeds) are pooled: each
replicate also draws, for each system independently, as many seeds as it has, with
replacement, and uses the mean of their errors on each drawn utterance. The interval then
covers the spread between training runs as well as the test sample; with one seed per
system it is Bisani & Ney's interval. The point estimate is the difference of the seed
means. When the two systems are the same training runs decoded two ways (seed i of one is
seed i of the other), ``pair_seeds`` draws the same seeds for both.
"""
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

CONFIDENCE = 0.95
REPLICATES = 2000


@dataclass(frozen=True)
class UtteranceErrors:
    """One system's errors on a test set: ``errors[s][i]`` for seed ``s`` and utterance ``i``
    of ``utterances`` (ids), with ``words[i]`` reference words (or characters)."""

    utterances: tuple
    words: np.ndarray  # (utterances,)
    errors: np.ndarray  # (seeds, utterances)

    @classmethod
    def from_seeds(cls, per_seed: Sequence[Mapping[str, tuple]]) -> "UtteranceErrors":
        """From one ``{utterance id: (errors, reference words)}`` per seed; every seed must
        score the same utterances with the same reference lengths."""
        if not per_seed:
            raise ValueError("bootstrap: no seed given")
        ids = tuple(sorted(per_seed[0]))
        for index, scored in enumerate(per_seed[1:], 1):
            if set(scored) != set(ids):
                missing = sorted(set(ids) ^ set(scored))[:3]
                raise ValueError(f"bootstrap: seed {index} scored other utterances than seed 0 (e.g. {missing})")
        words = np.array([per_seed[0][u][1] for u in ids], dtype=np.float64)
        for index, scored in enumerate(per_seed[1:], 1):
            other = np.array([scored[u][1] for u in ids], dtype=np.float64)
            if not np.array_equal(other, words):
                raise ValueError(f"bootstrap: seed {index} has other reference lengths than seed 0 (other references?)")
        errors = np.array([[scored[u][0] for u in ids] for scored in per_seed], dtype=np.float64)
        return cls(ids, words, errors)

    @property
    def rate(self) -> float:
        """Error rate in percent, the mean over seeds."""
        return 100.0 * float(self.errors.mean(axis=0).sum() / self.words.sum())


@dataclass(frozen=True)
class Interval:
    """A difference in error rate (percentage points, A minus B) and its confidence interval."""

    difference: float
    low: float
    high: float
    confidence: float
    utterances: int
    seeds_a: int
    seeds_b: int

    def sign(self) -> str:
        """``below`` (A better) or ``above`` (A worse) when the interval excludes 0, else ``includes 0``."""
        if self.high < 0:
            return "below"
        if self.low > 0:
            return "above"
        return "includes 0"

    def __str__(self) -> str:
        return f"{self.difference:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def paired_bootstrap(a: UtteranceErrors, b: UtteranceErrors, replicates: int = REPLICATES,
                     confidence: float = CONFIDENCE, seed: int = 0, pair_seeds: bool = False) -> Interval:
    """The difference ``rate(a) - rate(b)`` with its percentile interval (see the module doc).

    ``a`` and ``b`` must cover the same utterances with the same reference lengths; the
    random draws come from ``seed``, so the same inputs give the same interval. With
    ``pair_seeds``, seed i of ``a`` and of ``b`` are one training run (both need as many).
    """
    if a.utterances != b.utterances:
        only = sorted(set(a.utterances) ^ set(b.utterances))[:3]
        raise ValueError(f"bootstrap: the systems were scored on other utterances (e.g. {only})")
    if not np.array_equal(a.words, b.words):
        raise ValueError("bootstrap: the systems have other reference lengths (other references?)")
    if replicates < 1:
        raise ValueError(f"bootstrap: replicates must be at least 1, got {replicates}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap: confidence must be in (0, 1), got {confidence}")
    if pair_seeds and a.errors.shape[0] != b.errors.shape[0]:
        raise ValueError(f"bootstrap: pair_seeds needs as many seeds on both sides, got {a.errors.shape[0]} "
                         f"and {b.errors.shape[0]}")
    count = len(a.utterances)
    if count == 0 or a.words.sum() == 0:
        raise ValueError("bootstrap: no reference words to score")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, count, size=(replicates, count))
    words = a.words[draws].sum(axis=1)

    def seed_draws(system: UtteranceErrors):
        seeds = system.errors.shape[0]
        return rng.integers(0, seeds, size=(replicates, seeds)) if seeds > 1 else None

    def replicate_errors(system: UtteranceErrors, picked) -> np.ndarray:
        if picked is None:
            return system.errors[0][draws].sum(axis=1)
        # mean over the drawn seeds of each replicate, per utterance, then summed over the drawn utterances
        out = np.empty(replicates)
        for r in range(replicates):
            out[r] = system.errors[picked[r]].mean(axis=0)[draws[r]].sum()
        return out

    picked_a = seed_draws(a)
    picked_b = picked_a if pair_seeds else seed_draws(b)
    diffs = 100.0 * (replicate_errors(a, picked_a) - replicate_errors(b, picked_b)) / words
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [tail, 1.0 - tail])
    return Interval(a.rate - b.rate, float(low), float(high), confidence, count,
                    a.errors.shape[0], b.errors.shape[0])
