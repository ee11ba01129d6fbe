"""The command-line options of the two decoders, importable without torch.

``asr.sh`` checks a decoding configuration (``--inference_config``, ``--inference_args``)
before any stage runs, by asking these parsers; the decoders themselves would find an
unknown key only in stage 12, after the language model and the ASR model were trained.
Keeping the parsers here, apart from the decoding code, keeps that check under a second.

Both decoders share the data, target and output options; beam search adds ESPnet's search
options (``Speech2Text``'s names and meanings) and the language model.
"""
import argparse
from typing import Dict, List, Optional, Sequence

import yaml
from espnet2.utils.types import int_or_none, str2bool, str_or_none

from espnet_dynenc.entry import add_data_arguments, add_model_arguments

GREEDY = "greedy"
BEAM = "beam"


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """Model, data, targets and output: what both decoders read and write."""
    add_model_arguments(parser)
    add_data_arguments(parser, "dump/raw/test/wav.scp,speech,sound", keys_help="decode only these utterances")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--subnets", type=str, default="",
                        help='sizes to decode, e.g. "16 32 48" (default: every size of the model)')
    parser.add_argument("--skip_blocks", type=int, nargs="*", default=[],
                        help="0-based encoder blocks removed at run time (all sizes)")
    parser.add_argument("--pruning_plan", type=str_or_none, default=None,
                        help="pruning_plan.yaml of prune_on_demand: also decode every strategy and depth in it")
    parser.add_argument("--size_model_file", type=str, action="append", default=[], metavar="SIZE=FILE",
                        help="decode subnet SIZE from its own checkpoint FILE (e.g. the average of its own best "
                             "epochs, valid.cer_ctc_16.ave.pth) instead of --asr_model_file (repeatable); "
                             "pruned forms use --asr_model_file or --depth_model_file")
    # A pruned depth d keeps d blocks, so its own checkpoint is the average of the epochs best by the
    # intermediate CTC exit after block d (best_model_criterion [valid, cer_interctc_layer<d>, min],
    # where interctc_layer_idx has d): exactly the encoder that the `top` strategy keeps (blocks
    # 1..d), and a proxy for the other strategies, which keep d blocks spread over the encoder.
    parser.add_argument("--depth_model_file", type=str, action="append", default=[], metavar="DEPTH=FILE",
                        help="decode every pruned output of depth DEPTH (every strategy of --pruning_plan) from its "
                             "own checkpoint FILE (e.g. valid.cer_interctc_layer4.ave.pth: the epochs best by the "
                             "intermediate CTC exit after block DEPTH, exactly the encoder that strategy top keeps and "
                             "a proxy for the other strategies) instead of --asr_model_file (repeatable); the plan's "
                             "whole subnet stays on --asr_model_file")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--ngpu", type=int, default=0)
    parser.add_argument("--dtype", default="float32", choices=["float16", "bfloat16", "float32", "float64"])
    parser.add_argument("--num_workers", type=int, default=1)
    parser.add_argument("--num_threads", type=int_or_none, default=None,
                        help="torch threads of this process (greedy: torch's own choice; beam search: 1); parallel jobs on a "
                             "shared machine decode fastest with one each")
    parser.add_argument("--fs", type=int, default=None,
                        help="sampling rate of the audio, for the RTF (default: the training config's "
                             "frontend_conf.fs, else 16000)")
    parser.add_argument("--flops_reference_seconds", type=float, default=10.0,
                        help="utterance duration at which FLOPs per second are counted")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    parser.add_argument("--config", default=None,
                        help="YAML file of default values for these options (asr.sh's --inference_config)")


def request_fields(args: argparse.Namespace) -> Dict[str, object]:
    """The options of :func:`add_common_options` as the fields of a decoding request
    (``DecodeRequest``, which ``BeamRequest`` extends)."""
    return dict(
        asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file,
        data_path_and_name_and_type=args.data_path_and_name_and_type, output_dir=args.output_dir,
        key_file=args.key_file, subnets=args.subnets, skip_blocks=args.skip_blocks, pruning_plan=args.pruning_plan,
        size_model_files=args.size_model_file, depth_model_files=args.depth_model_file, batch_size=args.batch_size,
        device="cuda" if args.ngpu > 0 else "cpu", dtype=args.dtype, num_workers=args.num_workers, fs=args.fs,
        flops_reference_seconds=args.flops_reference_seconds, num_threads=args.num_threads)


def greedy_parser(description: Optional[str] = None) -> argparse.ArgumentParser:
    """``ctc_greedy_inference``'s options."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    return parser


def beam_parser(description: Optional[str] = None) -> argparse.ArgumentParser:
    """``ctc_beam_inference``'s options: the common ones, ESPnet's search and the LM."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    # ESPnet's Speech2Text decodes one utterance at a time, and its search is a long run of
    # small operations that extra threads slow down (ESPnet's recipes set OMP_NUM_THREADS=1)
    parser.set_defaults(batch_size=1, num_threads=1)
    search = parser.add_argument_group("Beam search (ESPnet's Speech2Text options)")
    search.add_argument("--beam_size", type=int, default=10, help="hypotheses kept at every step")
    search.add_argument("--ctc_weight", type=float, default=1.0,
                        help="weight of CTC prefix scores; 1.0 for CTC-only models (they have no attention "
                             "decoder to weigh against)")
    search.add_argument("--lm_weight", type=float, default=1.0, help="weight of the language model's scores")
    search.add_argument("--penalty", type=float, default=0.0, help="score added per output token (length bonus)")
    search.add_argument("--maxlenratio", type=float, default=0.0,
                        help="maximum output length / encoder frames; 0: up to the frames, ending early when "
                             "the best hypotheses have ended")
    search.add_argument("--minlenratio", type=float, default=0.0, help="minimum output length / encoder frames")
    search.add_argument("--normalize_length", type=str2bool, default=False,
                        help="choose the best ended hypothesis by its score per token")
    lm = parser.add_argument_group("Language model")
    lm.add_argument("--lm_train_config", type=str_or_none, default=None, help="config.yaml of ESPnet's lm_train")
    lm.add_argument("--lm_file", type=str_or_none, default=None, help="the language model's parameters (.pth)")
    lm.add_argument("--lm_weights", type=str_or_none, default=None,
                    help="lm_weights.yaml of choose_lm_weight: each output's own lm_weight (tuned on the dev "
                         "set), instead of --lm_weight")
    return parser


def parser_for(kind: str, description: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of decoding ``kind`` (``greedy`` or ``beam``)."""
    if kind == GREEDY:
        return greedy_parser(description)
    if kind == BEAM:
        return beam_parser(description)
    raise ValueError(f"unknown decoding kind '{kind}' (choose from: {GREEDY}, {BEAM})")


def option_names(parser: argparse.ArgumentParser) -> List[str]:
    """Every destination the parser knows (what a ``--config`` YAML may set)."""
    return [action.dest for action in parser._actions if action.dest != "help"]


def read_config(path: str) -> Dict[str, object]:
    """A decoding config: a YAML mapping (an empty file is an empty mapping)."""
    with open(path, encoding="utf-8") as f:
        loaded = yaml.safe_load(f)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: a decoding config must be a mapping of option: value, got {type(loaded).__name__}")
    return loaded


def unknown_keys(parser: argparse.ArgumentParser, config: Dict[str, object]) -> List[str]:
    """The keys of ``config`` that ``parser`` has no option for, sorted."""
    return sorted(set(config) - set(option_names(parser)))


def parse_with_config(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command line over ``--config`` defaults; an unknown key in the config is an error."""
    args = parser.parse_args(argv)
    if args.config is None:
        return args
    defaults = read_config(args.config)
    unknown = unknown_keys(parser, defaults)
    if unknown:
        parser.error(f"--config {args.config}: unknown option(s) {unknown}")
    parser.set_defaults(**defaults)
    return parser.parse_args(argv)
