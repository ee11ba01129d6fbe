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

Epochs that must not be averaged together (DES masks from both sides of the switch, DMAO
architectures from both sides of an event: ``model.checkpoint_entry``) make ESPnet's
averaging refuse at the end of the training, also when the training's own check passed
(enough epochs end after the switch, yet one of Step 1 ranks among a size's best). Here each
average is made of the best epochs that share the last epoch's masks (architecture): the
others are left out and named, and so are the epoch files the trainer had already removed
because they ranked below every criterion's n best before the others were left out.
"""
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Hashable, List, Optional, Sequence, Set, Tuple, Union

import torch
from espnet2.train.trainer import Trainer

from espnet_dynenc.model.checkpoint_entry import CheckpointMixError, averaging_keys

CHECKPOINT = "checkpoint.pth"  # ESPnet's resumable state, with the reporter's statistics


@dataclass(frozen=True)
class Average:
    """One ``<phase>.<criterion>.ave_<n>best.pth`` made again, against the file it replaces."""
    file: str
    epochs: Tuple[int, ...]
    change: Optional[float]  # largest |new - old| over the floating-point tensors; None: no file before
    others: int = 0  # other entries that differ (counters ESPnet sums, mask records, names, shapes)
    left_out: Tuple[Tuple[int, str], ...] = ()  # (epoch, why) of better-ranked epochs not averaged

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
        if self.left_out:
            what += "; left out: " + ", ".join(f"epoch {epoch} ({why})" for epoch, why in self.left_out)
        return f"{self.file} (epochs {' '.join(map(str, self.epochs))}): {what}"


def _nbests(nbest: Union[int, Sequence[int]]) -> List[int]:
    return [nbest] if isinstance(nbest, int) else list(nbest) or [1]


def _load(path: Path, mmap: bool = False) -> dict:
    """An epoch or checkpoint file; ``mmap``: the tensors are mapped, not read (for its records only)."""
    return torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)


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


OTHER_MASKS = "other masks or architecture than the last epoch"
REMOVED = "its file was removed by the trainer"


Walk = List[Tuple[int, Optional[str]]]  # a criterion's epochs, best first: (epoch, None) averaged, else why not


def _eligible_ranking(output_dir: Path, reporter, best_model_criterion, nbest: int,
                      reference: Dict[str, Hashable]) -> Tuple[Dict[Tuple[str, str], Walk], Set[int]]:
    """Each criterion's ranked epochs up to its ``nbest``-th among those whose checkpoint
    entries average with the last epoch's (``reference``: :func:`averaging_keys` of
    ``checkpoint.pth``'s model), the others passed over with why; and every epoch left out.
    An epoch file missing where no epoch was left out is an error; once one was, the files
    the trainer removed (ranked below every criterion's n best before) are passed over.
    Without ``reference`` (no such entries) nothing is left out."""
    keys: Dict[int, Dict[str, Hashable]] = {}
    left_out: Dict[int, str] = {}
    while True:
        ranking, found = {}, False  # found: an epoch left out for its masks; rank again
        for phase, criterion, mode in best_model_criterion:
            if found or not reporter.has(phase, criterion):
                continue
            walk: Walk = []
            for epoch, _ in reporter.sort_epochs_and_values(phase, criterion, mode):
                if sum(why is None for _, why in walk) == nbest:
                    break
                if epoch in left_out:
                    walk.append((epoch, left_out[epoch]))
                    continue
                path = output_dir / f"{epoch}epoch.pth"
                if not path.is_file():
                    if not left_out:
                        ranked = [e for e, _ in reporter.sort_epochs_and_values(phase, criterion, mode)[:nbest]]
                        raise FileNotFoundError(f"{path}: no such file, needed for {phase}.{criterion}'s {nbest} "
                                                f"best epochs {ranked}: nothing was averaged again")
                    left_out[epoch] = REMOVED
                    walk.append((epoch, REMOVED))
                    continue
                if reference:
                    if epoch not in keys:
                        keys[epoch] = averaging_keys(_load(path, mmap=True))
                    if keys[epoch] != reference:
                        left_out[epoch], found = OTHER_MASKS, True
                        break  # rank every criterion again without it: a lower-ranked epoch may now be needed
                walk.append((epoch, None))
            ranking[(phase, criterion)] = walk
        if not found:
            return ranking, set(left_out)


def average_each_criterion(output_dir: Path, best_model_criterion: Sequence[Sequence[str]],
                           nbest: Union[int, Sequence[int]], check_only: bool = False) -> List[Average]:
    """Make each criterion's n-best averages again, one criterion per call of ESPnet's
    ``average_nbest_models``, from the epochs that ``checkpoint.pth``'s reporter ranks best
    among those that average with the last epoch (see the module docstring).

    Args:
        output_dir: the experiment dir (``<epoch>epoch.pth``, ``checkpoint.pth``).
        best_model_criterion: ``[[phase, criterion, min|max], ...]`` as in the training config.
        nbest: ``keep_nbest_models``.
        check_only: say how far each new average is from the saved one; write nothing.
    Returns:
        Every average of more than one epoch, with its change; empty with one criterion and
        no entries that refuse a mix, where ESPnet's averages are right.
    Raises:
        FileNotFoundError: no ``checkpoint.pth``, or an epoch an average needs is gone.
    """
    from espnet2.main_funcs.average_nbest_models import average_nbest_models
    from espnet2.train.reporter import Reporter

    output_dir = Path(output_dir)
    checkpoint = output_dir / CHECKPOINT
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no such file (the reporter's statistics, which rank the epochs, "
                                "are kept there by ESPnet's trainer)")
    state = _load(checkpoint)
    if not isinstance(state, dict) or "reporter" not in state:
        raise KeyError(f"{checkpoint}: no 'reporter' entry (ESPnet's trainer saves the statistics that rank the "
                       "epochs there)")
    reference = averaging_keys(state.get("model") or {})
    if len(best_model_criterion) < 2 and not reference:
        return []
    reporter = Reporter()
    reporter.load_state_dict(state["reporter"])
    nbests = _nbests(nbest)
    ranking, left_out = _eligible_ranking(output_dir, reporter, best_model_criterion, max(nbests), reference)
    if left_out:  # ESPnet's averaging ranks the epochs kept here, and only those
        kept = {epoch: stats for epoch, stats in reporter.stats.items() if epoch not in left_out}
        reporter = Reporter()
        reporter.load_state_dict({"epoch": max(kept), "stats": kept})
    wanted = []  # (file name, epochs, passed over) of every average of n >= 2 epochs, as ESPnet names them
    for (phase, criterion), walk in ranking.items():
        averaged = [epoch for epoch, why in walk if why is None]
        for n in [n for n in nbests if 2 <= n <= len(averaged)]:
            upto = walk[:walk.index((averaged[n - 1], None)) + 1]
            passed = tuple((epoch, why) for epoch, why in upto if why is not None)
            wanted.append((f"{phase}.{criterion}.ave_{n}best.pth", tuple(averaged[:n]), passed))
    scratch = Path(tempfile.mkdtemp(prefix=".averaging.", dir=output_dir))
    try:
        for epoch in {epoch for walk in ranking.values() for epoch, why in walk if why is None}:
            os.symlink(os.path.abspath(output_dir / f"{epoch}epoch.pth"), scratch / f"{epoch}epoch.pth")
        for criterion in best_model_criterion:
            average_nbest_models(output_dir=scratch, reporter=reporter, best_model_criterion=[criterion], nbest=nbest)
        # one epoch of each average says which entries are floating point (loaded once each)
        first = {epochs[0]: _load(output_dir / f"{epochs[0]}epoch.pth") for _, epochs, _ in wanted}
        made = [Average(name, epochs, *_difference(_load(scratch / name), output_dir / name, first[epochs[0]]),
                        left_out=passed)
                for name, epochs, passed in wanted]
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
        options, distributed = kwargs["trainer_options"], kwargs["distributed_option"]
        refused = None
        try:
            super().run(*args, **kwargs)
        except CheckpointMixError as e:  # ESPnet's averaging, the last step of its run
            if getattr(options, "nbest_averaging_interval", 0):
                raise  # it may come from an averaging during the training: not the end of the run
            refused = e
            logging.warning(f"ESPnet's checkpoint averaging refused the epochs it ranked best ({e}); each average "
                            "is made of the best epochs that average with the last one instead")
        if distributed.distributed and distributed.dist_rank != 0:
            return
        if len(options.best_model_criterion) < 2 and refused is None:
            return
        made = average_each_criterion(Path(options.output_dir), options.best_model_criterion,
                                      options.keep_nbest_models)
        logging.info("averaged again one criterion at a time (espnet_dynenc.checkpoint_averaging): "
                     + ("; ".join(average.describe() for average in made)
                        or "no average of several epochs (ESPnet's links to the best epoch are right)"))
