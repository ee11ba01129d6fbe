"""The front door of every command-line entry point: shared options and one way to end a refusal.

An entry point (``espnet_dynenc/bin/<name>.py``) parses its options, builds a request and
calls the package; it is decorated with :func:`entry_point`. What the package refuses (a
missing file, an option value that does not fit, a malformed input: the error types in
:data:`EXPECTED_ERRORS`) ends the run with one line ``<prog>: error: <what>`` on stderr
and exit status 2, which is what argparse does for a bad option: a shell script or a
test sees the same status and the same shape of message whether the option or the file
it names is wrong. Any other exception is a failure nobody planned for, and keeps its
traceback.

:func:`add_model_arguments` and :func:`add_data_arguments` define the options that name a
trained model and the data it reads, so that every tool spells and explains them alike
(the habit of icefall's ``add_model_arguments``). This module imports neither torch nor
ESPnet (only :func:`add_data_arguments` takes ESPnet's value parsers), so the light tools
that use the runner start as fast as before.
"""
import argparse
import functools
import sys
from typing import Callable, List, Optional, Tuple, Type, Union

#: What a tool of this package raises when it refuses its input: a bad value
#: (``ValueError``), a file that is missing or unreadable (``OSError``), a key that a
#: file lacks (``KeyError``).
EXPECTED_ERRORS: Tuple[Type[BaseException], ...] = (ValueError, OSError, KeyError)
#: argparse's exit status for a usage error, used for every refusal.
REFUSED = 2

Main = Callable[[Optional[List[str]]], int]
Options = Union[argparse.ArgumentParser, argparse._ArgumentGroup]  # a parser or one of its groups


def error_text(error: BaseException) -> str:
    """The message of ``error`` as a sentence (``str(KeyError)`` would add quote marks)."""
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        return error.args[0]
    return str(error)


def entry_point(prog: str, also: Tuple[Type[BaseException], ...] = ()) -> Callable[[Main], Main]:
    """Decorate ``main(argv) -> status`` so that an expected error becomes ``<prog>: error: <what>``
    on stderr and status :data:`REFUSED`.

    Args:
        prog: the name in the message (the module's name, as users call it).
        also: further error types that this tool's jobs raise on purpose; ``RuntimeError``
            for the tools whose downloads, audio pipes, sentencepiece or measurement
            workers report a failure that way. Kept per tool so that a ``RuntimeError`` of
            torch inside a decoder still shows its traceback.
    """
    expected = EXPECTED_ERRORS + tuple(also)

    def wrap(main: Main) -> Main:
        @functools.wraps(main)
        def run(argv: Optional[List[str]] = None) -> int:
            try:
                return main(argv)
            except expected as error:
                print(f"{prog}: error: {error_text(error)}", file=sys.stderr)
                return REFUSED

        return run

    return wrap


def add_model_arguments(parser: Options, required: bool = True) -> None:
    """``--asr_train_config`` and ``--asr_model_file``: the trained model a tool reads.

    With ``required=False`` (a tool that can take the model another way, e.g. a packed
    zip) both default to None, and the config defaults to the one beside the checkpoint.
    """
    parser.add_argument("--asr_train_config", required=required, default=None,
                        help="config.yaml of the trained model" +
                             ("" if required else " (default: config.yaml beside --asr_model_file)"))
    parser.add_argument("--asr_model_file", required=required, default=None, help="its parameters (.pth)")


def add_data_arguments(parser: Options, example: str, keys_help: str = "use only these utterances") -> None:
    """``--data_path_and_name_and_type`` (ESPnet's triples, repeatable) and ``--key_file``.

    ``example`` completes the triple's help, e.g. ``"dump/raw/test/wav.scp,speech,sound"``.
    """
    # ESPnet's parsers of these values, imported here: the runner above serves light tools too
    from espnet2.utils.types import str2triple_str, str_or_none

    parser.add_argument("--data_path_and_name_and_type", type=str2triple_str, action="append", required=True,
                        help=f"e.g. {example} (repeatable)")
    parser.add_argument("--key_file", type=str_or_none, default=None, help=keys_help)
