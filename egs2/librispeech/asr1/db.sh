#!/usr/bin/env bash
# Corpus locations for this recipe; local/data.sh sources this file.
#
# LIBRISPEECH: the folder that holds LibriSpeech/ (dev-clean/, ..., SPEAKERS.TXT).
# Leave it empty to have local/data.sh download the corpus into downloads/.
# A value already in the environment wins, so one run can point elsewhere.
LIBRISPEECH="${LIBRISPEECH:-}"
