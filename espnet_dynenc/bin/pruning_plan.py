"""Print one field of a pruning plan (``prune_on_demand``'s pruning_plan.yaml).

    python -m espnet_dynenc.bin.pruning_plan --plan exp/x/decode_y/pruning/pruning_plan.yaml --field subnet

A shell script asks this instead of parsing the YAML itself; a field the file lacks
prints an empty line. A missing or malformed plan exits with status 2 and names it.
"""
import argparse
import sys
from typing import List, Optional

from espnet_dynenc.entry import entry_point
from espnet_dynenc.pruning.plan import SCALAR_FIELDS, PruningPlan


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", required=True, help="pruning_plan.yaml")
    parser.add_argument("--field", required=True, choices=SCALAR_FIELDS, help="the field to print")
    return parser


@entry_point("pruning_plan")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    value = PruningPlan.load(args.plan).field_value(args.field)
    print("" if value is None else value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
