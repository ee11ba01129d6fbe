"""Decode a data set with ESPnet's beam search (CTC prefix scores, optionally an LM), for
several subnet sizes in one run.

For each size S it writes the greedy decoder's files::

    <output_dir>/<S>/text, token, token_int, score     (lines "<utt> <value>")
    <output_dir>/<S>/decode_stats.yaml                 (decoding, beam_size, lm_weight, rtf, ...)

and with ``--pruning_plan`` every strategy and depth into ``pruned/<strategy>/<depth>/``.
The search is ESPnet's ``Speech2Text`` with ``ctc_weight 1.0`` (the models are CTC-only),
``--beam_size``, ``--lm_weight`` (or each output's own from ``--lm_weights``, the
lm_weights.yaml that asr.sh tunes on the dev set) and ``--penalty``, usually from a
``--config`` YAML (asr.sh's ``--inference_config``)::

    python -m espnet_dynenc.bin.ctc_beam_inference --config conf/decode_lm.yaml \\
        --asr_train_config exp/asr/config.yaml --asr_model_file exp/asr/valid.cer_ctc.ave.pth \\
        --lm_train_config exp/lm/config.yaml --lm_file exp/lm/valid.loss.ave.pth \\
        --data_path_and_name_and_type dump/raw/test/wav.scp,speech,sound --output_dir out

As the greedy decoder, a size with ``--size_model_file SIZE=FILE`` and the pruned outputs of
a depth with ``--depth_model_file DEPTH=FILE`` are decoded from their own checkpoints, which
their ``decode_stats.yaml`` name.

Utterances are decoded one at a time (ESPnet 202511's Speech2Text refuses a batch size
above 1 for beam search); every size decodes an utterance in turn, so their real-time
factors are measured side by side. A size's RTF counts its whole Speech2Text call.
Outputs are written under temporary names and renamed when the whole set is decoded.
Every audio file is checked before the model is loaded (``espnet_dynenc.audio_check``): a
missing, unreadable or wrongly sampled file ends the run, naming its wav.scp line, before
anything is written.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.audio_check import check_decoder_inputs
from espnet_dynenc.decode.beam_decoding import BeamRequest, SearchSettings, decode_with_beam_search
from espnet_dynenc.decode.options import beam_parser, parse_with_config, request_fields
from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    return beam_parser(__doc__)


@entry_point("ctc_beam_inference")
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_with_config(get_parser(), argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    search = SearchSettings(beam_size=args.beam_size, ctc_weight=args.ctc_weight, lm_weight=args.lm_weight,
                            penalty=args.penalty, maxlenratio=args.maxlenratio, minlenratio=args.minlenratio,
                            normalize_length=args.normalize_length)
    request = BeamRequest(**request_fields(args), search=search, lm_train_config=args.lm_train_config,
                          lm_file=args.lm_file, lm_weights=args.lm_weights)
    check_decoder_inputs(request.data_path_and_name_and_type, request.asr_train_config, request.fs, request.key_file)
    decode_with_beam_search(request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
