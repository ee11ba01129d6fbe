"""ESPnet's ASR training with this package's classes registered.

Takes exactly ``espnet2.bin.asr_train``'s options::

    python -m espnet_dynenc.bin.asr_train --config conf/train.yaml ...

Workers that multi-GPU training spawns re-import this module as their main module,
so they register the classes too. ``supernet_ctc`` models also write their subnet
report (``subnets.yaml``, plots) into ``--output_dir``. Processes of a multi-host run
wait for each other at the end and close their process group before exiting.
"""
from espnet_dynenc.registration import load_asr_task

load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

import torch  # noqa: E402

from espnet_dynenc.distributed import is_distributed  # noqa: E402
from espnet_dynenc.espnet_task import DynEncASRTask  # noqa: E402


def main(cmd=None) -> None:
    DynEncASRTask.main(cmd=cmd)
    if is_distributed():
        # ESPnet leaves the process group open: a rank that is done first would exit while
        # rank 0 still validates and saves, and tear gloo's threads down under its peers.
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
