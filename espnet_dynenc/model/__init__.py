"""ESPnet model classes built on the ``dynamic_conformer`` encoder, their training state and its report."""
