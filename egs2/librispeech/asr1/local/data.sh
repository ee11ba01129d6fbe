#!/usr/bin/env bash
# LibriSpeech data preparation for ESPnet; run from egs2/librispeech/asr1.
#   stage 1: download the corpus into downloads/ when db.sh leaves LIBRISPEECH empty
#   stage 2: write data/<part> per part, plus data/train_960 and data/dev
#   stage 3: with --lm_text true (asr.sh --use_lm true passes it), the LM text corpus of
#            openslr 11 into data/local/other_text/text, downloaded into downloads/
set -euo pipefail

recipe_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=$(cd "${recipe_dir}/../../.." && pwd)

# ---------------------------------------------------------------------------- options
stage=1
stop_stage=3
corpus_dir=
data_dir=data
download_dir=downloads
parts="dev-clean dev-other test-clean test-other train-clean-100 train-clean-360 train-other-500"
relax_checks=false
base_url=https://www.openslr.org/resources/12
lm_text=${use_lm:-false}
lm_text_url=https://www.openslr.org/resources/11/librispeech-lm-norm.txt.gz
lm_text_checksum=true
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
Usage: local/data.sh [options]   (run from egs2/librispeech/asr1)

Stage 1 downloads LibriSpeech into --download_dir when db.sh leaves LIBRISPEECH empty
(resumable; parts already extracted are skipped). Stage 2 writes ${data_dir}/<part> for
each part (dev_clean, ..., train_other_500) and ${data_dir}/train_960 and ${data_dir}/dev
when all their parts are prepared. Stage 3, with --lm_text true, downloads the LM text
corpus (openslr 11, 1.5 GB; resumable, its MD5 checked) into --download_dir and writes
${data_dir}/local/other_text/text, "<id> <sentence>" lines for asr.sh's --lm_train_text.

Options:
  --stage N             first stage to run (default: ${stage})
  --stop_stage N        last stage to run (default: ${stop_stage})
  --corpus_dir DIR      folder holding LibriSpeech/; overrides LIBRISPEECH from db.sh
  --data_dir DIR        output folder (default: ${data_dir})
  --download_dir DIR    download target when no corpus is given (default: ${download_dir})
  --parts "P1 P2 ..."   parts to prepare (default: all seven)
  --relax_checks BOOL   true: accept parts whose utterance count differs from the
                        published one, e.g. a small local corpus (default: ${relax_checks})
  --base_url URL        where <part>.tar.gz are downloaded from (default: ${base_url})
  --lm_text BOOL        stage 3 writes the LM text (default: \$use_lm, which asr.sh sets
                        from its --use_lm, else false; now ${lm_text})
  --lm_text_url URL     the LM text archive (default: ${lm_text_url})
  --lm_text_checksum BOOL  check the archive's MD5 (default: ${lm_text_checksum}; openslr
                        publishes none, see espnet_dynenc/corpora/librispeech.py)
  --python CMD          python command (default: \$python, else python3)
  -h, --help            show this help and exit
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
for option in relax_checks lm_text lm_text_checksum; do
    case "${!option}" in
        true | false) ;;
        *) die "--${option} must be true or false, got '${!option}'" ;;
    esac
done

# shellcheck source=SCRIPTDIR/../db.sh
. "${recipe_dir}/db.sh"
# The package may run from the checkout without being installed.
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
read -r -a part_list <<<"${parts}"
[ ${#part_list[@]} -gt 0 ] || die "--parts is empty"

download=false
if [ -z "${corpus_dir}" ]; then
    corpus_dir=${LIBRISPEECH}
fi
if [ -z "${corpus_dir}" ]; then
    corpus_dir=${download_dir}
    download=true
fi

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    if "${download}"; then
        log "stage 1: downloading ${part_list[*]} into ${corpus_dir}"
        # shellcheck disable=SC2086  # $python may be a command with arguments
        ${python} -m espnet_dynenc.bin.prepare_librispeech --download --download_only \
            --corpus_dir "${corpus_dir}" --parts "${part_list[@]}" --base_url "${base_url}"
    else
        log "stage 1: using the corpus in ${corpus_dir}; nothing to download"
        [ -d "${corpus_dir}" ] ||
            die "corpus folder '${corpus_dir}' does not exist (LIBRISPEECH in db.sh or --corpus_dir)"
    fi
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    log "stage 2: data directories in ${data_dir}"
    count_option=()
    if "${relax_checks}"; then
        count_option=(--no_check_counts)
    fi
    # shellcheck disable=SC2086
    ${python} -m espnet_dynenc.bin.prepare_librispeech --corpus_dir "${corpus_dir}" \
        --data_dir "${data_dir}" --parts "${part_list[@]}" "${count_option[@]}"
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    if "${lm_text}"; then
        log "stage 3: LM text corpus into ${data_dir}/local/other_text/text (archive in ${download_dir})"
        checksum_option=()
        "${lm_text_checksum}" || checksum_option=(--no_verify_checksum)
        # shellcheck disable=SC2086
        ${python} -m espnet_dynenc.bin.prepare_lm_text --corpus librispeech --download_dir "${download_dir}" \
            --url "${lm_text_url}" --output "${data_dir}/local/other_text/text" "${checksum_option[@]}"
    else
        log "stage 3: skipped (--lm_text false: no language model)"
    fi
fi

log "done"
