"""What a run's training cost: optimizer updates, wall time and parameters (:class:`TrainingCost`).

Read from the experiment's ``train*.log`` (first epoch started to last epoch finished, summed
over the logs of a resumed run) and its ``checkpoint.pth``; a run fine-tuned from a converted
model counts the experiment it was converted from as its pre-training. Its own module because
the cost is read from the training, not the decodings, and can be read again on its own into
a run's summary (``compare_results --refresh_costs``).
"""
import datetime as dt
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from espnet_dynenc.pretrained.init_spec import INFO_FILE, InitParam
from espnet_dynenc.recipe.comparison.runs import Run

_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),(\d{3}) \(trainer:\d+\) INFO: (.*)")
_BUFFERS = ("running_mean", "running_var", "num_batches_tracked", "num_updates", "subnet_masks")


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
        model = InitParam.parse(str(entry), "init_param").path
        init_yaml = _recipe_path(str(Path(model).parent / INFO_FILE), exp_dir)
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


def between_sizes(sizes: Sequence[int]) -> List[int]:
    """``sizes`` with the midpoint between each pair of neighbours added (8 16 24 -> 8 12 16 20 24):
    the sizes a supernet could offer for the same training, one per block here."""
    ordered = sorted(sizes)
    out = [ordered[0]]
    for low, high in zip(ordered, ordered[1:]):
        if (high - low) % 2 == 0 and high - low > 1:
            out.append((low + high) // 2)
        out.append(high)
    return out


@dataclass
class SizesCost:
    """Wall time per seed of one supernet against every one of ``sizes`` trained alone.

    ``measured``: every size alone was trained (the sum of their wall times); else the
    alone side is computed from a line through the measured (size, seconds per update) points.
    The supernet side is always its measured wall time: its sandwich trains the largest, the
    smallest and one middle size per update however many sizes it offers, and with sizes
    spaced evenly the middle one is on average the same size.
    """

    sizes: List[int]
    updates_supernet: int
    updates_alone: int
    seconds_supernet: float
    seconds_alone: float
    measured: bool

    @property
    def ratio(self) -> float:
        """Wall time of every size alone over the supernet's."""
        return self.seconds_alone / self.seconds_supernet


def _line(points: Sequence[Tuple[float, float]]) -> Tuple[float, float]:
    """Least-squares intercept and slope through ``points`` (x, y), at least two distinct x."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        raise ValueError(f"a line needs two distinct sizes, got {sorted(set(xs))}")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return mean_y - slope * mean_x, slope


def sizes_cost(supernet: Sequence[TrainingCost], alone: Dict[int, Sequence[TrainingCost]]) -> List[SizesCost]:
    """The supernet's training (runs over seeds) against the sizes trained alone (size -> runs
    over seeds): once for the sizes measured, once for :func:`between_sizes` of them, the
    alone side then computed per update from the measured ones. Runs without a wall time or
    updates are left out; empty when too little is known."""
    def timed(runs: Sequence[TrainingCost]) -> List[TrainingCost]:
        return [c for c in runs if c.total_seconds() and c.total_updates()]

    own = timed(supernet)
    per_update = {size: [c.total_seconds() / c.total_updates() for c in timed(runs)] for size, runs in alone.items()}
    per_update = {size: values for size, values in per_update.items() if values}
    if not own or len(per_update) < 2:
        return []
    counted = [c.total_updates() for runs in alone.values() for c in runs if c.total_updates()]
    updates_alone = round(sum(counted) / len(counted))
    seconds_supernet = sum(c.total_seconds() for c in own) / len(own)
    updates_supernet = round(sum(c.total_updates() for c in own) / len(own))
    measured = sorted(per_update)
    mean_per_update = {size: sum(v) / len(v) for size, v in per_update.items()}
    out = [SizesCost(measured, updates_supernet, updates_alone * len(measured), seconds_supernet,
                     sum(mean_per_update[s] * updates_alone for s in measured), True)]
    projected = between_sizes(measured)
    if projected != measured:
        intercept, slope = _line([(s, v) for s, values in per_update.items() for v in values])
        out.append(SizesCost(projected, updates_supernet, updates_alone * len(projected), seconds_supernet,
                             sum((intercept + slope * s) * updates_alone for s in projected), False))
    return out
