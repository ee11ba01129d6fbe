#!/usr/bin/env bash
# Corpus locations for this recipe; local/data.sh sources this file.
#
# TEDLIUM2: the folder that holds TEDLIUM_release2/ (train/, dev/, test/).
# Leave it empty to have local/data.sh download the corpus into downloads/.
# A value already in the environment wins, so one run can point elsewhere.
TEDLIUM2="${TEDLIUM2:-}"
