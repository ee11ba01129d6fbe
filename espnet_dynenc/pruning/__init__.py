"""Run-time layer pruning on demand (Lee, Kang, Watanabe, Interspeech 2021).

An encoder trained with intermediate CTC and a linear stochastic-depth schedule keeps
working when whole blocks are removed at inference, without fine-tuning. This package
chooses which blocks to remove for a target depth (``strategies``) and holds the result
(``plan``); scoring a pruned encoder on dev data and the planning job that runs both on a
trained model are in ``espnet_dynenc.checkpoint_jobs``.
"""
from espnet_dynenc.pruning.strategies import STRATEGIES, blocks_to_remove

__all__ = ["STRATEGIES", "blocks_to_remove"]
