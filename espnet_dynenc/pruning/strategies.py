"""Which encoder blocks to remove for a target depth (Lee et al., Interspeech 2021).

"Layer Pruning on Demand with Intermediate CTC" (Lee, Kang, Watanabe, 2021) trains one
encoder so that any set of blocks can be removed at run time. Which set to remove for a
given depth is a separate choice; this module offers four:

``top``
    Remove the last blocks: an early exit, which intermediate CTC trains directly.
``every_other``
    Remove evenly spaced blocks, the LayerDrop paper's advice (Fan, Grave, Joulin, ICLR
    2020, "Reducing Transformer Depth on Demand with Structured Dropout": to prune at
    rate p, drop the layers d with d = 0 mod floor(1/p), d read 1-based). To remove k
    of N blocks, the N blocks are cut into k runs as equal as possible and the last
    block of each run is removed: 0-based blocks ``floor((i + 1) * N / k) - 1`` for
    i = 0..k-1. When k divides N this is exactly LayerDrop's rule; k = 1 removes the
    last block.
``svcca``
    Rank blocks by the SVCCA similarity (Raghu et al., NeurIPS 2017) between each block's
    input and output on dev data and remove the most redundant (most similar) first.
``greedy``
    Remove one block at a time, each time the one whose removal gives the best (lowest)
    dev score together with the blocks already removed. The score is any callable on a
    set of removed blocks, e.g. dev CTC loss or CER (``espnet_dynenc.checkpoint_jobs.dev_scoring``).

Ties (equal similarity or score) go to the later block, the end of the encoder that
intermediate CTC already trains to be cut off; so every choice is deterministic.
``top``, ``svcca`` (ranked once, on the whole encoder) and ``greedy`` are nested: the
blocks removed for a depth include those removed for any larger depth. ``every_other``
is not (12 blocks: depth 9 removes 3, 7, 11; depth 6 removes 1, 3, 5, 7, 9, 11; depth 8
removes 2, 5, 8, 11).
"""
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, List, Sequence, Tuple

Score = Callable[[FrozenSet[int]], float]


def _integer(value, option: str) -> int:
    """``value`` as an int (numpy integers too); anything else names ``option``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{option}: must be an integer, got {value!r}")
    return int(value)


def _num_blocks(value) -> int:
    num_blocks = _integer(value, "num_blocks")
    if num_blocks <= 0:
        raise ValueError(f"num_blocks: must be > 0, got {num_blocks}")
    return num_blocks


def removal_count(num_blocks: int, depth: int) -> int:
    """How many blocks to remove to keep ``depth`` of ``num_blocks``; checks both."""
    num_blocks = _num_blocks(num_blocks)
    depth = _integer(depth, "depth")
    if not 0 <= depth <= num_blocks:
        raise ValueError(f"depth: {depth} is not in 0..{num_blocks} (the encoder has {num_blocks} blocks)")
    return num_blocks - depth


def _check_count(num_blocks: int, num_remove: int) -> Tuple[int, int]:
    # The strategy functions are public, so they check their own arguments too.
    num_blocks = _num_blocks(num_blocks)
    num_remove = _integer(num_remove, "num_remove")
    if not 0 <= num_remove <= num_blocks:
        raise ValueError(f"num_remove: {num_remove} is not in 0..{num_blocks}")
    return num_blocks, num_remove


def top_blocks(num_blocks: int, num_remove: int) -> List[int]:
    """The last ``num_remove`` blocks, in removal order (the last block first)."""
    num_blocks, num_remove = _check_count(num_blocks, num_remove)
    return list(range(num_blocks - 1, num_blocks - 1 - num_remove, -1))


def every_other_blocks(num_blocks: int, num_remove: int) -> List[int]:
    """The last block of each of ``num_remove`` near-equal runs, ascending (see module doc).

    ``floor((i + 1) * N / k)`` grows by at least 1 per step because N / k >= 1, so the k
    blocks are distinct; integer arithmetic keeps it exact for any depth.
    """
    num_blocks, num_remove = _check_count(num_blocks, num_remove)
    return [(i + 1) * num_blocks // num_remove - 1 for i in range(num_remove)]


def svcca_blocks(num_blocks: int, num_remove: int, redundancy: Sequence[float]) -> List[int]:
    """The ``num_remove`` blocks whose input and output are most similar, most similar first.

    Args:
        redundancy: per 0-based block, the SVCCA similarity of its input and output
            (``espnet_dynenc.analysis.svcca.block_redundancy``).
    """
    num_blocks, num_remove = _check_count(num_blocks, num_remove)
    values = [float(v) for v in redundancy]
    if len(values) != num_blocks:
        raise ValueError(f"redundancy: has {len(values)} entries, expected one per block ({num_blocks})")
    for b, value in enumerate(values):
        if not math.isfinite(value):
            raise ValueError(f"redundancy: block {b} has no finite similarity ({value})")
    ranked = sorted(range(num_blocks), key=lambda b: (-values[b], -b))
    return ranked[:num_remove]


def greedy_blocks(num_blocks: int, num_remove: int, score: Score) -> List[int]:
    """Blocks removed one at a time, each the cheapest next removal; in removal order.

    Args:
        score: maps a set of removed blocks to a dev-set cost, lower is better (e.g. CTC
            loss or CER). It is called ``sum(N - j for j < num_remove)`` times; memoise it
            when the same sets come back (several depths share their first removals).
    """
    num_blocks, num_remove = _check_count(num_blocks, num_remove)
    if not callable(score):
        raise ValueError(f"score: must be callable, got {score!r}")
    removed: List[int] = []
    for _ in range(num_remove):
        costs = {}
        for b in range(num_blocks):
            if b in removed:
                continue
            candidate = frozenset(removed + [b])
            cost = float(score(candidate))
            if math.isnan(cost):
                raise ValueError(f"score: returned nan for removed blocks {sorted(candidate)}")
            costs[b] = cost
        removed.append(min(costs, key=lambda b: (costs[b], -b)))
    return removed


@dataclass(frozen=True)
class Strategy:
    """A way to choose blocks: ``choose(num_blocks, num_remove, **needs)`` in removal order."""

    choose: Callable[..., List[int]]
    needs: Tuple[str, ...]


STRATEGIES: Dict[str, Strategy] = {
    "top": Strategy(top_blocks, ()),
    "every_other": Strategy(every_other_blocks, ()),
    "svcca": Strategy(svcca_blocks, ("redundancy",)),
    "greedy": Strategy(greedy_blocks, ("score",)),
}


def blocks_to_remove(strategy: str, num_blocks: int, depth: int, **needs) -> Tuple[int, ...]:
    """The 0-based blocks ``strategy`` removes to keep ``depth`` of ``num_blocks``, ascending.

    Args:
        strategy: a name in ``STRATEGIES``.
        num_blocks: blocks of the trained encoder.
        depth: blocks to keep, 0..num_blocks.
        needs: what the strategy needs (``redundancy`` for svcca, ``score`` for greedy);
            others are ignored, so one call site can serve every strategy.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: '{strategy}' is unknown (choose from {sorted(STRATEGIES)})")
    num_remove = removal_count(num_blocks, depth)
    chosen = STRATEGIES[strategy]
    missing = [name for name in chosen.needs if needs.get(name) is None]
    if missing:
        raise ValueError(f"strategy: '{strategy}' needs {', '.join(missing)}")
    kwargs = {name: needs[name] for name in chosen.needs}
    return tuple(sorted(chosen.choose(num_blocks, num_remove, **kwargs)))
