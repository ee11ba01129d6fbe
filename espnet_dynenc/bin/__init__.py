"""Command-line entry points (``python -m espnet_dynenc.bin.<name> --help``)."""
