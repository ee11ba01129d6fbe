"""Measure every decoded size and pruned depth on this machine and choose the one that fits.

    python -m espnet_dynenc.bin.choose_subnet --asr_train_config exp/asr/config.yaml \\
        --asr_model_file exp/asr/valid.cer_ctc.ave.pth --decode_dir exp/asr/decode_ctc_greedy_... \\
        --test_set test --wav_scp dump/raw/test/wav.scp --num_threads 1 --max_rtf 0.05 [--export DIR]

For every size (and pruned strategy and depth) decoded in ``--decode_dir``, exports a
compact PyTorch model and an ONNX graph (fp32 and int8) into ``--work_dir`` (default
``<decode_dir>/deploy``) and measures each backend in a process of its own on the test
set's audio: RTF at ``--num_threads`` threads, peak memory, bytes on disk, and the WER of
its own hypotheses against ``--text`` (default ``text`` next to ``--wav_scp``). Prints the
table (``*``: the Pareto front over WER, RTF, bytes and memory) and the most accurate row
within ``--max_rtf``, ``--max_params``, ``--max_bytes`` and ``--max_memory`` (MB);
``--export DIR`` copies that one there. A budget nothing meets exits with status 2 and
names it, with the smallest value measured. Every audio file of ``--wav_scp`` is checked
before anything is exported.
"""
import argparse
import logging
import sys
from typing import List, Optional

from espnet_dynenc.deploy.choose import ChooseRequest, budget_limits, choose_subnet, table
from espnet_dynenc.deploy.measure import BACKENDS
from espnet_dynenc.entry import add_model_arguments, entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser)
    parser.add_argument("--decode_dir", required=True, help="asr.sh's decode_<tag> directory (stages 12-13)")
    parser.add_argument("--test_set", required=True, help="the decoded set whose sizes are candidates, e.g. test or dev")
    parser.add_argument("--wav_scp", required=True, help="its audio, e.g. dump/raw/test/wav.scp")
    parser.add_argument("--text", default=None, help="references (default: text next to --wav_scp)")
    parser.add_argument("--work_dir", default=None, help="where the exports go (default <decode_dir>/deploy)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--num_threads", type=int, default=1, help="threads of each backend")
    parser.add_argument("--max_utterances", type=int, default=None, help="measure on the first N (default: all)")
    parser.add_argument("--max_rtf", type=float, default=None, help="real-time factor budget")
    parser.add_argument("--max_params", type=int, default=None, help="parameter budget")
    parser.add_argument("--max_bytes", type=int, default=None, help="model file budget (bytes)")
    parser.add_argument("--max_memory", type=float, default=None, help="peak memory budget (MB)")
    parser.add_argument("--export", default=None, help="copy the chosen model to this new directory")
    parser.add_argument("--log_level", default="INFO", choices=["ERROR", "WARNING", "INFO", "DEBUG"])
    return parser


@entry_point("choose_subnet", also=(RuntimeError,))  # a measurement worker that failed
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    limits = budget_limits(args.max_rtf, args.max_params, args.max_bytes, args.max_memory)
    request = ChooseRequest(
        asr_train_config=args.asr_train_config, asr_model_file=args.asr_model_file, decode_dir=args.decode_dir,
        test_set=args.test_set, wav_scp=args.wav_scp, text=args.text, work_dir=args.work_dir,
        backends=args.backends, num_threads=args.num_threads, max_utterances=args.max_utterances,
        limits=limits, export=args.export)
    rows, best = choose_subnet(request)
    print("\n".join(table(rows, args.num_threads)))
    budgets = ", ".join(f"--{name} {value:g}" for name, value in limits.items()) or "no budget"
    print(f"\nchosen ({budgets}): {best.candidate.name} {best.backend}: WER {best.wer:.2f}%, RTF {best.rtf:.4f}, "
          f"{best.bytes} bytes, {best.parameters} parameters, {best.peak_memory / 2**20:.0f} MB peak")
    if args.export:
        print(f"exported to {args.export}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
