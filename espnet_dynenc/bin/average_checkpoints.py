"""Make an experiment's n-best checkpoint averages again, one ``best_model_criterion`` at a time.

    python -m espnet_dynenc.bin.average_checkpoints --exp_dir exp/asr_des [--check_only]

ESPnet 202511 averages the second and later criteria of a training wrong when their best
epochs share one with an earlier criterion (see ``espnet_dynenc.checkpoint_averaging``): in a
supernet, every size after the first and the full size. Trainings of this package's task
make them again by themselves; this tool does it for an experiment trained before, from its
``config.yaml``, ``checkpoint.pth`` and kept epoch files, and prints each average with how
far it moved. ``--check_only`` prints the same and writes nothing. Decode again afterwards
(``./run.sh --stage 12``): asr.sh redoes every decoding whose checkpoint changed. Each
average is of the best epochs that average with the last one: a DES epoch from the other
side of the Step-1/Step-2 switch (or a DMAO epoch of another architecture) is left out and
named, which also repairs a training whose end ESPnet's averaging refused. With one
criterion and a model without such records there is nothing to do. A missing experiment
dir, config, checkpoint.pth or epoch file exits with status 2 and names it, before anything
is written.
"""
import argparse
import sys
from typing import List, Optional

from espnet_dynenc.entry import entry_point


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", required=True, help="the experiment dir (config.yaml, checkpoint.pth, epochs)")
    parser.add_argument("--check_only", action="store_true", help="say how far each average would move; write nothing")
    return parser


@entry_point("average_checkpoints")
def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    from espnet_dynenc.checkpoint_averaging import average_experiment

    made = average_experiment(args.exp_dir, check_only=args.check_only)
    if not made:
        print(f"average_checkpoints: {args.exp_dir}: no average of several epochs to make again (one criterion "
              "and no masks or architecture records: ESPnet's averages are right, nothing to do)")
        return 0
    for average in made:
        print(f"average_checkpoints: {average.describe()}")
    changed = [a for a in made if a.changed]
    verb = "would change" if args.check_only else "changed"
    print(f"average_checkpoints: {args.exp_dir}: {len(made)} averages made again, {len(changed)} {verb}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
