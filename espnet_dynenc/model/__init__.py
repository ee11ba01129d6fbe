"""ESPnet model classes built on the ``dynamic_conformer`` encoder."""
