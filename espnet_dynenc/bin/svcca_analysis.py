"""SVCCA similarity between the layers of a trained ``supernet_ctc`` encoder.

SVCCA (Raghu et al., NeurIPS 2017) compares the activations of two layers on the same
frames; Lee et al. (Interspeech 2021) read it to see which blocks of an encoder trained
for layer pruning on demand change their input least. Layers are the frontend output
(the input of block 0) and the output of every block, on the valid frames of the first
``--max_utterances`` utterances. Blocks are numbered from 0, as ``--skip_blocks``.

Writes into ``--output_dir``::

    svcca.npy              (N+1, N+1) matrix over [frontend, block0, ..., block{N-1}]
    svcca.tsv              the same with row and column labels
    block_redundancy.tsv   block, svcca(input, output): high = the block changes little
    svcca.png              heatmap of the matrix

Each file is written under a temporary name and renamed when complete.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.checkpoint_jobs.svcca_analysis import SVCCARequest, analyse
from espnet_dynenc.entry import add_data_arguments, add_model_arguments, entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    add_data_arguments(parser, "dump/raw/dev/wav.scp,speech,sound (speech is needed)")
    parser.add_argument("--max_utterances", type=int, default=200, help="utterances to collect activations on")
    parser.add_argument("--max_frames", type=int, default=20000,
                        help="frames kept (a random subset, the same for every layer); 0 keeps all")
    parser.add_argument("--variance_kept", type=float, default=0.99,
                        help="fraction of variance the SVD step keeps (Raghu et al.: 0.99)")
    parser.add_argument("--subnet", type=int, default=None, help="subnet size to analyse (default: the supernet)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="seed of the frame subset")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


@entry_point("svcca_analysis")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    request = SVCCARequest(
        asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file,
        data_path_and_name_and_type=args.data_path_and_name_and_type, output_dir=args.output_dir,
        key_file=args.key_file, max_utterances=args.max_utterances, max_frames=args.max_frames,
        variance_kept=args.variance_kept, subnet=args.subnet, batch_size=args.batch_size,
        device="cuda" if args.ngpu > 0 else "cpu", num_workers=args.num_workers, seed=args.seed)
    analyse(request)
    return 0


if __name__ == "__main__":
    sys.exit(main())
