"""ESPnet's trainer with each n-best checkpoint average made from unaltered epochs, and the
same averaging for experiments trained before.

ESPnet 202511's ``espnet2.main_funcs.average_nbest_models`` loads each epoch's state dict
once for all the ``best_model_criterion`` entries, starts an average from that cached dict
itself (``avg = states``) and adds and divides in place. A criterion whose best epochs
include the first epoch of an earlier criterion then averages the earlier average instead
of that epoch: in a supernet with one criterion per size, the larger sizes' and the full
size's ``valid.<criterion>.ave_<n>best.pth`` are wrong (measured on the embedded recipe:
off by up to 0.02 per weight, 0.4-0.5 WER points worse than the true average), while a model
with one criterion is right.

:func:`average_each_criterion` calls ESPnet's own ``average_nbest_models`` once per
criterion: each call has a fresh cache, so each average is ESPnet's averaging of the
epochs themselves. It averages in a scratch folder inside the experiment dir (links to the
epoch files), says how far each new average is from the file it replaces, and then moves
the new files into place, so an interrupted call leaves each file either the old one or the
new one. :class:`AveragingTrainer` (the task's trainer) calls it at the end of a training,
on the process that writes the checkpoints: the averages are thus made twice (ESPnet's, then
these). ``python -m espnet_dynenc.bin.average_checkpoints --exp_dir DIR`` does it for an
experiment trained before (then decode again: asr.sh redoes every decoding whose checkpoint
changed). ESPnet refuses ``--use_deepspeed`` with a trainer other than its own, so DeepSpeed
training is not offered.
"""
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
from espnet2.train.trainer import Trainer

CHECKPOINT = "checkpoint.pth"  # ESPnet's resumable state, with the reporter's statistics


@dataclass(frozen=True)
class Average:
    """One ``<phase>.<criterion>.ave_<n>best.pth`` made again, against the file it replaces."""
    file: str
    epochs: Tuple[int, ...]
    change: Optional[float]  # largest |new - old| over the floating-point tensors; None: no file before
    others: int = 0  # other entries that differ (counters ESPnet sums, mask records, names, shapes)

    @property
    def changed(self) -> bool:
        return self.change is None or self.change > 0 or self.others > 0

    def describe(self) -> str:
        if self.change is None:
            what = "new"
        elif not self.changed:
            what = "unchanged"
        else:
            what = f"changed, largest difference {self.change:.3g}"
            if self.others:
                what += f" (and {self.others} other entries)"
        return f"{self.file} (epochs {' '.join(map(str, self.epochs))}): {what}"


def _nbests(nbest: Union[int, Sequence[int]]) -> List[int]:
    return [nbest] if isinstance(nbest, int) else list(nbest) or [1]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _difference(new: dict, old_file: Path, epoch: dict) -> Tuple[Optional[float], int]:
    """The largest |new - old| over the entries that are floating-point tensors in the epochs
    (``epoch`` is one of them), and how many other entries differ (in value, or missing from
    one of the two, or in shape): e.g. ESPnet averages a bool mask buffer into a float one,
    whose values say nothing about the weights. (None, 0) without an old file."""
    if not old_file.is_file():
        return None, 0
    old = _load(old_file)
    largest, others = 0.0, len(set(old) ^ set(new))
    for key in set(old) & set(new):
        a, b = new[key], old[key]
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
            floating = isinstance(epoch.get(key), torch.Tensor) and epoch[key].is_floating_point()
            if floating and a.is_floating_point() and b.is_floating_point():
                if a.numel():
                    largest = max(largest, float((a.double() - b.double()).abs().max()))
                continue
            others += int(not torch.equal(a, b))
        elif isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
            others += 1
        else:
            others += int(a != b)
    return largest, others


def average_each_criterion(output_dir: Path, best_model_criterion: Sequence[Sequence[str]],
                           nbest: Union[int, Sequence[int]], check_only: bool = False) -> List[Average]:
    """Make each criterion's n-best averages again, one criterion per call of ESPnet's
    ``average_nbest_models``, from the epochs that ``checkpoint.pth``'s reporter ranks best.

    Args:
        output_dir: the experiment dir (``<epoch>epoch.pth``, ``checkpoint.pth``).
        best_model_criterion: ``[[phase, criterion, min|max], ...]`` as in the training config.
        nbest: ``keep_nbest_models``.
        check_only: say how far each new average is from the saved one; write nothing.
    Returns:
        Every average of more than one epoch, with its change; empty with fewer than two
        criteria, where ESPnet's averages are right.
    Raises:
        FileNotFoundError: no ``checkpoint.pth``, or an epoch an average needs is gone.
    """
    from espnet2.main_funcs.average_nbest_models import average_nbest_models
    from espnet2.train.reporter import Reporter

    output_dir = Path(output_dir)
    if len(best_model_criterion) < 2:
        return []
    checkpoint = output_dir / CHECKPOINT
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such file (the reporter's statistics, which rank the epochs, "
                                "are kept there by ESPnet's trainer)")
    state = _load(checkpoint)
    if not isinstance(state, dict) or "reporter" not in state:
        raise KeyError(f"{checkpoint}: no 'reporter' entry (ESPnet's trainer saves the statistics that rank the "
                       "epochs there)")
    reporter = Reporter()
    reporter.load_state_dict(state["reporter"])
    nbests = _nbests(nbest)
    wanted = []  # (file name, epochs) of every average of n >= 2 epochs, as ESPnet names them
    for phase, criterion, mode in best_model_criterion:
        if not reporter.has(phase, criterion):
            continue
        ranked = [epoch for epoch, _ in reporter.sort_epochs_and_values(phase, criterion, mode)[:max(nbests)]]
        for n in [n for n in nbests if 2 <= n <= len(ranked)]:
            wanted.append((f"{phase}.{criterion}.ave_{n}best.pth", tuple(ranked[:n])))
            for epoch in ranked[:n]:
                if not (output_dir / f"{epoch}epoch.pth").is_file():
                    raise FileNotFoundError(
                        f"{output_dir / f'{epoch}epoch.pth'}: no such file, needed for {phase}.{criterion}'s "
                        f"{n} best epochs {list(ranked[:n])}: nothing was averaged again")
    scratch = Path(tempfile.mkdtemp(prefix=".averaging.", dir=output_dir))
    try:
        for epoch in {epoch for _, epochs in wanted for epoch in epochs}:
            os.symlink(os.path.abspath(output_dir / f"{epoch}epoch.pth"), scratch / f"{epoch}epoch.pth")
        for criterion in best_model_criterion:
            average_nbest_models(output_dir=scratch, reporter=reporter, best_model_criterion=[criterion], nbest=nbest)
        # one epoch of each average says which entries are floating point (loaded once each)
        reference = {epochs[0]: _load(output_dir / f"{epochs[0]}epoch.pth") for _, epochs in wanted}
        made = [Average(name, epochs, *_difference(_load(scratch / name), output_dir / name, reference[epochs[0]]))
                for name, epochs in wanted]
        if not check_only:
            for entry in sorted(scratch.iterdir()):
                if not entry.name.endswith("epoch.pth"):  # the averages and ESPnet's links to them
                    os.replace(entry, output_dir / entry.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return made


def average_experiment(exp_dir: Path, check_only: bool = False) -> List[Average]:
    """:func:`average_each_criterion` with the ``best_model_criterion`` and ``keep_nbest_models``
    of the experiment's ``config.yaml`` (a training's options as ESPnet saves them)."""
    import yaml

    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"{exp_dir}: no such experiment dir")
    config_file = exp_dir / "config.yaml"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: no such file (the training config ESPnet writes into the "
                                "experiment dir)")
    config = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
    criteria, nbest = config.get("best_model_criterion"), config.get("keep_nbest_models")
    if not isinstance(criteria, list) or not all(isinstance(c, list) and len(c) == 3 for c in criteria):
        raise ValueError(f"{config_file}: best_model_criterion is {criteria!r}, expected a list of "
                         "[phase, criterion, min|max]")
    if not (isinstance(nbest, int) or (isinstance(nbest, list) and all(isinstance(n, int) for n in nbest))):
        raise ValueError(f"{config_file}: keep_nbest_models is {nbest!r}, expected an integer or a list of them")
    return average_each_criterion(exp_dir, criteria, nbest, check_only)


class AveragingTrainer(Trainer):
    """ESPnet's ``Trainer``; after its run, the n-best averages of every criterion are made
    again from the epochs themselves (see the module docstring)."""

    @classmethod
    def run(cls, *args, **kwargs) -> None:
        super().run(*args, **kwargs)
        options, distributed = kwargs["trainer_options"], kwargs["distributed_option"]
        if distributed.distributed and distributed.dist_rank != 0:
            return
        if len(options.best_model_criterion) < 2:
            return
        made = average_each_criterion(Path(options.output_dir), options.best_model_criterion,
                                      options.keep_nbest_models)
        logging.info("averaged again one criterion at a time (espnet_dynenc.checkpoint_averaging): "
                     + ("; ".join(average.describe() for average in made)
                        or "no average of several epochs (ESPnet's links to the best epoch are right)"))
