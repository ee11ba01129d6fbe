"""asr.sh's check of a decoding set-up, before any stage runs.

A decoding config with a misspelt key, an ``--inference_args`` option the decoder does
not have, or a language model trained on another token list would otherwise stop the
recipe only in stage 12, after hours of LM and ASR training, and leave the earlier
stages marked done for a call that could never finish. This check runs in a fraction of
a second (no torch) and names the culprit; it also says which decoder asr.sh should run:

* ``beam`` with ``--use_lm true`` (an LM needs a search), or when the config or the
  arguments set ``beam_size``;
* ``greedy`` otherwise: the batched greedy CTC decoder, the default.
"""
import shlex
from dataclasses import dataclass
from typing import List, Optional

from espnet_dynenc.decode.options import BEAM, GREEDY, option_names, parser_for, read_config, unknown_keys
from espnet_dynenc.decode.token_lists import check_lm_matches_asr

GREEDY_MODULE = "espnet_dynenc.bin.ctc_greedy_inference"
BEAM_MODULE = "espnet_dynenc.bin.ctc_beam_inference"
MODULE_OF_KIND = {GREEDY: GREEDY_MODULE, BEAM: BEAM_MODULE}


@dataclass
class DecodingSetup:
    """What asr.sh was asked to decode with."""

    inference_config: Optional[str] = None
    inference_args: str = ""
    use_lm: bool = False
    inference_module: Optional[str] = None  # --asr_inference_module when given
    lm_train_config: Optional[str] = None  # an LM that exists already (its config.yaml)
    asr_tokens: Optional[str] = None  # the ASR model's config.yaml, or the recipe's tokens.txt


def option_words(args: str) -> List[str]:
    """The option names in an ``--inference_args`` string (``--beam_size 4`` -> ``beam_size``)."""
    return [word[2:].split("=", 1)[0] for word in shlex.split(args) if word.startswith("--")]


def decoding_kind(setup: DecodingSetup) -> str:
    """``beam`` or ``greedy`` (see the module's docstring)."""
    config = read_config(setup.inference_config) if setup.inference_config else {}
    if setup.use_lm or "beam_size" in config or "beam_size" in option_words(setup.inference_args):
        return BEAM
    return GREEDY


def check_decoding(setup: DecodingSetup) -> str:
    """Refuse a bad set-up with a ValueError naming the file or option; return the kind."""
    kind = decoding_kind(setup)
    module = setup.inference_module or MODULE_OF_KIND[kind]
    if setup.use_lm and module == GREEDY_MODULE:
        raise ValueError(f"--use_lm true needs beam search, but --asr_inference_module {module} decodes "
                         f"greedily (leave it out, or give {BEAM_MODULE})")
    if module in MODULE_OF_KIND.values():
        known_kind = GREEDY if module == GREEDY_MODULE else BEAM
        check_options_known(setup, known_kind, module)
    if setup.use_lm and setup.lm_train_config and setup.asr_tokens:
        check_lm_matches_asr(setup.asr_tokens, setup.lm_train_config)
    return kind


def check_options_known(setup: DecodingSetup, kind: str, module: str) -> None:
    """Every key of the config and every option of the arguments is one the decoder has."""
    parser = parser_for(kind)
    hint = f"see python -m {module} --help"
    if setup.inference_config:
        unknown = unknown_keys(parser, read_config(setup.inference_config))
        if unknown:
            raise ValueError(f"--inference_config {setup.inference_config}: unknown decoding option(s) {unknown} "
                             f"for {kind} decoding ({hint})")
    known = set(option_names(parser))
    unknown = sorted(name for name in option_words(setup.inference_args) if name not in known)
    if unknown:
        raise ValueError(f"--inference_args '{setup.inference_args}': unknown decoding option(s) "
                         f"{['--' + name for name in unknown]} for {kind} decoding ({hint})")
