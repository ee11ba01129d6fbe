"""A Python launcher that registers espnet_dynenc first: usable as asr.sh's ``--python``.

    python -m espnet_dynenc.bin.python -m espnet2.bin.asr_train --encoder dynamic_conformer ...
    python -m espnet_dynenc.bin.python some_script.py ...

Modules run with ``runpy.run_module(..., alter_sys=False)`` and scripts are executed in a
fresh namespace, so ``sys.modules["__main__"]`` stays this launcher: the workers that
multi-GPU training spawns re-import it and register the classes again. (``alter_sys=True``
or ``runpy.run_path`` would make them import the target bare.) The target's errors are
its own: they are not turned into an ``error:`` line here (see ``espnet_dynenc.entry``).
"""
import os
import runpy
import sys
from typing import List, Optional

USAGE = "usage: python -m espnet_dynenc.bin.python (-m MODULE | SCRIPT | -c CODE) [ARGS ...]"


def _execute(source: str, filename: str) -> None:
    namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
    exec(compile(source, filename, "exec"), namespace)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\n" + USAGE)
        return 0 if argv else 2
    from espnet_dynenc.registration import load_asr_task

    load_asr_task()  # registers dynamic_conformer and supernet_ctc, quietly

    if argv[0] == "-m" and len(argv) >= 2:
        sys.argv = [argv[1]] + argv[2:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=False)
    elif argv[0] == "-c" and len(argv) >= 2:
        sys.argv = ["-c"] + argv[2:]
        _execute(argv[1], "<string>")
    elif not argv[0].startswith("-"):
        sys.argv = argv
        sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
        with open(argv[0], encoding="utf-8") as f:
            _execute(f.read(), argv[0])
    else:
        print(f"espnet_dynenc.bin.python: unsupported option '{argv[0]}'\n{USAGE}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
