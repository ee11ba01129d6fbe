"""Stage 12 (``--lm_weight_grid``): choose each output's LM weight from its dev-set WER.

    python -m espnet_dynenc.bin.choose_lm_weight --tuning_dir exp/x/decode_y/lm_weight_tuning \\
        --dev_set dev --grid "0.0 0.3 0.6" --ref_text dump/raw/dev/text \\
        --output exp/x/decode_y/lm_weights.yaml

Reads ``<tuning_dir>/<weight>/<dev_set>/<output>/text`` for every weight of the grid and
every output (a size, or ``pruned/<strategy>/<depth>``), counts the word errors as stage 13
does, and writes the weight of fewest errors per output, with the table it was chosen
from, to ``--output``. A tie goes to the weight listed first. Prints the choice.
"""
import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.recipe.lm_weight import choose_lm_weights


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tuning_dir", type=Path, required=True, help="holds <weight>/<dev_set>/<output>/text")
    parser.add_argument("--dev_set", required=True, help="name of the dev set folder under each weight")
    parser.add_argument("--grid", required=True, help='the weights decoded, as their folders are named: "0.0 0.3"')
    parser.add_argument("--ref_text", type=Path, required=True, help="the dev set's reference text")
    parser.add_argument("--output", type=Path, required=True, help="lm_weights.yaml to write")
    parser.add_argument("--cleaner", default="none", help="ESPnet text cleaner for the reference (as stage 13)")
    parser.add_argument("--non_linguistic_symbols", default="none", help="symbols removed before scoring")
    return parser


@entry_point("choose_lm_weight")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="choose_lm_weight: %(message)s")
    best = choose_lm_weights(args.tuning_dir, args.dev_set, args.grid, args.ref_text, args.output,
                             args.cleaner, args.non_linguistic_symbols)
    print(f"choose_lm_weight: {args.output}: " + ", ".join(f"{o} {w:g}" for o, w in best.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
