"""Dev-set CTC loss and greedy-CTC CER of a ``supernet_ctc`` encoder with blocks removed.

Layer pruning on demand (Lee, Kang, Watanabe, Interspeech 2021) removes blocks of a
trained encoder at run time. The greedy strategy tries many removal sets on the same dev
data, and only the blocks change between tries: the features and the subsampling
frontend are computed once per batch here (``model.embed``) and reused for every set.

The CER is ESPnet's ``cer_ctc`` (validation) definition: blank and ``<space>`` tokens
dropped, the remaining token strings joined, character edit distance summed over the
utterances and divided by the reference characters (utterances with an empty reference
are left out); so the numbers compare with a training log's ``cer_ctc``.
"""
import math
from dataclasses import dataclass
from typing import Callable, Collection, Dict, FrozenSet, List, Optional, Sequence, Tuple

import editdistance
import torch

from espnet_dynenc.greedy_ctc import greedy_ctc_decode
from espnet_dynenc.encoder.dynamic_conformer import EmbeddedInput
from espnet_dynenc.model.schedule import SubnetPass

METRICS = ("ctc_loss", "cer")
SPACE_TOKEN = "<space>"

DevBatch = Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # speech, lengths, text, text_lengths


@dataclass(frozen=True)
class DevScores:
    """Scores of one removal set over the whole dev set."""

    ctc_loss: float  # mean CTC loss per utterance
    cer: float  # character errors / reference characters; nan without reference characters
    num_utterances: int


@dataclass
class _EmbeddedBatch:
    embedded: EmbeddedInput
    text: torch.Tensor
    text_lengths: torch.Tensor


def character_errors(hyp_ids: Sequence[int], ref_ids: Sequence[int], token_list: Sequence[str],
                     blank_id: int) -> Tuple[int, int]:
    """(edit distance, reference characters) of one utterance, as ESPnet's ``cer_ctc`` counts."""
    def characters(ids: Sequence[int]) -> str:
        return "".join(token_list[i] for i in ids if i != -1 and i != blank_id and token_list[i] != SPACE_TOKEN)

    hyp, ref = characters(hyp_ids), characters(ref_ids)
    return int(editdistance.eval(hyp, ref)), len(ref)


class DevScorer:
    """Scores removal sets of one subnet on fixed dev batches, frontend computed once.

    Args:
        model: a ``supernet_ctc`` model; it is put in eval mode (no stochastic depth,
            no dropout) and left there.
        batches: (speech, speech_lengths, text, text_lengths) tuples; ``text`` may be
            padded with -1 (ESPnet's collate) or anything else past ``text_lengths``.
        size: the subnet (unit count) to prune; None is the supernet.

    Results are memoised per removal set, so a greedy search over several depths, which
    revisits its first removals, pays for each set once.
    """

    def __init__(self, model, batches: Sequence[DevBatch], size: Optional[int] = None):
        if len(batches) == 0:
            raise ValueError("batches: the dev set is empty")
        self.model = model.eval()
        self.size = model.supernet_size if size is None else int(size)
        self._subnet = SubnetPass(self.size, model.mask_for(self.size), 1.0)
        self._head = model.ctc_for(self.size)
        self._batches = self._embed_all(batches)
        self._cache: Dict[FrozenSet[int], DevScores] = {}

    @torch.no_grad()
    def _embed_all(self, batches: Sequence[DevBatch]) -> List[_EmbeddedBatch]:
        device = next(self.model.parameters()).device
        embedded = []
        for i, batch in enumerate(batches):
            if len(batch) != 4:
                raise ValueError(f"batches: entry {i} has {len(batch)} items, expected "
                                 "(speech, speech_lengths, text, text_lengths)")
            speech, lengths, text, text_lengths = (t.to(device) for t in batch)
            embedded.append(_EmbeddedBatch(self.model.embed(speech, lengths), text, text_lengths))
        return embedded

    @property
    def num_blocks(self) -> int:
        return self.model.encoder.num_blocks

    def scores(self, skip_blocks: Collection[int] = ()) -> DevScores:
        """CTC loss and CER with ``skip_blocks`` removed (memoised)."""
        key = frozenset(int(b) for b in skip_blocks)
        if key not in self._cache:
            self._cache[key] = self._evaluate(key)
        return self._cache[key]

    def ctc_loss(self, skip_blocks: Collection[int] = ()) -> float:
        return self.scores(skip_blocks).ctc_loss

    def cer(self, skip_blocks: Collection[int] = ()) -> float:
        return self.scores(skip_blocks).cer

    def metric(self, name: str) -> Callable[[FrozenSet[int]], float]:
        """The score callable the greedy strategy takes: ``ctc_loss`` or ``cer``."""
        if name not in METRICS:
            raise ValueError(f"metric: '{name}' is unknown (choose from {list(METRICS)})")
        return self.ctc_loss if name == "ctc_loss" else self.cer

    @property
    def evaluations(self) -> int:
        """How many distinct removal sets were scored."""
        return len(self._cache)

    @torch.no_grad()
    def _evaluate(self, skip_blocks: FrozenSet[int]) -> DevScores:
        loss_sum, errors, ref_chars, utterances = 0.0, 0, 0, 0
        blank_id = self.model.blank_id
        token_list = self.model.token_list
        for batch in self._batches:
            out, _, out_lens = self.model.encode_subnet(batch.embedded, self._subnet, skip_blocks)
            # ESPnet's CTC averages the summed per-utterance losses over the batch; undo
            # that so batches of different sizes weigh by their utterances.
            batch_size = out.size(0)
            loss = self._head(out, out_lens, batch.text, batch.text_lengths)
            loss_sum += float(loss) * batch_size
            utterances += batch_size
            hyps = greedy_ctc_decode(self._head.log_softmax(out), out_lens, blank_id)
            for hyp, ref, ref_len in zip(hyps, batch.text.cpu().tolist(), batch.text_lengths.cpu().tolist()):
                e, n = character_errors(hyp.token_ids, ref[:ref_len], token_list, blank_id)
                errors += e
                ref_chars += n
        cer = errors / ref_chars if ref_chars > 0 else math.nan
        return DevScores(loss_sum / utterances, cer, utterances)
