"""Starting from a model someone already trained: a stock ESPnet Conformer, or a supernet.

``init_spec`` holds the names alone (``--init_param``'s value, the converted model's files),
with no torch, for readers that only follow them; ``source`` finds a trained ESPnet ASR model's files (an experiment's ``config.yaml`` and
checkpoint, or the zip of ``espnet2.bin.pack asr``) and reads its config and tensors;
``init_param`` says which of those tensors ESPnet's ``--init_param`` would load into the
model a training config builds, and refuses, before training, what would fail or load
silently wrong there (asr.sh ``--pretrained_model``); ``convert`` turns a stock Conformer
model into a supernet checkpoint whose every size starts from it (``bin/init_supernet``).
"""
