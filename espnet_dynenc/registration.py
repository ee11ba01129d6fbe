"""Register the ``dynamic_conformer`` encoder and the ``supernet_ctc`` model with ESPnet.

``ASRTask.build_model`` looks classes up in the module-level ``ClassChoices`` of
``espnet2.tasks.asr``; adding entries there makes YAML configs, ``asr_train``,
``build_model_from_file`` and ``Speech2Text`` accept the new names. Every process that
reads such a config must import ``espnet_dynenc`` first.

Importing ``espnet2.tasks.asr`` takes seconds, and most of this package (corpus
preparation, scoring, recipe helpers) never needs it. So ``import espnet_dynenc``
registers at once when ESPnet's ASR task is already loaded, and otherwise the moment it
gets loaded, before anything can build a parser from it.
"""
import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
import tempfile

ENCODER_NAME = "dynamic_conformer"
MODEL_NAME = "supernet_ctc"
ASR_TASK_MODULE = "espnet2.tasks.asr"


def quiet_import(module_name: str):
    """Import a module, sending what it prints to the debug log.

    espnet2's ASR task imports a grapheme-to-phoneme package that tries to download
    NLTK data at import time and prints errors without network; none of it is used here.
    The file descriptors are redirected, not ``sys.stdout``: modules that bind
    ``sys.stdout`` as a default argument at import time must get the real one.
    """
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            module = importlib.import_module(module_name)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        printed = sink.read().decode("utf-8", errors="replace").strip()
    if printed:
        logging.getLogger(__name__).debug("import %s printed:\n%s", module_name, printed)
    return module


def add_classes(asr_task_module) -> None:
    """Put this package's classes into the ASR task's class choices (idempotent)."""
    from espnet_dynenc.encoder.dynamic_conformer import DynamicConformerEncoder
    from espnet_dynenc.model.supernet_ctc import ESPnetSupernetCTCModel

    asr_task_module.encoder_choices.classes[ENCODER_NAME] = DynamicConformerEncoder
    asr_task_module.model_choices.classes[MODEL_NAME] = ESPnetSupernetCTCModel


def is_registered() -> bool:
    module = sys.modules.get(ASR_TASK_MODULE)
    return module is not None and ENCODER_NAME in module.encoder_choices.classes


class _RegisterWhenImported(importlib.abc.MetaPathFinder):
    """Finds ``espnet2.tasks.asr`` as usual, and registers right after it has run."""

    def find_spec(self, fullname, path, target=None):
        if fullname != ASR_TASK_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            add_classes(module)

        spec.loader.exec_module = exec_module
        return spec


def register() -> None:
    """Register now if ESPnet's ASR task is loaded, else as soon as it is imported."""
    if ASR_TASK_MODULE in sys.modules:
        add_classes(sys.modules[ASR_TASK_MODULE])
    elif not any(isinstance(finder, _RegisterWhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenImported())


def load_asr_task():
    """Import ESPnet's ASR task quietly, with this package's classes registered."""
    register()
    module = quiet_import(ASR_TASK_MODULE)
    add_classes(module)
    return module
