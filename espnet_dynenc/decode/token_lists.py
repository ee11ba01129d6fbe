"""The token list of a trained model, and the check that an LM speaks the ASR model's tokens.

Shallow fusion adds the language model's score of token id ``k`` to the CTC score of token
id ``k``; ESPnet's ``Speech2Text`` takes that the two lists agree for granted. An LM
trained on another token list of the same size decodes silently into nonsense, one of
another size fails deep inside the search. Both are refused here, naming the two files
and the first place they differ, before any audio is read (asr.sh asks before any stage).
"""
import os
from pathlib import Path
from typing import List, Sequence

import yaml


def read_token_list(path: os.PathLike) -> List[str]:
    """A ``tokens.txt``: one token per line."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def config_token_list(config: os.PathLike) -> List[str]:
    """The tokens of a trained model's ``config.yaml`` (ESPnet stores the list itself; an
    older or hand-written config may name a ``tokens.txt`` instead)."""
    with open(config, encoding="utf-8") as f:
        args = yaml.safe_load(f) or {}
    tokens = args.get("token_list") if isinstance(args, dict) else None
    if isinstance(tokens, str):
        return read_token_list(tokens)
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"{config}: has no token_list")
    return [str(token) for token in tokens]


def token_list_of(path: os.PathLike) -> List[str]:
    """The tokens of a ``config.yaml`` (by its ``.yaml``/``.yml`` suffix) or a ``tokens.txt``."""
    if Path(path).suffix in (".yaml", ".yml"):
        return config_token_list(path)
    return read_token_list(path)


def first_difference(left: Sequence[str], right: Sequence[str]) -> int:
    """Index of the first token where the lists differ (the shorter length if one is a prefix)."""
    for index, (a, b) in enumerate(zip(left, right)):
        if a != b:
            return index
    return min(len(left), len(right))


def check_same_tokens(asr_tokens: Sequence[str], asr_source: str, lm_tokens: Sequence[str], lm_source: str) -> None:
    """ValueError naming both sources unless the LM's token list is the ASR model's."""
    if list(asr_tokens) == list(lm_tokens):
        return
    index = first_difference(asr_tokens, lm_tokens)
    asr_token = repr(asr_tokens[index]) if index < len(asr_tokens) else "nothing"
    lm_token = repr(lm_tokens[index]) if index < len(lm_tokens) else "nothing"
    raise ValueError(
        f"the language model's token list differs from the ASR model's: {lm_source} has {len(lm_tokens)} "
        f"tokens, {asr_source} has {len(asr_tokens)}; token {index} is {lm_token} in the LM and {asr_token} "
        "in the ASR model (train the LM on the ASR model's token list)"
    )


def check_lm_matches_asr(asr_source: os.PathLike, lm_config: os.PathLike) -> None:
    """Compare the token list of ``asr_source`` (config.yaml or tokens.txt) with the LM config's."""
    check_same_tokens(token_list_of(asr_source), str(asr_source), config_token_list(lm_config), str(lm_config))
