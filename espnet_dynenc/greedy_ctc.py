"""Batched greedy (best-path) CTC decoding.

Greedy decoding picks the most likely token per frame, merges repeats and drops blanks.
Frames are independent given the encoder output, so a batch decodes in one argmax; each
utterance only sees its own valid frames, so batched and one-by-one results agree.
"""
from dataclasses import dataclass
from typing import List

import torch


@dataclass(frozen=True)
class GreedyHypothesis:
    token_ids: List[int]
    score: float  # sum over valid frames of the best token's log-probability


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank_id: int = 0) -> List[GreedyHypothesis]:
    """Decode (batch, time, vocab) log-probabilities with per-utterance valid ``lengths``."""
    if log_probs.dim() != 3:
        raise ValueError(f"log_probs must be (batch, time, vocab), got shape {tuple(log_probs.shape)}")
    best_scores, best_ids = log_probs.max(dim=-1)
    hypotheses = []
    for scores, ids, length in zip(best_scores.cpu(), best_ids.cpu(), lengths.cpu().tolist()):
        path = torch.unique_consecutive(ids[:length])
        tokens = path[path != blank_id].tolist()
        hypotheses.append(GreedyHypothesis(tokens, float(scores[:length].sum())))
    return hypotheses
