"""What one decoding pass decodes: subnet sizes, and a pruned subnet's strategies and depths.

A target is one encoder configuration with its output folder. The greedy decoder runs
every target on each batch, so their real-time factors are measured side by side.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from espnet_dynenc.decode.outputs import DecodeOutput
from espnet_dynenc.pruning.plan import PruningPlan


@dataclass(frozen=True)
class DecodeTarget:
    """One encoder configuration to decode: a subnet size with some blocks removed, and the
    output it is written to."""

    output: DecodeOutput
    size: int
    skip_blocks: Tuple[int, ...]

    @property
    def out_dir(self) -> str:
        """The output's folder, relative to the decoder's output directory."""
        return self.output.relative_dir

    @property
    def labels(self) -> Tuple[Tuple[str, object], ...]:
        """Extra decode_stats entries (a pruned output's strategy and depth)."""
        return self.output.labels


def parse_sizes(text: str, model) -> List[int]:
    """``"16 32"`` or ``"16,32"`` -> [16, 32]; empty -> every size; unknown size -> ValueError."""
    if not text.strip():
        return list(model.subnet_sizes)
    try:
        sizes = [int(tok) for tok in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"--subnets: '{text}' is not a list of integers") from None
    for size in sizes:
        if size not in model.subnet_sizes:
            raise ValueError(f"--subnets: {size} is not one of this model's sizes {model.subnet_sizes}")
    return sizes


def size_targets(sizes: Sequence[int], skip_blocks: Sequence[int]) -> List[DecodeTarget]:
    return [DecodeTarget(DecodeOutput.whole(size), size, tuple(skip_blocks)) for size in sizes]


def pruning_targets(plan_file: str, model) -> List[DecodeTarget]:
    """``pruned/<strategy>/<depth>`` targets of a prune_on_demand plan; a plan for another model is an error."""
    plan = PruningPlan.load(plan_file, model)
    return [DecodeTarget(DecodeOutput.pruned(strategy, depth), plan.subnet, removed)
            for strategy, depth, removed in plan.removal_sets()]
