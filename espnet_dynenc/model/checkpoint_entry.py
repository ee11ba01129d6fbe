"""State-dict entries that ESPnet's checkpoint averaging can pass through, or refuse.

``espnet2.main_funcs.average_nbest_models`` adds the state-dict entries of the chosen
epochs one by one (``avg[k] + states[k]``), divides the sum by their number unless
``str(entry.dtype)`` starts with ``torch.int``, and saves the result. A
:class:`AveragedEntry` goes through this unchanged when every checkpoint's entry has the
same :meth:`~AveragedEntry.averaging_key` (the sum and the quotient are the first entry,
i.e. the best epoch's), and raises :class:`CheckpointMixError` with the subclass's
:meth:`~AveragedEntry.mix_error` otherwise: checkpoints that must not be averaged are
refused before anything is saved. :func:`averaging_keys` reads the keys of a state dict,
so that an average can be made of the epochs that share them
(``espnet_dynenc.checkpoint_averaging``).

Subclasses: DMAO's architecture and events (``dmao_state.CheckpointState``) and the
subnet masks with the update they were saved at (``des_state.MaskState``).

Checkpoints holding such an entry load with ``torch.load``'s default ``weights_only=True``
(torch >= 2.6) in any process that has imported this package: each subclass is registered
with ``torch.serialization.add_safe_globals`` (:func:`loadable`), and an entry pickles as a
call of its class on a plain dict, which the weights-only unpickler allows for registered
classes (it refuses to fill a dict subclass item by item).
"""
from typing import Dict, Hashable, Mapping, Optional, TypeVar

import torch

Entry = TypeVar("Entry", bound=type)


def loadable(cls: Entry) -> Entry:
    """Class decorator: let ``torch.load(..., weights_only=True)`` rebuild entries of ``cls``."""
    torch.serialization.add_safe_globals([cls])
    return cls


class CheckpointMixError(ValueError):
    """ESPnet's checkpoint averaging was given epochs whose entries must not be averaged."""


class AveragedEntry(dict):
    """A dict entry of a state dict that averages to itself and refuses a mix.

    Subclasses define :meth:`averaging_key` (what must be equal for checkpoints to be
    averaged) and :meth:`mix_error` (the message naming both sides when it is not).
    """

    dtype = "averaged-entry"  # read by average_nbest_models; not an integer type: it divides

    def averaging_key(self) -> Hashable:
        raise NotImplementedError

    def mix_error(self, other: Optional[dict]) -> str:
        """The refusal's message; ``other`` may be a plain dict or None (an older checkpoint)."""
        raise NotImplementedError

    def __add__(self, other) -> "AveragedEntry":
        if type(other) is not type(self) or self.averaging_key() != other.averaging_key():
            raise CheckpointMixError(self.mix_error(other))
        return self

    def __truediv__(self, count) -> "AveragedEntry":
        return self

    def __reduce__(self):
        # rebuilt as cls(plain dict): allowed by the weights-only unpickler for registered classes
        return type(self), (dict(self),)


def averaging_keys(state: Mapping) -> Dict[str, Hashable]:
    """``{state-dict key: averaging key}`` of every :class:`AveragedEntry` in ``state``:
    two checkpoints average when these are equal (empty for a model without such entries)."""
    return {key: value.averaging_key() for key, value in state.items() if isinstance(value, AveragedEntry)}
