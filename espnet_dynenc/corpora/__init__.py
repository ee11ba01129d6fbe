"""Corpus preparation: Kaldi-style data directories from the corpora's own on-disk layouts."""
