#!/usr/bin/env bash
# A supernet fine-tuned from ESPnet's own Conformer, in three steps, each skipped when done:
#   1. pre-training: ./run.sh up to stage 11 with --stock_config (encoder: conformer, model:
#      espnet) and ESPnet's own trainer (--asr_train_module espnet2.bin.asr_train: nothing of
#      this package runs), into exp/asr_<tag>_stock
#   2. conversion: python -m espnet_dynenc.bin.init_supernet of its --stock_checkpoint with the
#      fine-tuning config (--asr_config) into exp/asr_<tag>_stock/supernet_init: the stock encoder,
#      its CTC head as every size's head
#   3. fine-tuning: ./run.sh with the options given and --pretrained_model <that>/model.pth
#      (from stage 11: training, decoding and scoring as any run)
# <tag> is --asr_tag, else the fine-tuning config's name. It takes run.sh's options (they go to
# step 3; --stage, --stop_stage, --asr_args, e.g. the seed, and the data options also to step 1),
# so that run_comparison.sh can run it in place of run.sh (a plan line's "--runner" option):
#   local/finetune_from_stock.sh --asr_config conf/train_asr_des_finetune.yaml --subnets "8 16 24"
#   local/finetune_from_stock.sh --stock_config conf/train_asr_conformer_stock.yaml --stage 11 ...
# Its own options come first: --stock_config FILE [conf/train_asr_conformer_stock.yaml],
# --stock_checkpoint NAME [valid.cer_ctc.ave.pth] (of the pre-training to convert).
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (finetune_from_stock.sh) $*"
}

usage_error() {
    echo "finetune_from_stock.sh: error: $*" >&2
    exit 2
}

stock_config=conf/train_asr_conformer_stock.yaml
stock_checkpoint=valid.cer_ctc.ave.pth
while [ $# -gt 0 ]; do
    case "$1" in
        --stock_config | --stock-config) stock_config=$2; shift 2 ;;
        --stock_checkpoint | --stock-checkpoint) stock_checkpoint=$2; shift 2 ;;
        -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) break ;;
    esac
done

# the run.sh options this script reads (the last of each wins, as in asr.sh)
stage=1 stop_stage=14 asr_config= asr_tag= expdir=exp python=python3
args=("$@")
for ((index = 0; index < ${#args[@]}; index++)); do
    arg=${args[index]} value=
    name=${arg%%=*}
    name=${name//-/_}
    if [[ ${arg} == *=* ]]; then
        value=${arg#*=}
    elif [ $((index + 1)) -lt ${#args[@]} ]; then
        value=${args[index + 1]}
    fi
    case "${name}" in
        __stage) stage=${value} ;;
        __stop_stage) stop_stage=${value} ;;
        __asr_config) asr_config=${value} ;;
        __asr_tag) asr_tag=${value} ;;
        __expdir) expdir=${value} ;;
        __python) python=${value} ;;
    esac
done
[ -n "${asr_config}" ] || usage_error "--asr_config (the fine-tuning config) is required"
[ -f "${asr_config}" ] || usage_error "--asr_config: file '${asr_config}' does not exist"
[ -f "${stock_config}" ] || usage_error "--stock_config: file '${stock_config}' does not exist"
[ -n "${asr_tag}" ] || asr_tag=$(basename "${asr_config}" .yaml)
stock_exp=${expdir}/asr_${asr_tag}_stock
init_dir=${stock_exp}/supernet_init

if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
    log "1. pre-training ESPnet's Conformer (${stock_config}, espnet2.bin.asr_train) into ${stock_exp}"
    ./run.sh "$@" --stop_stage 11 --asr_config "${stock_config}" --asr_exp "${stock_exp}" \
        --asr_train_module espnet2.bin.asr_train --pretrained_model ""
    if [ -f "${init_dir}/model.pth" ]; then
        log "2. conversion already done (${init_dir}; delete it to redo)"
    else
        log "2. converting ${stock_exp}/${stock_checkpoint} into the supernet of ${asr_config}: ${init_dir}"
        # shellcheck disable=SC1091
        . ./path.sh
        # shellcheck disable=SC2086  # --python may hold words
        ${python} -m espnet_dynenc.bin.init_supernet --asr_train_config "${stock_exp}/config.yaml" \
            --asr_model_file "${stock_exp}/${stock_checkpoint}" --train_config "${asr_config}" \
            --output_dir "${init_dir}"
    fi
    log "3. fine-tuning ${asr_config} from ${init_dir}/model.pth"
    exec ./run.sh "$@" --stage 11 --pretrained_model "${init_dir}/model.pth"
fi
# stages before or after training only: nothing of steps 1-2 is needed
exec ./run.sh "$@"
