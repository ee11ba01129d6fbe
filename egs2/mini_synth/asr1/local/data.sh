#!/usr/bin/env bash
# mini_synth data preparation for ESPnet; run from egs2/mini_synth/asr1.
# Synthesizes the corpus with espeak-ng and writes data/train, data/dev and data/test.
# Running it again with the same options does nothing: the corpus leaves a completion
# marker (data/local/mini_synth/.done) that records its settings.
set -euo pipefail

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "${recipe_dir}/../../.." && pwd)

# ---------------------------------------------------------------------------- options
data_dir=data
wav_dir=downloads/mini_synth
num_train=2500
num_dev=500
num_test=6000
num_dev_voices=6
num_test_voices=12
seed=1
nj=2
backend=auto
babble_talkers=1
babble_snr=10,20
force=false
python=${python:-python3}
# ------------------------------------------------------------------------ end of options

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (${BASH_SOURCE[0]##*/}) $*" >&2
}

die() {
    log "error: $*"
    exit 1
}

help_message=$(
    cat <<EOF
Usage: local/data.sh [options]   (run from egs2/mini_synth/asr1)

Synthesizes the mini_synth corpus (espeak-ng voices, a small home-assistant grammar) and
writes ${data_dir}/train, ${data_dir}/dev and ${data_dir}/test. Dev and test voices are held out
from training. Skipped when the corpus is already complete for the same options.

Options:
  --data_dir DIR          data directories go here (default: ${data_dir})
  --wav_dir DIR           WAV files go here (default: ${wav_dir})
  --num_train N           training utterances (default: ${num_train})
  --num_dev N             dev utterances (default: ${num_dev})
  --num_test N            test utterances (default: ${num_test})
  --num_dev_voices N      voices heard only in dev (default: ${num_dev_voices})
  --num_test_voices N     voices heard only in test (default: ${num_test_voices})
  --seed N                seed for everything random (default: ${seed})
  --nj N                  worker processes (default: ${nj})
  --backend NAME          espeak-ng backend: auto, loader or command (default: ${backend})
  --babble_talkers N      other speakers of the same split talking under each utterance, 0: none
                          (default: ${babble_talkers})
  --babble_snr LO,HI      range of the speech-to-babble ratio in dB (default: ${babble_snr})
  --force BOOL            true: remake the corpus even if complete (default: ${force})
  --python CMD            python command (default: \$python, else python3)
  -h, --help              show this help and exit
EOF
)

# bad options get this script's messages and status (see utils/parse_options.sh)
option_error() {
    case "$1" in
        missing_value) die "option $2 needs a value (see --help)" ;;
        *) die "unknown option or argument '$2' (see --help)" ;;
    esac
}

# shellcheck source=../../../TEMPLATE/asr1/utils/parse_options.sh
. "${recipe_dir}/utils/parse_options.sh"
option_names=$(options_declared_in "${BASH_SOURCE[0]}")
parse_options "$@"

for option in num_train num_dev num_test num_dev_voices num_test_voices seed nj babble_talkers; do
    [[ "${!option}" =~ ^[0-9]+$ ]] || die "--${option} must be a non-negative whole number, got '${!option}'"
done
force_option=()
case "${force}" in
    true) force_option=(--force) ;;
    false) ;;
    *) die "--force must be true or false, got '${force}'" ;;
esac

# The package may run from the checkout without being installed.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"

log "mini_synth corpus into ${data_dir} (WAV files in ${wav_dir})"
# shellcheck disable=SC2086  # $python may be a command with arguments
${python} -m espnet_dynenc.bin.make_synth_corpus \
    --data_dir "${data_dir}" --wav_dir "${wav_dir}" \
    --num_train "${num_train}" --num_dev "${num_dev}" --num_test "${num_test}" \
    --num_dev_voices "${num_dev_voices}" --num_test_voices "${num_test_voices}" \
    --seed "${seed}" --nj "${nj}" --backend "${backend}" \
    --babble_talkers "${babble_talkers}" --babble_snr "${babble_snr}" "${force_option[@]}"

log "done"
