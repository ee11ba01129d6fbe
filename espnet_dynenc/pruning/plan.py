"""``pruning_plan.yaml``: which blocks layer pruning on demand removes, per strategy and depth.

One type for every program that touches the file, so its layout and its checks live in
one place: ``prune_on_demand`` makes and saves it, the greedy decoder, the results table
and the exporters load it, and ``python -m espnet_dynenc.bin.pruning_plan`` prints a field
so that shell scripts need not parse YAML.

The file is plain YAML (keys in this order)::

    asr_train_config, asr_model_file     the model the plan was made for
    subnet, num_blocks                    the pruned subnet size and the encoder's blocks
    dev_utterances, greedy_metric         what chose the blocks
    full_model: {ctc_loss, cer}           dev scores without removal
    skip_blocks: {strategy: {depth: [0-based blocks removed]}}
    svcca_redundancy, greedy_removal_order    only when those strategies ran

This module imports neither torch nor ESPnet, so the driver's question costs a fraction
of a second.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import yaml

from espnet_dynenc.atomic_files import write_text_atomically

PathLike = Union[str, Path]
REQUIRED_KEYS = ("subnet", "num_blocks", "skip_blocks")
# fields the recipe driver may ask for: one scalar value each
SCALAR_FIELDS = ("subnet", "num_blocks", "dev_utterances", "greedy_metric", "asr_train_config", "asr_model_file")


@dataclass
class PruningPlan:
    """Blocks to remove for every strategy and depth of one subnet of one model.

    ``skip_blocks[strategy][depth]`` is the sorted tuple of 0-based blocks removed so that
    ``depth`` blocks remain. ``source`` is the file it was loaded from (for messages).
    """

    subnet: int
    num_blocks: int
    skip_blocks: Dict[str, Dict[int, Tuple[int, ...]]]
    asr_train_config: Optional[str] = None
    asr_model_file: Optional[str] = None
    dev_utterances: Optional[int] = None
    greedy_metric: Optional[str] = None
    full_model: Optional[Dict[str, float]] = None
    svcca_redundancy: Optional[List[float]] = None
    greedy_removal_order: Optional[List[int]] = None
    source: Optional[str] = field(default=None, compare=False)

    # ------------------------------------------------------------------ contents
    def removal_sets(self) -> Iterator[Tuple[str, int, Tuple[int, ...]]]:
        """(strategy, depth, removed blocks) in the file's order."""
        for strategy, by_depth in self.skip_blocks.items():
            for depth, removed in by_depth.items():
                yield strategy, depth, removed

    def removed(self, strategy: str, depth: int) -> Tuple[int, ...]:
        """The blocks removed for ``strategy`` at ``depth``; an absent one names the options."""
        where = f" in {self.source}" if self.source else ""
        if strategy not in self.skip_blocks:
            raise ValueError(f"--strategy: '{strategy}' is not planned{where} (it has {sorted(self.skip_blocks)})")
        by_depth = self.skip_blocks[strategy]
        if depth not in by_depth:
            raise ValueError(f"--depth: {depth} is not planned for strategy '{strategy}'{where} "
                             f"(it has depths {sorted(by_depth, reverse=True)})")
        return by_depth[depth]

    def field_value(self, name: str) -> object:
        """A scalar field by name (what ``bin/pruning_plan --field`` prints)."""
        if name not in SCALAR_FIELDS:
            raise ValueError(f"--field: '{name}' is not one of {list(SCALAR_FIELDS)}")
        return getattr(self, name)

    def check_model(self, model) -> None:
        """Refuse a plan made for another model: block count and subnet size must match."""
        if self.num_blocks != model.encoder.num_blocks or self.subnet not in model.subnet_sizes:
            raise ValueError(f"--pruning_plan {self.source}: made for subnet {self.subnet} of a "
                             f"{self.num_blocks}-block encoder; this model has {model.encoder.num_blocks} blocks "
                             f"and sizes {model.subnet_sizes}")

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        """The YAML document, keys in the file's order; optional entries only when set."""
        document = {
            "asr_train_config": self.asr_train_config,
            "asr_model_file": self.asr_model_file,
            "subnet": self.subnet,
            "num_blocks": self.num_blocks,
            "dev_utterances": self.dev_utterances,
            "greedy_metric": self.greedy_metric,
            "full_model": self.full_model,
            "skip_blocks": {strategy: {depth: list(removed) for depth, removed in by_depth.items()}
                            for strategy, by_depth in self.skip_blocks.items()},
        }
        if self.svcca_redundancy is not None:
            document["svcca_redundancy"] = list(self.svcca_redundancy)
        if self.greedy_removal_order is not None:
            document["greedy_removal_order"] = list(self.greedy_removal_order)
        return document

    def save(self, path: PathLike) -> None:
        """Write the plan whole or not at all (readers run in later recipe stages)."""
        write_text_atomically(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, document: dict, source: Optional[str] = None) -> "PruningPlan":
        """A plan from its YAML document; a missing entry names the file and the key."""
        document = document if isinstance(document, dict) else {}
        for key in REQUIRED_KEYS:
            if key not in document:
                raise ValueError(f"--pruning_plan {source}: no '{key}' (is it prune_on_demand's pruning_plan.yaml?)")
        skip_blocks = {str(strategy): {int(depth): tuple(int(b) for b in removed)
                                       for depth, removed in (by_depth or {}).items()}
                       for strategy, by_depth in (document["skip_blocks"] or {}).items()}
        return cls(
            subnet=int(document["subnet"]),
            num_blocks=int(document["num_blocks"]),
            skip_blocks=skip_blocks,
            asr_train_config=document.get("asr_train_config"),
            asr_model_file=document.get("asr_model_file"),
            dev_utterances=document.get("dev_utterances"),
            greedy_metric=document.get("greedy_metric"),
            full_model=document.get("full_model"),
            svcca_redundancy=document.get("svcca_redundancy"),
            greedy_removal_order=document.get("greedy_removal_order"),
            source=source,
        )

    @classmethod
    def load(cls, path: PathLike, model=None) -> "PruningPlan":
        """Read ``path``; with ``model`` (a ``supernet_ctc``), also check it was made for it."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"--pruning_plan: no such file: {path}")
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ValueError(f"--pruning_plan {path}: not a YAML file ({err})") from None
        plan = cls.from_dict(document, str(path))
        if model is not None:
            plan.check_model(model)
        return plan

