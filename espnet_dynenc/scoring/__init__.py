"""Word error scoring that reproduces NIST sclite's counts and its ``result.txt`` report.

``wer`` aligns two token sequences with sclite's costs; ``trn`` reads ``.trn`` files;
``sclite_format`` writes the report that ``sclite -i rm -o all stdout`` writes.
"""
