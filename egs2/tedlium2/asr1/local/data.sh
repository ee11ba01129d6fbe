#!/usr/bin/env bash
# TED-LIUM release 2 data preparation for ESPnet; run from egs2/tedlium2/asr1.
#   stage 1: download the corpus into downloads/ when db.sh leaves TEDLIUM2 empty
#   stage 2: write data/train, data/dev, data/test (with segments)
#   stage 3: with --lm_text true (asr.sh --use_lm true passes it), the release's LM text
#            (TEDLIUM_release2/LM/*.en.gz) into data/local/other_text/text
set -euo pipefail

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "${recipe_dir}/../../.." && pwd)

# ---------------------------------------------------------------------------- options
stage=1
stop_stage=3
corpus_dir=
data_dir=data
download_dir=downloads
splits="train dev test"
relax_checks=false
noise_tokens=drop
sph2pipe=sph2pipe
url=https://www.openslr.org/resources/19/TEDLIUM_release2.tar.gz
lm_text=${use_lm:-false}
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
Usage: local/data.sh [options]   (run from egs2/tedlium2/asr1)

Stage 1 downloads TED-LIUM 2 into --download_dir when db.sh leaves TEDLIUM2 empty
(resumable; skipped once extracted). Stage 2 writes ${data_dir}/train, ${data_dir}/dev and
${data_dir}/test, each with a segments file. Stage 3, with --lm_text true, writes the
release's LM text (LM/*.en.gz, normalised like the transcripts) to
${data_dir}/local/other_text/text, "<id> <sentence>" lines for asr.sh's --lm_train_text; a
release without LM/ gives an empty file (the LM then learns from the transcripts alone).

Options:
  --stage N               first stage to run (default: ${stage})
  --stop_stage N          last stage to run (default: ${stop_stage})
  --corpus_dir DIR        folder holding TEDLIUM_release2/; overrides TEDLIUM2 from db.sh
  --data_dir DIR          output folder (default: ${data_dir})
  --download_dir DIR      download target when no corpus is given (default: ${download_dir})
  --splits "S1 S2 ..."    splits to prepare (default: ${splits})
  --relax_checks BOOL     true: accept splits whose number of talks differs from the
                          release's, e.g. a small local corpus (default: ${relax_checks})
  --noise_tokens MODE     drop: remove {NOISE}-style tokens; bracket: keep them as [NOISE]
                          (default: ${noise_tokens})
  --sph2pipe PROG         sph2pipe for the shorten-compressed .sph files (default: ${sph2pipe})
  --url URL               archive to download (default: ${url})
  --lm_text BOOL          stage 3 writes the LM text (default: \$use_lm, which asr.sh sets
                          from its --use_lm, else false; now ${lm_text})
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

[[ "${stage}" =~ ^[0-9]+$ ]] || die "--stage must be a number, got '${stage}'"
[[ "${stop_stage}" =~ ^[0-9]+$ ]] || die "--stop_stage must be a number, got '${stop_stage}'"
for option in relax_checks lm_text; do
    case "${!option}" in
        true | false) ;;
        *) die "--${option} must be true or false, got '${!option}'" ;;
    esac
done

# shellcheck source=SCRIPTDIR/../db.sh
. "${recipe_dir}/db.sh"
# The package may run from the checkout without being installed.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
read -r -a split_list <<<"${splits}"
[ ${#split_list[@]} -gt 0 ] || die "--splits is empty"

download=false
if [ -z "${corpus_dir}" ]; then
    corpus_dir=${TEDLIUM2}
fi
if [ -z "${corpus_dir}" ]; then
    corpus_dir=${download_dir}
    download=true
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    if "${download}"; then
        log "stage 1: downloading TED-LIUM 2 into ${corpus_dir}"
        # shellcheck disable=SC2086  # $python may be a command with arguments
        ${python} -m espnet_dynenc.bin.prepare_tedlium2 --download --download_only \
            --corpus_dir "${corpus_dir}" --url "${url}"
    else
        log "stage 1: using the corpus in ${corpus_dir}; nothing to download"
        [ -d "${corpus_dir}" ] || die "corpus folder '${corpus_dir}' does not exist (TEDLIUM2 in db.sh or --corpus_dir)"
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "stage 2: data directories in ${data_dir}"
    count_option=()
    if "${relax_checks}"; then
        count_option=(--no_check_counts)
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet_dynenc.bin.prepare_tedlium2 --corpus_dir "${corpus_dir}" \
        --data_dir "${data_dir}" --splits "${split_list[@]}" --noise_tokens "${noise_tokens}" \
        --sph2pipe "${sph2pipe}" "${count_option[@]}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    if "${lm_text}"; then
        log "stage 3: the release's LM text into ${data_dir}/local/other_text/text"
        # shellcheck disable=SC2086
        ${python} -m espnet_dynenc.bin.prepare_lm_text --corpus tedlium2 --corpus_dir "${corpus_dir}" \
            --output "${data_dir}/local/other_text/text"
    else
        log "stage 3: skipped (--lm_text false: no language model)"
    fi
fi

log "done"
