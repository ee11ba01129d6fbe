"""Where decoding results live: the layout of a decoding directory, in one place.

The decoders write one folder per output below the directory of a data set, and every
later program (the job merger, the LM weight tuning, the results and pruning tables, the
comparison, the deployment chooser, asr.sh through ``bin/decode_outputs``) reads them
through this module instead of rebuilding paths::

    <decode dir>/                          decode_<tag>, named by decode_dir_name()
        pruning/pruning_plan.yaml          the plan of the pruned outputs, when pruning ran
        pruning/dev_scores.tsv             the dev scores the plan was chosen by
        <data set>/
            <size>/                        a subnet size (the plan's subnet too: its reference)
            pruned/<strategy>/<depth>/     that subnet with blocks removed at run time

An output is finished once its ``decode_stats.yaml`` exists: the decoders write it last
(see ``decode/writer.py``). This module imports neither torch nor ESPnet, so the recipe
driver's question costs a fraction of a second.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

LINE_FILES = ("text", "token", "token_int", "score")  # one line per utterance each, ESPnet's names
STATS_FILE = "decode_stats.yaml"
PRUNED = "pruned"
PRUNING_DIR = "pruning"  # where stage 12 has prune_on_demand write, in a decoding directory
PLAN_FILE = Path(PRUNING_DIR) / "pruning_plan.yaml"
DEV_SCORES_FILE = Path(PRUNING_DIR) / "dev_scores.tsv"
PER_SIZE = "_per_size"  # a decoding whose sizes come from their own checkpoints
_STRATEGY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class DecodeOutput:
    """One decoded output: a whole subnet ``size``, or the pruned subnet of a plan with
    ``strategy`` and ``depth`` (blocks kept). Exactly one of the two forms is given."""

    size: Optional[int] = None
    strategy: Optional[str] = None
    depth: Optional[int] = None

    def __post_init__(self) -> None:
        if self.size is not None:
            if self.strategy is not None or self.depth is not None:
                raise ValueError(f"a decoding output is a size or a pruned strategy and depth, not both: {self}")
            if self.size < 1:
                raise ValueError(f"a decoded size must be at least 1, got {self.size}")
        elif self.strategy is None or self.depth is None:
            raise ValueError(f"a pruned decoding output needs a strategy and a depth, got {self}")
        elif not _STRATEGY.match(self.strategy) or self.depth < 0:
            raise ValueError(f"a pruned output needs a strategy name and a depth >= 0, got '{self.strategy}', "
                             f"{self.depth}")

    @classmethod
    def whole(cls, size: int) -> "DecodeOutput":
        return cls(size=int(size))

    @classmethod
    def pruned(cls, strategy: str, depth: int) -> "DecodeOutput":
        return cls(strategy=strategy, depth=int(depth))

    @property
    def is_pruned(self) -> bool:
        return self.size is None

    @property
    def relative_dir(self) -> str:
        """``16`` or ``pruned/top/4``: the folder below a data set's decoding directory."""
        if self.is_pruned:
            return f"{PRUNED}/{self.strategy}/{self.depth}"
        return str(self.size)

    @property
    def labels(self) -> Tuple[Tuple[str, object], ...]:
        """What ``decode_stats.yaml`` records of a pruned output (its strategy and depth)."""
        return (("strategy", self.strategy), ("depth", self.depth)) if self.is_pruned else ()

    def sort_key(self) -> Tuple[int, int, str, int]:
        """Sizes by number first, then pruned outputs by strategy and depth."""
        if self.is_pruned:
            return 1, 0, self.strategy, self.depth
        return 0, self.size, "", 0

    @classmethod
    def parse(cls, relative_dir: str) -> "DecodeOutput":
        """The output of ``relative_dir`` (``16``, ``pruned/top/4``); anything else is refused by name."""
        parts = Path(relative_dir).parts
        if len(parts) == 1 and parts[0].isdigit():
            return cls.whole(int(parts[0]))
        if len(parts) == 3 and parts[0] == PRUNED and _STRATEGY.match(parts[1]) and parts[2].isdigit():
            return cls.pruned(parts[1], int(parts[2]))
        raise ValueError(f"'{relative_dir}' is not a decoding output: expected <size> or "
                         f"{PRUNED}/<strategy>/<depth> (e.g. 16 or {PRUNED}/top/4)")

    def folder(self, set_dir: Path) -> Path:
        """This output's folder in the decoding directory of one data set."""
        return Path(set_dir) / self.relative_dir

    def is_finished(self, set_dir: Path) -> bool:
        return (self.folder(set_dir) / STATS_FILE).is_file()


def sort_outputs(outputs: Iterable[DecodeOutput]) -> List[DecodeOutput]:
    return sorted(outputs, key=DecodeOutput.sort_key)


def finished_outputs(set_dir: Path) -> List[DecodeOutput]:
    """Every finished output in the decoding directory of one data set, sizes first.

    Only the layout's own folders count (``logdir/``, score folders and the like are not
    outputs); a folder under ``pruned/`` that is not ``<strategy>/<depth>`` is refused by name.
    A missing directory is an error naming it."""
    set_dir = Path(set_dir)
    if not set_dir.is_dir():
        raise FileNotFoundError(f"{set_dir}: no such decoding directory")
    found = [DecodeOutput.whole(int(child.name)) for child in set_dir.iterdir()
             if child.name.isdigit() and (child / STATS_FILE).is_file()]
    for stats in (set_dir / PRUNED).glob(f"*/*/{STATS_FILE}"):
        relative = stats.parent.relative_to(set_dir).as_posix()
        try:
            found.append(DecodeOutput.parse(relative))
        except ValueError as err:
            raise ValueError(f"{set_dir}: {err}") from None
    return sort_outputs(found)


def finished_sizes(set_dirs: Iterable[Path]) -> List[int]:
    """Every whole size finished in any of ``set_dirs`` (those that exist), ascending."""
    sizes = set()
    for set_dir in set_dirs:
        if Path(set_dir).is_dir():
            sizes |= {output.size for output in finished_outputs(set_dir) if not output.is_pruned}
    return sorted(sizes)


@dataclass(frozen=True)
class OutputRequest:
    """The outputs a caller asks for (asr.sh's ``--subnets``, ``--prune_depths``, ``--prune_strategies``).

    ``sizes``: those sizes (empty: every size); ``depths``: pruned outputs of those depths
    (None: every pruned output, empty: none); ``strategies``: of those strategies (None: every one)."""

    sizes: Tuple[int, ...] = ()
    depths: Optional[Tuple[int, ...]] = None
    strategies: Optional[Tuple[str, ...]] = None

    def wants(self, output: DecodeOutput) -> bool:
        if not output.is_pruned:
            return not self.sizes or output.size in self.sizes
        if self.depths is not None and output.depth not in self.depths:
            return False
        return self.strategies is None or output.strategy in self.strategies

    def named(self) -> List[DecodeOutput]:
        """The outputs it names one by one: each size, each strategy at each depth."""
        named = [DecodeOutput.whole(size) for size in self.sizes]
        if self.depths and self.strategies:
            named += [DecodeOutput.pruned(s, d) for s in self.strategies for d in self.depths]
        return sort_outputs(named)

    def chosen(self, outputs: Sequence[DecodeOutput]) -> List[DecodeOutput]:
        return [output for output in outputs if self.wants(output)]

    def missing(self, outputs: Sequence[DecodeOutput]) -> List[DecodeOutput]:
        """The named outputs that ``outputs`` lacks."""
        have = set(outputs)
        return [output for output in self.named() if output not in have]


def pruning_plan_file(decode_dir: Path) -> Path:
    """Where stage 12 keeps the pruning plan of a decoding directory."""
    return Path(decode_dir) / PLAN_FILE


def dev_scores_file(decode_dir: Path) -> Path:
    """The dev scores of every strategy and depth, beside the pruning plan."""
    return Path(decode_dir) / DEV_SCORES_FILE


def _without_extension(path: str) -> str:
    """asr.sh's ``sed -e 's/\\//_/g' -e 's/\\.[^.]*$//'``: slashes to ``_``, the last extension off."""
    return re.sub(r"\.[^.]*$", "", path.replace("/", "_"))


def decode_dir_name(model: str = "valid.cer_ctc.ave.pth", decoding: str = "greedy", inference_config: str = "",
                    inference_args: str = "", lm_exp: str = "", inference_lm: str = "",
                    lm_weight_tuned: bool = False, per_size: bool = False, inference_tag: str = "") -> str:
    """The name of asr.sh's decoding directory (``decode_<tag>`` in the experiment directory).

    With ``inference_tag`` that is the tag; otherwise (ESPnet's convention) ``ctc_<decoding>``
    or the decoding config's name without ``decode_``, the decoding options squeezed into the
    name, ``_lm_<LM dir>_<LM checkpoint>`` with an LM (``_lm_weight_tuned`` when the weights are
    tuned), ``_asr_model_<checkpoint>``, and ``_per_size`` when sizes (or pruned depths) come
    from their own checkpoints. The default is the greedy decoding of ``valid.cer_ctc.ave.pth``."""
    if inference_tag:
        return f"decode_{inference_tag}"
    tag = f"ctc_{decoding}"
    if inference_config:
        name = Path(inference_config).name
        name = name[:-len(".yaml")] if name.endswith(".yaml") and name != ".yaml" else name
        tag = re.sub(r"^decode_", "", name)
    if inference_args:
        tag += re.sub(r"[ |=/]", "", inference_args.replace("--", "_"))
    if lm_exp:
        tag += f"_lm_{Path(lm_exp).name}_{_without_extension(inference_lm)}"
        if lm_weight_tuned:
            tag += "_lm_weight_tuned"
    tag += f"_asr_model_{_without_extension(model)}"
    return f"decode_{tag}{PER_SIZE if per_size else ''}"


def per_size_name(name: str) -> str:
    """The decoding beside ``name`` whose sizes come from their own checkpoints."""
    return name + PER_SIZE
