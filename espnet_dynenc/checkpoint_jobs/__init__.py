"""A trained checkpoint opened the way ESPnet's inference does, and the jobs that study it.

``loading`` builds the model from ``config.yaml`` and a ``.pth`` and ESPnet's iterator
over a data set for it (the decoders and the exporters use both); ``dev_data`` holds a
few hundred dev utterances in memory; ``dev_scoring`` scores an encoder with blocks
removed on them; ``prune_on_demand`` and ``svcca_analysis`` are the work behind the
entry points of the same names. The algorithms they run (``espnet_dynenc.pruning``,
``espnet_dynenc.analysis``) open no file.
"""
