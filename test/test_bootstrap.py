"""Paired bootstrap intervals of a WER difference (espnet_dynenc.scoring.bootstrap)."""
import numpy as np
import pytest

from espnet_dynenc.scoring.bootstrap import UtteranceErrors, paired_bootstrap


def system(errors_per_seed, words):
    ids = [f"u{i:04d}" for i in range(len(words))]
    return UtteranceErrors.from_seeds([{u: (e, w) for u, e, w in zip(ids, errors, words)}
                                       for errors in errors_per_seed])


def random_errors(rng, count, rate=0.1, words=8):
    return rng.binomial(words, rate, size=count).tolist()


def test_identical_systems_give_an_interval_around_zero():
    rng = np.random.default_rng(1)
    words = [8] * 500
    errors = random_errors(rng, 500)
    found = paired_bootstrap(system([errors], words), system([errors], words))
    assert found.difference == 0.0 and found.low == 0.0 and found.high == 0.0 and found.sign() == "includes 0"
    # two seeds each, the same two: the interval still straddles 0, and it is not empty
    other = random_errors(rng, 500)
    found = paired_bootstrap(system([errors, other], words), system([errors, other], words))
    assert found.low < 0.0 < found.high and found.difference == 0.0 and found.sign() == "includes 0"


def test_a_system_better_on_every_utterance_gives_an_interval_below_zero():
    rng = np.random.default_rng(2)
    words = [10] * 300
    worse = [e + 1 for e in random_errors(rng, 300)]
    better = [e - 1 for e in worse]
    found = paired_bootstrap(system([better], words), system([worse], words))
    # one error fewer per 10 words on every utterance: exactly -10 points, whatever the draw
    assert found.difference == pytest.approx(-10.0)
    assert found.low == pytest.approx(-10.0) and found.high == pytest.approx(-10.0) and found.sign() == "below"
    flipped = paired_bootstrap(system([worse], words), system([better], words))
    assert flipped.sign() == "above" and flipped.low > 0


def test_the_difference_is_the_difference_of_seed_means_and_the_draws_are_repeatable():
    words = [4, 6, 10]
    a = system([[1, 0, 2], [1, 2, 0]], words)  # 3 and 3 errors of 20 words: 15%
    b = system([[0, 0, 1]], words)  # 1 of 20: 5%
    assert a.rate == pytest.approx(15.0) and b.rate == pytest.approx(5.0)
    found = paired_bootstrap(a, b, replicates=500, seed=3)
    assert found.difference == pytest.approx(10.0)
    assert (found.seeds_a, found.seeds_b, found.utterances) == (2, 1, 3)
    assert found == paired_bootstrap(a, b, replicates=500, seed=3)
    assert str(found).startswith("+10.00 [")


def test_a_real_difference_is_resolved_only_with_enough_utterances():
    rng = np.random.default_rng(4)

    def pair(count):
        words = [8] * count
        return (system([random_errors(rng, count, 0.10)], words), system([random_errors(rng, count, 0.13)], words))

    small = paired_bootstrap(*pair(40))
    large = paired_bootstrap(*pair(3000))
    assert small.high - small.low > 2 * (large.high - large.low)
    assert large.sign() == "below"


def test_mismatched_inputs_are_refused_by_name():
    a = system([[1, 0]], [3, 4])
    with pytest.raises(ValueError, match="other utterances"):
        paired_bootstrap(a, UtteranceErrors.from_seeds([{"x": (0, 3), "u0001": (0, 4)}]))
    with pytest.raises(ValueError, match="other reference lengths"):
        paired_bootstrap(a, system([[1, 0]], [3, 5]))
    with pytest.raises(ValueError, match="seed 1 scored other utterances"):
        UtteranceErrors.from_seeds([{"a": (0, 1)}, {"b": (0, 1)}])
    with pytest.raises(ValueError, match="replicates must be at least 1, got 0"):
        paired_bootstrap(a, a, replicates=0)
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\), got 1.5"):
        paired_bootstrap(a, a, confidence=1.5)


def test_the_same_runs_decoded_two_ways_pair_their_seeds():
    rng = np.random.default_rng(5)
    words = [8] * 400
    seeds = [random_errors(rng, 400, 0.05), random_errors(rng, 400, 0.20)]  # two very different runs
    same = system(seeds, words)
    # unpaired, the seed redraws of the two sides disagree and widen the interval around 0
    loose = paired_bootstrap(same, same)
    assert loose.low < -1.0 and loose.high > 1.0
    # paired, identical decodings differ by exactly 0 in every replicate
    tight = paired_bootstrap(same, same, pair_seeds=True)
    assert (tight.difference, tight.low, tight.high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="pair_seeds needs as many seeds on both sides, got 2 and 1"):
        paired_bootstrap(same, system([seeds[0]], words), pair_seeds=True)
