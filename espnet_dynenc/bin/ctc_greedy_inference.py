"""Decode a data set with batched greedy CTC, for several subnet sizes in one run.

The features and the subsampling frontend run once per batch; every requested size then
runs its own blocks and CTC head. For each size S it writes ESPnet's files::

    <output_dir>/<S>/text, token, token_int, score     (lines "<utt> <value>")
    <output_dir>/<S>/decode_stats.yaml                 (rtf, parameters, flops_per_second, ...)

With ``--pruning_plan`` (``prune_on_demand``'s pruning_plan.yaml) it also decodes the
plan's subnet with the blocks of every strategy and depth removed (layer pruning on
demand), into ``<output_dir>/pruned/<strategy>/<depth>/`` with the same files, and that
subnet whole (its reference). All targets share each batch, so their real-time factors
are measured side by side; targets that remove the same blocks are computed once.

The real-time factor of a size counts the shared frontend plus that size's own blocks,
head and search: what a deployment of that size alone would spend. Outputs are written
under temporary names and renamed when the whole set is decoded.

With ``--size_model_file SIZE=FILE`` a size is decoded from its own checkpoint (e.g. the
average of the best epochs by that size's dev CER, ``valid.cer_ctc_16.ave.pth``); each
size's ``decode_stats.yaml`` names the checkpoint it was decoded from. With
``--depth_model_file DEPTH=FILE`` every pruned output of that depth (each strategy) is
decoded from its own checkpoint (e.g. the average of the best epochs by the dev CER of the
intermediate CTC exit after block DEPTH, ``valid.cer_interctc_layer4.ave.pth``), and its
``decode_stats.yaml`` names it; the plan's whole subnet stays on ``--asr_model_file``.

Every audio file is checked before the model is loaded (``espnet_dynenc.audio_check``): a
missing, unreadable or wrongly sampled file ends the run, naming its wav.scp line, before
anything is written.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.audio_check import check_decoder_inputs
from espnet_dynenc.decode.batch_decoding import DecodeRequest, decode_data_set
from espnet_dynenc.decode.options import greedy_parser, parse_with_config, request_fields
from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    return greedy_parser(__doc__)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Command line over ``--config`` defaults; an unknown key in the config is an error."""
    return parse_with_config(get_parser(), argv)


@entry_point("ctc_greedy_inference")
def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    request = DecodeRequest(**request_fields(args))
    check_decoder_inputs(request.data_path_and_name_and_type, request.asr_train_config, request.fs, request.key_file)
    decode_data_set(request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
