"""Tests of the recipe driver egs2/TEMPLATE/asr1/asr.sh, its job runners and the scorer."""
