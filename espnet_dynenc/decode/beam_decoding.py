"""Decode a data set with ESPnet's beam search, CTC prefix scores plus an optional LM, for
several targets (subnet sizes, pruned depths) in one pass.

One ``Speech2Text`` per process builds the search exactly as ESPnet's ``asr_inference``
does and holds the model and the language model. Before a target decodes an utterance, the
model's active subnet, the CTC prefix scorer's output layer (each size has its own) and
the LM weight (``--lm_weights``: the weight tuned for that output) are set to the
target's, so one copy of each model serves every target. This is the work behind
``bin/ctc_beam_inference``.

Utterances are decoded one at a time: ESPnet 202511's ``Speech2Text`` refuses
``batch_size > 1`` for beam search; within an utterance, its ``BatchBeamSearch`` scores all
hypotheses of a step together. Every target decodes an utterance before the next one is
read, so the real-time factors of the targets are measured side by side; a target's RTF
counts its whole ``Speech2Text`` call (frontend, its blocks, the search): what a deployment
of that target alone would spend.
"""
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

from espnet2.bin.asr_inference import Speech2Text  # noqa: E402

from espnet_dynenc.checkpoint_jobs.loading import check_model_files  # noqa: E402
from espnet_dynenc.decode.batch_decoding import (  # noqa: E402
    DecodeRequest, build_loader, checkpoint_groups, sampling_rate, set_threads, targets_for)
from espnet_dynenc.decode.lm_weights import read_lm_weights  # noqa: E402
from espnet_dynenc.decode.targets import DecodeTarget  # noqa: E402
from espnet_dynenc.decode.token_lists import check_lm_matches_asr  # noqa: E402
from espnet_dynenc.decode.writer import DecodingPass, SubnetWriter  # noqa: E402
from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel  # noqa: E402


@dataclass
class SearchSettings:
    """ESPnet's beam-search options (``Speech2Text``'s names)."""

    beam_size: int = 10
    ctc_weight: float = 1.0
    lm_weight: float = 1.0
    penalty: float = 0.0
    maxlenratio: float = 0.0
    minlenratio: float = 0.0
    normalize_length: bool = False


@dataclass
class BeamRequest(DecodeRequest):
    """What to decode and how (``ctc_beam_inference``'s options): the greedy decoder's
    request, one utterance at a time on one thread unless asked, plus the search and the LM."""

    search: SearchSettings = field(default_factory=SearchSettings)
    lm_train_config: Optional[str] = None
    lm_file: Optional[str] = None
    lm_weights: Optional[str] = None
    batch_size: int = 1
    num_threads: Optional[int] = 1

    @property
    def uses_lm(self) -> bool:
        return self.lm_train_config is not None


def check_request(request: BeamRequest) -> None:
    """Everything that can be checked before a model is built; each message names its option."""
    check_model_files(request.asr_train_config, request.asr_model_file)
    if request.batch_size != 1:
        raise ValueError(f"--batch_size {request.batch_size}: beam search decodes one utterance at a time "
                         "(ESPnet 202511's Speech2Text refuses batch_size > 1 for beam search); use 1")
    if request.search.beam_size < 1:
        raise ValueError(f"--beam_size must be at least 1, got {request.search.beam_size}")
    if (request.lm_train_config is None) != (request.lm_file is None):
        raise ValueError("--lm_train_config and --lm_file go together: give both or neither")
    for option, path in (("--lm_train_config", request.lm_train_config), ("--lm_file", request.lm_file),
                         ("--lm_weights", request.lm_weights)):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{option}: no such file: {path}")
    if request.lm_weights is not None and not request.uses_lm:
        raise ValueError(f"--lm_weights {request.lm_weights}: there is no language model to weigh "
                         "(give --lm_train_config and --lm_file)")
    if request.uses_lm:
        check_lm_matches_asr(request.asr_train_config, request.lm_train_config)


def build_speech2text(request: BeamRequest) -> Speech2Text:
    """ESPnet's Speech2Text for the request. With an LM, its weight is set per target later;
    here it must be nonzero, or ESPnet would leave the LM out of the search."""
    search = request.search
    speech2text = Speech2Text(
        asr_train_config=request.asr_train_config, asr_model_file=request.asr_model_file,
        lm_train_config=request.lm_train_config, lm_file=request.lm_file, device=request.device,
        dtype=request.dtype, batch_size=1, nbest=1, beam_size=search.beam_size, ctc_weight=search.ctc_weight,
        lm_weight=1.0 if request.uses_lm else 0.0, penalty=search.penalty, maxlenratio=search.maxlenratio,
        minlenratio=search.minlenratio, normalize_length=search.normalize_length,
    )
    model = speech2text.asr_model
    if getattr(model, "decoder", None) is None and search.ctc_weight != 1.0:
        raise ValueError(f"--ctc_weight {search.ctc_weight}: {request.asr_train_config} is a CTC-only model "
                         "(no attention decoder to weigh CTC against); beam search needs ctc_weight 1.0")
    if speech2text.beam_search is None or "ctc" not in speech2text.beam_search.scorers:
        raise ValueError(f"--asr_train_config: {request.asr_train_config} gives ESPnet no CTC beam search")
    return speech2text


def lm_weight_per_target(request: BeamRequest, targets: Sequence[DecodeTarget]) -> Dict[DecodeTarget, float]:
    """``--lm_weight`` for every target, or each target's own from ``--lm_weights``."""
    if request.lm_weights is None:
        return {target: request.search.lm_weight for target in targets}
    tuned = read_lm_weights(request.lm_weights)
    missing = [target.out_dir for target in targets if target.out_dir not in tuned]
    if missing:
        raise ValueError(f"--lm_weights {request.lm_weights}: no weight for {missing} (it has {sorted(tuned)}); "
                         "tune the weights for these outputs again")
    return {target: tuned[target.out_dir] for target in targets}


def select_target(speech2text: Speech2Text, target: DecodeTarget, lm_weight: float) -> None:
    """Point the search at one target: the subnet encoded, its CTC head scored, its LM weight."""
    model = speech2text.asr_model
    if isinstance(model, ESPnetSupernetCTCModel):
        model.select_subnet(target.size, target.skip_blocks)
        # Speech2Text gave the CTC prefix scorer the head active when it was built; each
        # size has its own head (unless the model shares one).
        speech2text.beam_search.scorers["ctc"].ctc = model.ctc_for(target.size)
    speech2text.beam_search.weights["lm"] = lm_weight


def decoding_name(request: BeamRequest) -> str:
    """How RESULTS.md names this decoding."""
    return "beam + LM" if request.uses_lm else "beam"


@torch.no_grad()
def decode_with_beam_search(request: BeamRequest) -> None:
    """Decode every target of ``request`` and write its files under ``request.output_dir``."""
    check_request(request)
    set_threads(request.num_threads)
    speech2text = build_speech2text(request)
    model = speech2text.asr_model
    targets = targets_for(model, request.subnets, request.skip_blocks, request.pruning_plan,
                          request.asr_train_config)
    weights = lm_weight_per_target(request, targets)
    train_args = speech2text.asr_train_args
    fs = sampling_rate(request.fs, train_args)
    for path, group in checkpoint_groups(request, model, targets):
        if path != request.asr_model_file:
            logging.info("outputs %s: decoding %s", " ".join(t.out_dir for t in group), path)
            speech2text = build_speech2text(replace(request, asr_model_file=path))
            model = speech2text.asr_model
        loader = build_loader(request, train_args)  # batch_size 1: check_request refuses more
        writers = {target: SubnetWriter(target, Path(request.output_dir)) for target in group}
        audio_seconds, num_utts = decode_utterances(speech2text, loader, group, weights, writers, fs)
        done = DecodingPass(model, fs, request.flops_reference_seconds, num_utts, audio_seconds,
                            checkpoint=Path(path).name)
        for target, writer in writers.items():
            writer.finish(done, search_settings(request, weights[target]))


def search_settings(request: BeamRequest, lm_weight: float) -> Dict[str, object]:
    """How a target was searched, for its decode_stats (``lm_weight`` only with an LM)."""
    return {
        "decoding": decoding_name(request),
        "num_threads": torch.get_num_threads(),
        "beam_size": request.search.beam_size,
        "ctc_weight": request.search.ctc_weight,
        **({"lm_weight": lm_weight} if request.uses_lm else {}),
    }


def decode_utterances(speech2text: Speech2Text, loader, targets: Sequence[DecodeTarget],
                      weights: Dict[DecodeTarget, float], writers: Dict[DecodeTarget, SubnetWriter],
                      fs: int) -> Tuple[float, int]:
    """Every target on every utterance; returns (audio seconds, utterances)."""
    audio_seconds = 0.0
    num_utts = 0
    for keys, batch in loader:
        length = int(batch["speech_lengths"][0])
        speech = batch["speech"][0, :length]
        audio_seconds += length / fs
        num_utts += 1
        for target in targets:
            select_target(speech2text, target, weights[target])
            start = time.perf_counter()
            results = speech2text(speech)
            seconds = time.perf_counter() - start
            if isinstance(results, tuple):  # (n-best, intermediate CTC outputs)
                results = results[0]
            text, tokens, token_ids, hyp = results[0]
            writer = writers[target]
            writer.add(keys[0], token_ids, tokens, text if text is not None else " ".join(tokens), float(hyp.score))
            writer.seconds += seconds
        if num_utts % 10 == 0:
            logging.info("decoded %d utterances (%.1f s of audio)", num_utts, audio_seconds)
    return audio_seconds, num_utts
