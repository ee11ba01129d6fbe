"""The ``dynamic_conformer`` encoder: a Conformer whose modules can be pruned at run time."""
from espnet_dynenc.encoder.dynamic_conformer import DynamicConformerEncoder  # noqa: F401
