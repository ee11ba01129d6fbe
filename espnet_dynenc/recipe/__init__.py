"""Helpers behind the recipe driver ``egs2/TEMPLATE/asr1/asr.sh``.

Each module does one stage's file work on Kaldi-style data directories (speed
perturbation, audio formatting, filtering, key splitting, token lists, merging decoder
outputs, results tables); ``espnet_dynenc.bin`` holds their command lines. None of them
imports torch, so they start fast and can run many times per stage.
"""
