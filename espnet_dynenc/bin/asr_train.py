"""ESPnet's ASR training with this package's classes registered.

Takes exactly ``espnet2.bin.asr_train``'s options::

    python -m espnet_dynenc.bin.asr_train --config conf/train.yaml ...

Workers that multi-GPU training spawns re-import this module as their main module,
so they register the classes too. ``supernet_ctc`` models also write their subnet
report (``subnets.yaml``, plots) into ``--output_dir``. Every process of a multi-process
run closes its process group after a successful training, so that none can abort at exit
(see ``espnet_dynenc.distributed``). Unlike the other entry points it does not turn errors
into one ``error:`` line (``espnet_dynenc.entry``): a training fails inside ESPnet's trainer
and its workers, where the traceback in train.log is what tells why.
"""
import argparse
import sys
from typing import List, Optional

from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

from espnet_dynenc.espnet_task import DynEncASRTask  # noqa: E402


def get_parser() -> argparse.ArgumentParser:
    """ESPnet's ASR task parser (this package's classes are among its choices)."""
    return DynEncASRTask.get_parser()


def main(argv: Optional[List[str]] = None) -> int:
    DynEncASRTask.main(cmd=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
