#!/usr/bin/env bash
# ASR recipe driver: data preparation, an optional language model, supernet training,
# decoding of every subnet size (greedy CTC, or beam search with the LM), scoring and one
# results table. Run it from a recipe directory (egs2/<corpus>/asr1),
# normally through that recipe's run.sh, e.g. ./run.sh --stage 10 --stop_stage 13.
#
# Stage numbers, option names and directory layout follow ESPnet's egs2 asr.sh; the
# stages call ESPnet's Python entry points for the real work. Every stage writes a .done
# marker last and skips work whose marker exists, so a rerun resumes where a previous
# run stopped; delete a marker (or its directory) to redo that work. See README.md.
set -euo pipefail

SECONDS=0
current_stage=

# log MESSAGE: the time, where the message comes from (as ESPnet's log: asr.sh:<line>:<function>)
# and the message
log() {
    log_for_caller 1 "$@"
}

# log_for_caller N MESSAGE: as log, naming the function N calls above the one that calls this
# (fail and report_skip name their caller, not themselves)
log_for_caller() {
    local up=$(($1 + 1))
    shift
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (asr.sh:${BASH_LINENO[up - 1]}:${FUNCNAME[up]:-main}) $*"
}

# an error in how asr.sh was called: nothing has run yet
usage_error() {
    echo "asr.sh: error: $*" >&2
    exit 2
}

# a stage could not do its work; its .done marker is not written
fail() {
    log_for_caller 1 "error: $*" >&2
    exit 1
}

min() {
    local smallest=$1 value
    for value in "$@"; do
        [ "${value}" -lt "${smallest}" ] && smallest=${value}
    done
    echo "${smallest}"
}

# ---------------------------------------------------------------------------- options
# General
stage=1              # first stage to run
stop_stage=14        # last stage to run
ngpu=1               # GPUs for training (0: CPU)
num_nodes=1          # machines for training
train_hosts=         # e.g. "host1,host2": one training process per host (per GPU with --ngpu), via ssh
nj=32                # parallel jobs for data preparation and statistics
inference_nj=32      # parallel jobs for decoding
inference_threads=   # torch threads per decoding job; empty: 1 when several jobs decode on CPU
gpu_inference=false  # decode on GPU
dumpdir=dump         # formatted data
expdir=exp           # statistics, models, decoding results
python=python3       # python command

# Data preparation
local_data_opts=         # options for local/data.sh
speed_perturb_factors=   # e.g. "0.9 1.0 1.1"; empty: no speed perturbation
feats_type=raw           # only raw: waveforms, features are computed by the model
audio_format=wav         # wav or flac
fs=16k                   # sampling rate of the formatted audio
min_wav_duration=0.1     # shorter training utterances are dropped (seconds)
max_wav_duration=20      # longer training utterances are dropped (seconds)

# Tokens
token_type=bpe                    # bpe or char
nbpe=30                           # BPE vocabulary size
bpemode=unigram                   # unigram or bpe
bpe_input_sentence_size=100000000 # sentences sentencepiece reads at most
bpe_nlsyms=                       # symbols kept whole by sentencepiece, comma-separated
bpe_char_cover=1.0                # sentencepiece character coverage
bpe_train_text=                   # "<utt> <text>" lines to learn tokens from
nlsyms_txt=none                   # non-linguistic symbols file
cleaner=none                      # ESPnet text cleaner
g2p=none                          # ESPnet g2p (unused for bpe/char)
lang=noinfo                       # language tag of the token list directory

# Language model (stages 6-9, ESPnet's lm_train), for beam search in stage 12
use_lm=false        # true: train an LM and decode every size with beam search and the LM
lm_tag=             # suffix of the LM experiment directory
lm_exp=             # LM experiment directory (overrides lm_tag), e.g. an LM trained elsewhere
lm_stats_dir=       # LM statistics directory
lm_config=          # LM training configuration (yaml)
lm_args=            # extra LM training options, e.g. "--max_epoch 5"
lm_train_text=      # "<id> <text>" files the LM learns from, space-separated; empty: the training text
lm_dev_text=        # LM validation text; empty: the valid set's text
lm_test_text=       # text of the perplexity in stage 9; empty: the first test set's text
lm_fold_length=150  # fold length of LM text

# Training
asr_tag=                   # suffix of the experiment directory
asr_exp=                   # experiment directory (overrides asr_tag)
asr_stats_dir=             # statistics directory
asr_config=                # training configuration (yaml)
asr_args=                  # extra training options, e.g. "--max_epoch 10"
feats_normalize=global_mvn # feature normalisation
asr_speech_fold_length=800 # fold length of speech (x100 samples)
asr_text_fold_length=150   # fold length of text
asr_train_module=espnet_dynenc.bin.asr_train
pretrained_model=          # checkpoint to start from, path[:src_key:dst_key:excluded] (ESPnet's --init_param)
ignore_init_mismatch=false # leave out pretrained tensors that do not fit the model, instead of stopping

# Decoding
inference_tag=                            # suffix of the decoding directory
inference_config=                         # decoding configuration (yaml)
inference_args=                           # extra decoding options
inference_asr_model=valid.cer_ctc.ave.pth # checkpoint to decode
size_checkpoints=true                     # each size and pruned depth from its own best epochs, where trained
batch_size=8                              # utterances per greedy decoding batch
subnets=                                  # sizes to decode and score; empty: all sizes
asr_inference_module=                     # decoding entry point; empty: by the decoding (greedy or beam)
inference_lm=valid.loss.ave.pth           # LM checkpoint to decode with (--use_lm true)
lm_weight_grid=                           # e.g. "0.2 0.4 0.6": lm_weight per size tuned on --valid_set

# Layer pruning on demand (Lee et al. 2021): blocks removed at run time, no fine-tuning
prune_depths=                                  # blocks to keep, e.g. "10 8 6"; empty: no pruning
prune_strategies="top every_other svcca greedy" # which blocks to remove for a depth
prune_subnet=                                  # size whose blocks are removed; empty: the largest
prune_metric=ctc_loss                          # dev score of the greedy strategy: ctc_loss or cer
prune_max_utterances=200                       # dev utterances that choose the blocks

# Packing (stage 14): every decoded size as a standalone ESPnet model and its zip
skip_packing=true # ESPnet's default: stage 14 does nothing

# Data sets (written by local/data.sh)
train_set=
valid_set=
test_sets=

# ------------------------------------------------------------------------ end of options

# found next to this script (not via the recipe's utils link), so --help works anywhere
# shellcheck source=utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/utils/parse_options.sh"
# every variable of the block above is an option (the block is the one list of them)
option_names=$(options_declared_in "$(readlink -f "$0")")

help_message=$(
    cat <<EOF
Usage: $0 --train_set <name> --valid_set <name> --test_sets "<names>" [options]
Run from a recipe directory (egs2/<corpus>/asr1). Stages:
   1  data preparation (local/data.sh)      6    LM text        } --use_lm true only
   2  speed perturbation                    7    LM statistics  }
   3  audio formatting into <dumpdir>/raw   8    LM training    }
   4  duration and empty-text filtering     9    LM perplexity  }
   5  token list                            10   statistics (ESPnet collect_stats)
                                            11   training
                                            12   decoding of every subnet size (greedy; beam search
                                                 with --use_lm true or a beam_size in --inference_config)
                                            13   scoring and RESULTS.md
                                            14   packing every decoded size (--skip_packing false)
Each stage skips work whose .done marker exists; delete the marker to redo it.

Options (default in brackets):
  --stage N / --stop_stage N   stages to run [${stage} / ${stop_stage}]
  --nj N                       parallel jobs for data and statistics [${nj}]
  --inference_nj N             parallel decoding jobs [${inference_nj}]
  --inference_threads N        torch threads of each decoding job (OMP_NUM_THREADS); empty: 1 when
                               several jobs decode on CPU (torch's default, every core in each job,
                               oversubscribes the cores and is several times slower), else torch's
                               default or OMP_NUM_THREADS as set [${inference_threads:-empty}]
  --ngpu N / --num_nodes N     training GPUs per node / nodes [${ngpu} / ${num_nodes}]
  --train_hosts "H1,H2"        train on these hosts through ssh (ESPnet's launch --host): one process
                               per host with --ngpu 0 (gloo), one per GPU otherwise [none]
  --gpu_inference BOOL         decode on GPU [${gpu_inference}]
  --dumpdir DIR / --expdir DIR formatted data / experiments [${dumpdir} / ${expdir}]
  --python CMD                 python command [${python}]
 Data preparation:
  --local_data_opts "..."      options for local/data.sh
  --speed_perturb_factors "F..." e.g. "0.9 1.0 1.1" [none]
  --feats_type raw             only raw is supported
  --audio_format wav|flac      format of the dumped audio [${audio_format}]
  --fs RATE                    sampling rate of the dumped audio [${fs}]
  --min_wav_duration S / --max_wav_duration S
                               training utterances kept strictly between [${min_wav_duration} / ${max_wav_duration}]
 Tokens:
  --token_type bpe|char [${token_type}]  --nbpe N [${nbpe}]  --bpemode unigram|bpe [${bpemode}]
  --bpe_train_text FILE        "<utt> <text>" lines [${dumpdir}/raw/<train_set>/text]
  --bpe_nlsyms A,B             symbols sentencepiece keeps whole
  --bpe_char_cover X / --bpe_input_sentence_size N [${bpe_char_cover} / ${bpe_input_sentence_size}]
  --nlsyms_txt FILE / --cleaner NAME / --g2p NAME [none]
  --lang LANG                  token lists go to data/<lang>_token_list [${lang}]
 Language model (ESPnet's lm_train; stages 6-9 and decoding with --use_lm true):
  --use_lm BOOL                train an LM, decode with beam search and the LM [${use_lm}]
  --lm_config FILE / --lm_args "..."  LM training configuration / extra LM training options
  --lm_tag TAG / --lm_exp DIR  LM experiment name / directory [from the config name]
  --lm_stats_dir DIR           LM statistics directory [${expdir}/lm_stats_<lang>_<token_type>...]
  --lm_train_text "F..."       "<id> <text>" files to learn from [data/<train_set>/text]
  --lm_dev_text F / --lm_test_text F  validation text / perplexity text
                               [${dumpdir}/raw/<valid_set>/text / ${dumpdir}/raw/<first test set>/text]
  --lm_fold_length N           fold length of LM text [${lm_fold_length}]
 Training:
  --asr_config FILE            training configuration (yaml)
  --asr_args "..."             extra training options, e.g. "--max_epoch 10"
  --asr_tag TAG / --asr_exp DIR  experiment name / directory [from the config name]
  --asr_stats_dir DIR          statistics directory [${expdir}/asr_stats_raw_<lang>_<token_type>...]
  --feats_normalize global_mvn|utterance_mvn [${feats_normalize}]
  --asr_speech_fold_length N / --asr_text_fold_length N [${asr_speech_fold_length} / ${asr_text_fold_length}]
  --asr_train_module MODULE    training entry point [${asr_train_module}]
  --pretrained_model PATH[:SRC:DST:EXCLUDED]
                               start training from this checkpoint, as ESPnet's asr.sh (the trainer's
                               --init_param: its tensors under SRC into module DST, without the
                               comma-separated EXCLUDED prefixes); checked before training against
                               its config.yaml: token list, Conformer encoder, shapes [none]
  --ignore_init_mismatch BOOL  leave out its tensors whose name or shape does not fit [${ignore_init_mismatch}]
 Decoding and scoring:
  --inference_asr_model FILE   checkpoint in the experiment directory [${inference_asr_model};
                               if absent: valid.<criterion>.ave*.pth, valid.*.best.pth, latest.pth]
  --size_checkpoints BOOL      decode (and pack) each size from the average of its own best epochs,
                               valid.cer_ctc_<size>.ave.pth beside valid.cer_ctc.ave.pth, and each
                               pruned depth D of --prune_depths from valid.cer_interctc_layer<D>.ave.pth
                               (the exit after block D: exact for strategy top, a proxy for the
                               others), where the config's best_model_criterion made one [${size_checkpoints}]
  --inference_config FILE / --inference_args "..." / --inference_tag TAG
                               decoding options; a beam_size in them selects beam search
  --batch_size N               utterances per greedy decoding batch [${batch_size}] (beam search
                               decodes one at a time: ESPnet 202511's Speech2Text refuses more)
  --subnets "S..."             sizes to decode and score, e.g. "16 32 48" [all sizes]
  --inference_lm FILE          LM checkpoint in the LM directory [${inference_lm}]
  --lm_weight_grid "W..."      tune lm_weight per size on --valid_set, e.g. "0.2 0.4 0.6" [none:
                               the config's lm_weight]
  --asr_inference_module MODULE  decoding entry point [espnet_dynenc.bin.ctc_greedy_inference;
                               espnet_dynenc.bin.ctc_beam_inference for beam search]
 Layer pruning on demand (stage 12 plans on --valid_set and decodes, stage 13 scores):
  --prune_depths "D..."        blocks to keep, e.g. "10 8 6" [none: no pruning]
  --prune_strategies "S..."    top every_other svcca greedy [${prune_strategies}]
  --prune_subnet N             size whose blocks are removed [the largest]
  --prune_metric ctc_loss|cer  dev score the greedy strategy minimises [${prune_metric}]
  --prune_max_utterances N     dev utterances that choose the blocks [${prune_max_utterances}]
 Packing (stage 14: export_subnet per decoded size, then ESPnet's pack):
  --skip_packing BOOL          skip stage 14 [${skip_packing}]
 Data sets:
  --train_set NAME --valid_set NAME --test_sets "NAME..."   directories under data/
EOF
)

run_args="$(printf '%q ' "$0" "$@")"
parse_options "$@"

# ----------------------------------------------------------------------- validation
# Everything is checked before the first stage starts, so a bad call marks nothing done.

is_int() { [[ $1 =~ ^[0-9]+$ ]]; }
is_number() { [[ $1 =~ ^[0-9]+([.][0-9]*)?$|^[.][0-9]+$ ]]; }

check_int() {
    is_int "$2" || usage_error "--$1 must be a whole number, got '$2'"
}

check_positive() {
    check_int "$1" "$2"
    [ "$2" -ge 1 ] || usage_error "--$1 must be at least 1, got '$2'"
}

check_bool() {
    [ "$2" = true ] || [ "$2" = false ] || usage_error "--$1 must be true or false, got '$2'"
}

check_choice() {
    local name=$1 value=$2 choice
    shift 2
    for choice in "$@"; do
        [ "${value}" = "${choice}" ] && return 0
    done
    usage_error "--${name} '${value}' is not supported (choose from: $*)"
}

check_existing_file() {
    [ -z "$2" ] || [ "$2" = none ] || [ -f "$2" ] || usage_error "--$1: file '$2' does not exist"
}

check_stage_range() {
    if ! is_int "${stage}" || [ "${stage}" -lt 1 ] || [ "${stage}" -gt 14 ]; then
        usage_error "unknown stage '${stage}' for --stage (stages are 1 to 14)"
    fi
    if ! is_int "${stop_stage}" || [ "${stop_stage}" -lt 1 ]; then
        usage_error "unknown stage '${stop_stage}' for --stop_stage (stages are 1 to 14)"
    fi
    [ "${stop_stage}" -le 14 ] || stop_stage=14
    [ "${stop_stage}" -ge "${stage}" ] || usage_error "--stop_stage ${stop_stage} comes before --stage ${stage}"
}

runs_stage() {
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]
}

check_options() {
    check_stage_range
    [ -n "${train_set}" ] || usage_error "--train_set is required"
    [ -n "${valid_set}" ] || usage_error "--valid_set is required"
    [ -n "${test_sets}" ] || usage_error "--test_sets is required"
    local name
    for name in nj inference_nj batch_size nbpe; do check_positive "${name}" "${!name}"; done
    [ -z "${inference_threads}" ] || check_positive inference_threads "${inference_threads}"
    for name in ngpu num_nodes asr_speech_fold_length asr_text_fold_length lm_fold_length; do
        check_int "${name}" "${!name}"
    done
    check_positive num_nodes "${num_nodes}"
    [[ ${train_hosts} =~ ^([A-Za-z0-9._-]+(:[0-9]+)*(,[A-Za-z0-9._-]+(:[0-9]+)*)*)?$ ]] ||
        usage_error "--train_hosts must be comma-separated host names (host[:gpu...]), got '${train_hosts}'"
    [ -z "${train_hosts}" ] || [ "${num_nodes}" -eq 1 ] || usage_error "give --train_hosts or --num_nodes, not both"
    check_bool gpu_inference "${gpu_inference}"
    check_bool use_lm "${use_lm}"
    check_bool skip_packing "${skip_packing}"
    check_bool size_checkpoints "${size_checkpoints}"
    check_bool ignore_init_mismatch "${ignore_init_mismatch}"
    local weight
    for weight in ${lm_weight_grid}; do
        is_number "${weight}" || usage_error "--lm_weight_grid: '${weight}' is not a number"
    done
    [ -z "${lm_weight_grid}" ] || [ "${use_lm}" = true ] || usage_error "--lm_weight_grid needs --use_lm true"
    check_choice feats_type "${feats_type}" raw
    check_choice audio_format "${audio_format}" wav flac
    check_choice token_type "${token_type}" bpe char
    check_choice bpemode "${bpemode}" unigram bpe
    check_choice feats_normalize "${feats_normalize}" global_mvn utterance_mvn
    for name in min_wav_duration max_wav_duration; do
        is_number "${!name}" || usage_error "--${name} must be a number of seconds, got '${!name}'"
    done
    [[ ${fs} =~ ^[0-9]+([.][0-9]+)?k?$ ]] || usage_error "--fs must look like 16k or 16000, got '${fs}'"
    [[ ${subnets} =~ ^[0-9,\ ]*$ ]] ||
        usage_error "--subnets must list whole numbers, e.g. \"16 32 48\", got '${subnets}'"
    [[ ${prune_depths} =~ ^[0-9\ ]*$ ]] ||
        usage_error "--prune_depths must list whole numbers, e.g. \"10 8 6\", got '${prune_depths}'"
    [ -z "${prune_subnet}" ] || check_int prune_subnet "${prune_subnet}"
    check_positive prune_max_utterances "${prune_max_utterances}"
    check_choice prune_metric "${prune_metric}" ctc_loss cer
    local strategy strategies="top every_other svcca greedy"
    [ -n "${prune_strategies// /}" ] || usage_error "--prune_strategies is empty (choose from: ${strategies})"
    # shellcheck disable=SC2086  # the choices are words
    for strategy in ${prune_strategies}; do check_choice prune_strategies "${strategy}" ${strategies}; done
    local factor
    for factor in ${speed_perturb_factors}; do
        is_number "${factor}" || usage_error "--speed_perturb_factors: '${factor}' is not a number"
    done
    check_existing_file asr_config "${asr_config}"
    check_existing_file inference_config "${inference_config}"
    [ "${use_lm}" = false ] || check_existing_file lm_config "${lm_config}"
    check_existing_file nlsyms_txt "${nlsyms_txt}"
    if runs_stage 1 && [ ! -x local/data.sh ]; then
        usage_error "stage 1 needs local/data.sh (executable) in $(pwd)"
    fi
}

check_options
for script in path.sh cmd.sh; do
    [ -e "${script}" ] ||
        usage_error "${script} not found in $(pwd): run asr.sh from a recipe directory (egs2/<corpus>/asr1)"
done
# shellcheck disable=SC1091
. ./path.sh
# shellcheck disable=SC1091
. ./cmd.sh
command -v "${python%% *}" >/dev/null || usage_error "--python: '${python}' not found"

# ------------------------------------------------------------------------ derived names
data_feats=${dumpdir}/raw
raw_train_set=${train_set}
[ -z "${speed_perturb_factors}" ] || train_set=${train_set}_sp
blank="<blank>"
oov="<unk>"
sos_eos="<sos/eos>"

if [ "${lang}" != noinfo ]; then
    token_listdir=data/${lang}_token_list
else
    token_listdir=data/token_list
fi
bpedir=${token_listdir}/bpe_${bpemode}${nbpe}
if [ "${token_type}" = bpe ]; then
    token_list=${bpedir}/tokens.txt
    bpemodel=${bpedir}/bpe.model
else
    token_list=${token_listdir}/char/tokens.txt
    bpemodel=none
fi

lang_token=${token_type}
[ "${lang}" = noinfo ] || lang_token=${lang}_${token_type}
[ "${token_type}" = bpe ] && lang_token+=${nbpe}
if [ -z "${asr_tag}" ]; then
    if [ -n "${asr_config}" ]; then
        asr_tag="$(basename "${asr_config}" .yaml)_${feats_type}_${lang_token}"
    else
        asr_tag="train_${feats_type}_${lang_token}"
    fi
    [ -z "${asr_args}" ] || asr_tag+="$(echo "${asr_args}" | sed -e "s/--/\_/g" -e "s/[ |=/]//g")"
    [ -z "${speed_perturb_factors}" ] || asr_tag+="_sp"
fi
if [ -z "${asr_stats_dir}" ]; then
    asr_stats_dir=${expdir}/asr_stats_${feats_type}_${lang_token}
    [ -z "${speed_perturb_factors}" ] || asr_stats_dir+="_sp"
fi
[ -n "${asr_exp}" ] || asr_exp=${expdir}/asr_${asr_tag}

config_opts=()
[ -z "${asr_config}" ] || config_opts=(--config "${asr_config}")

# the language model (ESPnet's names): exp/lm_<config>_<lang>_<token>, exp/lm_stats_<lang>_<token>
if [ -z "${lm_tag}" ]; then
    if [ -n "${lm_config}" ]; then
        lm_tag="$(basename "${lm_config}" .yaml)_${lang_token}"
    else
        lm_tag="train_${lang_token}"
    fi
    [ -z "${lm_args}" ] || lm_tag+="$(echo "${lm_args}" | sed -e "s/--/\_/g" -e "s/[ |=/]//g")"
fi
[ -n "${lm_stats_dir}" ] || lm_stats_dir=${expdir}/lm_stats_${lang_token}
[ -n "${lm_exp}" ] || lm_exp=${expdir}/lm_${lm_tag}
# the training transcripts once (a speed-perturbed set repeats every text for each factor)
[ -n "${lm_train_text}" ] || lm_train_text=data/${raw_train_set}/text
[ -n "${lm_dev_text}" ] || lm_dev_text=${data_feats}/${valid_set}/text
[ -n "${lm_test_text}" ] || lm_test_text=${data_feats}/${test_sets%% *}/text
lm_config_opts=()
[ -z "${lm_config}" ] || lm_config_opts=(--config "${lm_config}")
# what stage 6 writes and stages 7-9 read
lm_train_txt=${data_feats}/lm_train.txt
lm_dev_txt=${data_feats}/lm_dev.txt
lm_test_txt=${data_feats}/lm_test.txt

# the decoding, greedy or beam (with --use_lm true or a beam_size in the decoding options),
# and its entry point; check_decoding_setup settles both before any stage runs
decoding=greedy
inference_module=${asr_inference_module}
size_model_opts=() # every size's own checkpoint, when it has one (find_size_checkpoints)
depth_model_opts=() # every pruned depth's own checkpoint, when it has one (find_depth_checkpoints)

# decode_dir, the decoding directory exp/asr_<tag>/decode_<inference_tag>, is set here
# and nowhere else; its name follows ESPnet's convention, which espnet_dynenc.decode.outputs
# owns (the comparison reads decodings by it). Without --inference_tag the name ends with the
# checkpoint decoded, and a training run by this same call writes that checkpoint only in
# stage 11, so the stages from 12 on call this once they know it (resolve_inference_model).
derive_decode_dir() {
    local args=(name --model "${inference_model}" --decoding "${decoding}" --inference_config "${inference_config}"
        "--inference_args=${inference_args}" --inference_tag "${inference_tag}") name
    if [ "${use_lm}" = true ]; then
        args+=(--lm_exp "${lm_exp}" --inference_lm "${inference_lm}")
        [ -z "${lm_weight_grid}" ] || args+=(--lm_weight_tuned)
    fi
    [ "$((${#size_model_opts[@]} + ${#depth_model_opts[@]}))" -eq 0 ] || args+=(--per_size)
    name=$(run_helper espnet_dynenc.bin.decode_outputs "${args[@]}") ||
        fail "Stage ${current_stage}: cannot name the decoding directory"
    decode_dir=${asr_exp}/${name}
}

# the pruning plan of decoding directory $1 (stage 12 makes it, stage 13 reads its subnet);
# where it lies is espnet_dynenc.decode.outputs' to say
pruning_plan_of() {
    run_helper espnet_dynenc.bin.decode_outputs plan --decode_dir "$1" ||
        fail "Stage ${current_stage}: cannot name the pruning plan of $1"
}

helper="${python} -m"

# ----------------------------------------------------------------------- small helpers

# run a recipe helper module: run_helper espnet_dynenc.bin.<name> [args...]
run_helper() {
    # shellcheck disable=SC2086
    ${helper} "$@"
}

is_done() {
    [ -f "$1" ]
}

# mark_done MARKER [SETTINGS]: the time and, for work that depends on its settings, the line
# that names them (see is_current)
mark_done() {
    mkdir -p "$(dirname "$1")"
    { date '+%Y-%m-%dT%H:%M:%S'; [ $# -lt 2 ] || echo "$2"; } >"$1"
}

# is_current MARKER SETTINGS: whether the work MARKER marks is done and was done with SETTINGS
# (one line, written by mark_done). Work done with other settings is redone: a pruning plan
# for other depths, LM weights tuned with another plan, a decoding with another model, plan,
# LM weights or decoding options.
is_current() {
    is_done "$1" && [ "$(tail -n 1 "$1")" = "$2" ]
}

report_skip() {
    log_for_caller 1 "Stage ${current_stage}: $2 already done ($1 exists; delete it to redo)"
}

# fail unless every path exists; the first argument says which stage makes them
require_inputs() {
    local hint=$1 path missing=()
    shift
    for path in "$@"; do
        [ -e "${path}" ] || missing+=("${path}")
    done
    [ "${#missing[@]}" -eq 0 ] || fail "Stage ${current_stage}: missing input(s): ${missing[*]} (${hint})"
}

# non-empty lines of a file (what the helpers count as entries)
count_lines() {
    grep -c . "$1" || true
}

is_fit_set() {
    [ "$1" = "${train_set}" ] || [ "$1" = "${valid_set}" ]
}

# split a key file into <prefix>.1.scp ... <prefix>.N.scp
split_keys() {
    local source=$1 prefix=$2 parts=$3 outputs=() index
    for ((index = 1; index <= parts; index++)); do
        outputs+=("${prefix}.${index}.scp")
    done
    run_helper espnet_dynenc.bin.split_keys "${source}" "${outputs[@]}" ||
        fail "Stage ${current_stage}: cannot split ${source} into ${parts} parts"
}

# <dir>/run.sh reruns asr.sh from <stage> with this call's options (as ESPnet does)
write_resume_script() {
    local dir=$1 from=$2
    mkdir -p "${dir}"
    {
        echo "#!/usr/bin/env bash"
        echo "# Rerun asr.sh from stage ${from} with the options of $(date '+%Y-%m-%d %H:%M')"
        echo "cd $(printf '%q' "$(pwd)") && ${run_args}--stage ${from} \"\$@\""
    } >"${dir}/run.sh"
    chmod +x "${dir}/run.sh"
}

lines_whose_key_is_in() {
    # the lines of file $2 whose first field is a key in file $1
    awk 'NR == FNR { keep[$1]; next } $1 in keep' "$1" "$2"
}

spk2utt_from_utt2spk() {
    awk '{ if ($2 in u) u[$2] = u[$2] " " $1; else u[$2] = $1 } END { for (s in u) print s, u[s] }' "$1" | sort
}

# ------------------------------------------------------------------------------ stages

stage_1() {
    local marker=data/.stage1.done dset
    if is_done "${marker}"; then report_skip "${marker}" "data preparation"; return; fi
    log "Stage 1: data preparation: local/data.sh ${local_data_opts}"
    # shellcheck disable=SC2086
    # python and use_lm go to local/data.sh's environment (its defaults: the LM text with an LM)
    python="${python}" use_lm="${use_lm}" local/data.sh ${local_data_opts} ||
        fail "Stage 1: local/data.sh ${local_data_opts} exited with status $?"
    for dset in "${raw_train_set}" "${valid_set}" ${test_sets}; do
        require_inputs "local/data.sh did not write them" data/"${dset}"/{wav.scp,text,utt2spk}
    done
    mark_done "${marker}"
}

stage_2() {
    if [ -z "${speed_perturb_factors}" ]; then
        log "Stage 2: skipped (no --speed_perturb_factors)"
        return
    fi
    local src=data/${raw_train_set} dst=data/${train_set}
    local marker=${dst}/.done
    if is_done "${marker}"; then report_skip "${marker}" "speed perturbation"; return; fi
    require_inputs "run stage 1 first" "${src}"/{wav.scp,text,utt2spk}
    log "Stage 2: speed perturbation by ${speed_perturb_factors}: ${src} -> ${dst}"
    rm -rf "${dst}"
    run_helper espnet_dynenc.bin.perturb_data_dir --factors "${speed_perturb_factors}" \
        --python "$(command -v "${python%% *}")" "${src}" "${dst}" ||
        fail "Stage 2: speed perturbation of ${src} failed"
    mark_done "${marker}"
}

stage_3() {
    # shellcheck disable=SC2206  # test_sets is a space-separated list
    local dset sets=("${train_set}" "${valid_set}" ${test_sets}) index=0
    for dset in "${sets[@]}"; do
        index=$((index + 1))
        log "Stage 3 [${index}/${#sets[@]}]: format data/${dset}"
        if is_fit_set "${dset}"; then
            format_set "${dset}" "${data_feats}/org/${dset}"
        else
            format_set "${dset}" "${data_feats}/${dset}"
        fi
    done
}

format_set() {
    local dset=$1 dest=$2 src=data/$1 keys_source segments_opts=() count jobs
    if is_done "${dest}/.done"; then report_skip "${dest}/.done" "formatting of ${dset}"; return; fi
    require_inputs "run stage 1 (and 2 for ${train_set}) first" "${src}"/{wav.scp,text,utt2spk}
    keys_source=${src}/wav.scp
    if [ -f "${src}/segments" ]; then
        keys_source=${src}/segments
        segments_opts=(--segments "${src}/segments")
    fi
    count=$(count_lines "${keys_source}")
    [ "${count}" -gt 0 ] || fail "Stage 3: ${keys_source} is empty"
    jobs=$(min "${nj}" "${count}")
    rm -rf "${dest}"
    mkdir -p "${dest}/logs"
    split_keys "${keys_source}" "${dest}/logs/keys" "${jobs}"
    log "Stage 3: ${count} utterances, ${jobs} job(s) -> ${dest} (logs: ${dest}/logs/format_audio.*.log)"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${jobs}" "${dest}/logs/format_audio.JOB.log" \
        ${helper} espnet_dynenc.bin.format_audio \
        --wav_scp "${src}/wav.scp" "${segments_opts[@]}" --keys "${dest}/logs/keys.JOB.scp" \
        --fs "${fs}" --audio_format "${audio_format}" --out_dir "${dest}/data/format.JOB" \
        --out_wav_scp "${dest}/logs/wav.JOB.scp" --out_num_samples "${dest}/logs/utt2num_samples.JOB" ||
        fail "Stage 3: formatting ${src} failed; see ${dest}/logs/format_audio.*.log"
    finish_formatted_set "${src}" "${dest}" "${jobs}"
    mark_done "${dest}/.done"
}

finish_formatted_set() {
    local src=$1 dest=$2 jobs=$3 index
    for ((index = 1; index <= jobs; index++)); do cat "${dest}/logs/wav.${index}.scp"; done | sort >"${dest}/wav.scp"
    for ((index = 1; index <= jobs; index++)); do cat "${dest}/logs/utt2num_samples.${index}"; done |
        sort >"${dest}/utt2num_samples"
    lines_whose_key_is_in "${dest}/wav.scp" "${src}/text" >"${dest}/text"
    lines_whose_key_is_in "${dest}/wav.scp" "${src}/utt2spk" >"${dest}/utt2spk"
    spk2utt_from_utt2spk "${dest}/utt2spk" >"${dest}/spk2utt"
    echo "${feats_type}" >"${dest}/feats_type"
}

stage_4() {
    local dset
    for dset in "${train_set}" "${valid_set}"; do
        filter_set "${dset}"
    done
    write_bpe_train_text
}

filter_set() {
    local src=${data_feats}/org/$1 dst=${data_feats}/$1
    if is_done "${dst}/.done"; then report_skip "${dst}/.done" "filtering of $1"; return; fi
    require_inputs "run stage 3 first" "${src}/.done"
    log "Stage 4: keep utterances of ${min_wav_duration}-${max_wav_duration} s with text: ${src} -> ${dst}"
    rm -rf "${dst}"
    run_helper espnet_dynenc.bin.filter_data --min_seconds "${min_wav_duration}" \
        --max_seconds "${max_wav_duration}" --fs "${fs}" "${src}" "${dst}" ||
        fail "Stage 4: filtering ${src} failed"
    mark_done "${dst}/.done"
}

write_bpe_train_text() {
    local out=${data_feats}/bpe_train.txt text=${bpe_train_text:-${data_feats}/${train_set}/text}
    local marker=${data_feats}/.bpe_train.txt.done
    if is_done "${marker}"; then report_skip "${marker}" "token training text"; return; fi
    require_inputs "run stage 4 for ${train_set} first or fix --bpe_train_text" "${text}"
    log "Stage 4: token training text ${out} from ${text}"
    awk 'NF > 1' "${text}" >"${out}.tmp"
    mv "${out}.tmp" "${out}"
    [ -s "${out}" ] || fail "Stage 4: ${text} has no transcripts"
    mark_done "${marker}"
}

stage_5() {
    local dir
    dir=$(dirname "${token_list}")
    if is_done "${dir}/.done"; then report_skip "${dir}/.done" "token list"; return; fi
    require_inputs "run stage 4 first" "${data_feats}/.bpe_train.txt.done"
    rm -rf "${dir}"
    mkdir -p "${dir}"
    if [ "${token_type}" = bpe ]; then
        log "Stage 5: sentencepiece ${bpemode} model of ${nbpe} tokens -> ${dir} (log: ${dir}/train.log)"
        run_helper espnet_dynenc.bin.make_bpe_model --text "${data_feats}/bpe_train.txt" \
            --vocab_size "${nbpe}" --model_type "${bpemode}" --character_coverage "${bpe_char_cover}" \
            --input_sentence_size "${bpe_input_sentence_size}" --user_defined_symbols "${bpe_nlsyms}" \
            --out_dir "${dir}" >"${dir}/train.log" 2>&1 ||
            fail "Stage 5: sentencepiece training failed; see ${dir}/train.log"
    else
        log "Stage 5: character list -> ${token_list} (log: ${dir}/tokenize.log)"
        ${python} -m espnet2.bin.tokenize_text --token_type char --input "${data_feats}/bpe_train.txt" \
            --output "${token_list}" --field 2- --non_linguistic_symbols "${nlsyms_txt}" \
            --cleaner "${cleaner}" --g2p "${g2p}" --write_vocabulary true \
            --add_symbol "${blank}:0" --add_symbol "${oov}:1" --add_symbol "${sos_eos}:-1" \
            >"${dir}/tokenize.log" 2>&1 || fail "Stage 5: character list failed; see ${dir}/tokenize.log"
    fi
    log "Stage 5: $(count_lines "${token_list}") tokens in ${token_list}"
    mark_done "${dir}/.done"
}

announce_lm_stages() {
    log "Stages 6-9: skipped (language model stages; --use_lm false: decoding uses no language model)"
}

# Stage 6: the LM's text: the non-empty lines of --lm_train_text (one or more files, e.g. the
# training transcripts and a text corpus), --lm_dev_text and --lm_test_text
stage_6() {
    local marker=${data_feats}/.lm_text.done texts
    if is_done "${marker}"; then report_skip "${marker}" "LM text"; return; fi
    read -r -a texts <<<"${lm_train_text}"
    require_inputs "run stages 1-4 first, or fix --lm_train_text, --lm_dev_text or --lm_test_text" \
        "${texts[@]}" "${lm_dev_text}" "${lm_test_text}"
    log "Stage 6: LM text ${lm_train_txt} from ${lm_train_text}"
    mkdir -p "${data_feats}"
    lines_with_text "${lm_train_txt}" "${texts[@]}"
    lines_with_text "${lm_dev_txt}" "${lm_dev_text}"
    lines_with_text "${lm_test_txt}" "${lm_test_text}"
    log "Stage 6: $(count_lines "${lm_train_txt}") training, $(count_lines "${lm_dev_txt}") validation and" \
        "$(count_lines "${lm_test_txt}") test lines"
    mark_done "${marker}"
}

# lines_with_text OUT FILE...: the "<id> <text>" lines of the files that have text, into OUT
lines_with_text() {
    local out=$1
    shift
    awk 'NF > 1' "$@" >"${out}.tmp" || fail "Stage 6: cannot read $*"
    mv "${out}.tmp" "${out}"
    [ -s "${out}" ] || fail "Stage 6: $* has no text"
}

# Stage 7: the LM's statistics (text shapes), ESPnet's lm_train --collect_stats in --nj shards
stage_7() {
    local logdir=${lm_stats_dir}/logdir jobs index text_opts aggregate_opts=()
    if is_done "${lm_stats_dir}/.done"; then report_skip "${lm_stats_dir}/.done" "LM statistics"; return; fi
    require_inputs "run stages 5-6 first" "${data_feats}/.lm_text.done" "$(dirname "${token_list}")/.done"
    jobs=$(min "${nj}" "$(count_lines "${lm_train_txt}")" "$(count_lines "${lm_dev_txt}")")
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    split_keys "${lm_train_txt}" "${logdir}/train" "${jobs}"
    split_keys "${lm_dev_txt}" "${logdir}/dev" "${jobs}"
    write_resume_script "${lm_stats_dir}" 7
    mapfile -t text_opts < <(text_processing_opts)
    log "Stage 7: LM statistics of ${lm_train_txt} and ${lm_dev_txt}, ${jobs} job(s) (logs: ${logdir}/stats.*.log)"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${jobs}" "${logdir}/stats.JOB.log" \
        ${python} -m espnet2.bin.lm_train --collect_stats true "${text_opts[@]}" \
        --train_data_path_and_name_and_type "${lm_train_txt},text,text" \
        --valid_data_path_and_name_and_type "${lm_dev_txt},text,text" \
        --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/dev.JOB.scp" \
        --output_dir "${logdir}/stats.JOB" "${lm_config_opts[@]}" ${lm_args} ||
        { tail -n 20 "${logdir}/stats.1.log" >&2; fail "Stage 7: LM collect_stats failed; see ${logdir}/stats.*.log"; }
    for ((index = 1; index <= jobs; index++)); do aggregate_opts+=(--input_dir "${logdir}/stats.${index}"); done
    ${python} -m espnet2.bin.aggregate_stats_dirs "${aggregate_opts[@]}" --output_dir "${lm_stats_dir}" \
        >"${logdir}/aggregate.log" 2>&1 || fail "Stage 7: aggregating LM statistics failed; see ${logdir}/aggregate.log"
    append_token_count "${lm_stats_dir}" train
    append_token_count "${lm_stats_dir}" valid
    mark_done "${lm_stats_dir}/.done"
}

# where ESPnet's launcher runs the training processes of stages 8 and 11, one option per line:
# --train_hosts (over ssh) or --num_nodes
launcher_placement() {
    if [ -n "${train_hosts}" ]; then
        printf '%s\n' --host "${train_hosts}"
    else
        printf '%s\n' --num_nodes "${num_nodes}"
    fi
}

# Stage 8: LM training through ESPnet's launcher (ESPnet's lm_train), resumable like stage 11
stage_8() {
    local marker=${lm_exp}/.train.done text_opts placement
    if is_done "${marker}"; then report_skip "${marker}" "LM training"; return; fi
    require_inputs "run stage 7 first" "${lm_stats_dir}/.done"
    mapfile -t text_opts < <(text_processing_opts)
    mapfile -t placement < <(launcher_placement)
    write_resume_script "${lm_exp}" 8
    log "Stage 8: training the language model ${lm_exp} on ${lm_train_txt} (log: ${lm_exp}/train.log)"
    start_progress "${lm_exp}/train.log"
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --name $(basename "${lm_exp}")" \
        --log "${lm_exp}/train.log" --ngpu "${ngpu}" "${placement[@]}" \
        --init_file_prefix "${lm_exp}/.dist_init_" --multiprocessing_distributed true -- \
        ${python} -m espnet2.bin.lm_train "${text_opts[@]}" \
        --train_data_path_and_name_and_type "${lm_train_txt},text,text" \
        --train_shape_file "${lm_stats_dir}/train/text_shape.${token_type}" \
        --valid_data_path_and_name_and_type "${lm_dev_txt},text,text" \
        --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" \
        --resume true --fold_length "${lm_fold_length}" --output_dir "${lm_exp}" "${lm_config_opts[@]}" ${lm_args} ||
        { stop_progress; fail "Stage 8: LM training failed; see ${lm_exp}/train.log"; }
    stop_progress
    compgen -G "${lm_exp}/*.pth" >/dev/null || fail "Stage 8: LM training wrote no checkpoint into ${lm_exp}"
    mark_done "${marker}"
}

# Stage 9: the LM's perplexity on the test text (ESPnet's lm_calc_perplexity)
stage_9() {
    local dir=${lm_exp}/perplexity_test gpus=0
    if is_done "${dir}/.done"; then
        report_skip "${dir}/.done" "LM perplexity ($(cat "${dir}/ppl" 2>/dev/null || echo '?'))"
        return
    fi
    require_inputs "run stages 6-8 first, or set --lm_exp and --inference_lm" \
        "${lm_exp}/config.yaml" "${lm_exp}/${inference_lm}" "${lm_test_txt}"
    [ "${ngpu}" -eq 0 ] || gpus=1
    rm -rf "${dir}"
    mkdir -p "${dir}"
    log "Stage 9: perplexity of ${lm_exp}/${inference_lm} on ${lm_test_txt} (log: ${dir}/lm_calc_perplexity.log)"
    ${cuda_cmd} --gpu "${gpus}" "${dir}/lm_calc_perplexity.log" \
        ${python} -m espnet2.bin.lm_calc_perplexity --ngpu "${gpus}" \
        --data_path_and_name_and_type "${lm_test_txt},text,text" --train_config "${lm_exp}/config.yaml" \
        --model_file "${lm_exp}/${inference_lm}" --output_dir "${dir}" ||
        fail "Stage 9: perplexity failed; see ${dir}/lm_calc_perplexity.log"
    log "Stage 9: perplexity of ${lm_test_text}: $(cat "${dir}/ppl")"
    mark_done "${dir}/.done"
}

# options every ESPnet ASR task call gets (as ESPnet's asr.sh passes them)
text_processing_opts() {
    printf '%s\n' --use_preprocessor true --bpemodel "${bpemodel}" --token_type "${token_type}" \
        --token_list "${token_list}" --non_linguistic_symbols "${nlsyms_txt}" \
        --cleaner "${cleaner}" --g2p "${g2p}"
}

stage_10() {
    local train_dir=${data_feats}/${train_set} valid_dir=${data_feats}/${valid_set}
    local logdir=${asr_stats_dir}/logdir jobs index text_opts aggregate_opts=()
    if is_done "${asr_stats_dir}/.done"; then report_skip "${asr_stats_dir}/.done" "statistics"; return; fi
    require_inputs "run stages 3-5 first" "${train_dir}/.done" "${valid_dir}/.done" "$(dirname "${token_list}")/.done"
    jobs=$(min "${nj}" "$(count_lines "${train_dir}/wav.scp")" "$(count_lines "${valid_dir}/wav.scp")")
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    split_keys "${train_dir}/wav.scp" "${logdir}/train" "${jobs}"
    split_keys "${valid_dir}/wav.scp" "${logdir}/valid" "${jobs}"
    write_resume_script "${asr_stats_dir}" 10
    mapfile -t text_opts < <(text_processing_opts)
    log "Stage 10: statistics of ${train_dir} and ${valid_dir}, ${jobs} job(s) (logs: ${logdir}/stats.*.log)"
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${jobs}" "${logdir}/stats.JOB.log" \
        ${python} -m "${asr_train_module}" --collect_stats true "${text_opts[@]}" \
        --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound" \
        --train_data_path_and_name_and_type "${train_dir}/text,text,text" \
        --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound" \
        --valid_data_path_and_name_and_type "${valid_dir}/text,text,text" \
        --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
        --output_dir "${logdir}/stats.JOB" --frontend_conf fs="${fs}" "${config_opts[@]}" ${asr_args} ||
        { tail -n 20 "${logdir}/stats.1.log" >&2; fail "Stage 10: collect_stats failed; see ${logdir}/stats.*.log"; }
    for ((index = 1; index <= jobs; index++)); do aggregate_opts+=(--input_dir "${logdir}/stats.${index}"); done
    ${python} -m espnet2.bin.aggregate_stats_dirs "${aggregate_opts[@]}" --output_dir "${asr_stats_dir}" \
        >"${logdir}/aggregate.log" 2>&1 || fail "Stage 10: aggregating statistics failed; see ${logdir}/aggregate.log"
    append_token_count "${asr_stats_dir}" train
    append_token_count "${asr_stats_dir}" valid
    mark_done "${asr_stats_dir}/.done"
}

# <stats_dir>/<train|valid>/text_shape.<token_type>: text_shape with the vocabulary size
# appended (ESPnet's batch bins)
append_token_count() {
    awk -v N="$(count_lines "${token_list}")" '{ print $0 "," N }' "$1/$2/text_shape" \
        >"$1/$2/text_shape.${token_type}"
}

stage_11() {
    local train_dir=${data_feats}/${train_set} valid_dir=${data_feats}/${valid_set} text_opts model placement
    local marker=${asr_exp}/.train.done init_opts=(--ignore_init_mismatch "${ignore_init_mismatch}")
    if is_done "${marker}"; then report_skip "${marker}" "training"; return; fi
    require_inputs "run stage 10 first" "${asr_stats_dir}/.done"
    if [ -n "${pretrained_model}" ]; then
        [ -n "${pretrained_summary}" ] || pretrained_summary=$(check_pretrained_model) || exit 1
        log "Stage 11: starting from --pretrained_model ${pretrained_model}: ${pretrained_summary}"
        init_opts+=(--init_param "${pretrained_model}")
    fi
    mapfile -t text_opts < <(text_processing_opts)
    mapfile -t model < <(model_opts)
    mapfile -t placement < <(launcher_placement)
    write_resume_script "${asr_exp}" 11
    log "Stage 11: training ${asr_exp} on ${train_dir} (log: ${asr_exp}/train.log)"
    start_progress "${asr_exp}/train.log"
    # shellcheck disable=SC2086
    ${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --name $(basename "${asr_exp}")" \
        --log "${asr_exp}/train.log" --ngpu "${ngpu}" "${placement[@]}" \
        --init_file_prefix "${asr_exp}/.dist_init_" --multiprocessing_distributed true -- \
        ${python} -m "${asr_train_module}" "${text_opts[@]}" \
        --train_data_path_and_name_and_type "${train_dir}/wav.scp,speech,sound" \
        --train_data_path_and_name_and_type "${train_dir}/text,text,text" \
        --train_shape_file "${asr_stats_dir}/train/speech_shape" \
        --train_shape_file "${asr_stats_dir}/train/text_shape.${token_type}" \
        --valid_data_path_and_name_and_type "${valid_dir}/wav.scp,speech,sound" \
        --valid_data_path_and_name_and_type "${valid_dir}/text,text,text" \
        --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
        --valid_shape_file "${asr_stats_dir}/valid/text_shape.${token_type}" \
        --resume true --fold_length "$((asr_speech_fold_length * 100))" --fold_length "${asr_text_fold_length}" \
        "${init_opts[@]}" --output_dir "${asr_exp}" "${model[@]}" ${asr_args} ||
        { stop_progress; fail "Stage 11: training failed; see ${asr_exp}/train.log"; }
    stop_progress
    compgen -G "${asr_exp}/*.pth" >/dev/null || fail "Stage 11: training wrote no checkpoint into ${asr_exp}"
    mark_done "${marker}"
}

# the options of stage 11 that decide which model ESPnet builds, one per line (--asr_args follow them)
model_opts() {
    printf '%s\n' --frontend_conf "fs=${fs}"
    if [ "${feats_normalize}" = global_mvn ]; then
        printf '%s\n' --normalize global_mvn --normalize_conf "stats_file=${asr_stats_dir}/train/feats_stats.npz"
    else
        printf '%s\n' --normalize "${feats_normalize}"
    fi
    [ "${#config_opts[@]}" -eq 0 ] || printf '%s\n' "${config_opts[@]}"
}

# --pretrained_model against the model stage 11 builds (espnet_dynenc.bin.check_pretrained_model):
# prints what loads where; on a problem, says it (as a usage error before any stage, as the
# failure of stage 11 once stages run) and returns 1
check_pretrained_model() {
    local opts answer
    mapfile -t opts < <(model_opts)
    # shellcheck disable=SC2086
    if answer=$(run_helper espnet_dynenc.bin.check_pretrained_model --pretrained_model "${pretrained_model}" \
        --ignore_init_mismatch "${ignore_init_mismatch}" --token_list "${token_list}" \
        -- "${opts[@]}" ${asr_args} 2>&1); then
        tail -n 1 <<<"${answer}"
        return 0
    fi
    answer=$(tail -n 1 <<<"${answer}" | sed -e 's/^check_pretrained_model: error: //')
    if [ -n "${current_stage}" ]; then
        log "error: Stage ${current_stage}: ${answer}" >&2
    else
        echo "asr.sh: error: ${answer}" >&2
    fi
    return 1
}

# Training progress on the console (epochs, scores, estimate of the rest) while the
# launcher writes everything into the log; stop_progress prints what is left and ends it.
start_progress() {
    # a simple command, so that $! is the helper itself and TERM reaches it
    # shellcheck disable=SC2086
    ${python} -m espnet_dynenc.bin.training_progress --log "$1" --watch_pid $$ --prefix "Stage ${current_stage}: " &
    progress_pid=$!
}

stop_progress() {
    [ -n "${progress_pid:-}" ] || return 0
    kill -TERM "${progress_pid}" 2>/dev/null || true
    wait "${progress_pid}" 2>/dev/null || true
    progress_pid=
}

# The checkpoint to decode: --inference_asr_model if it exists; when it was left at its
# default, whatever averaged or best model the trainer wrote (criteria differ by config).
resolve_inference_model() {
    [ -z "${inference_model:-}" ] || return 0
    local pattern found
    if [ -e "${asr_exp}/${inference_asr_model}" ]; then
        inference_model=${inference_asr_model}
    elif option_given inference_asr_model; then
        fail "Stage ${current_stage}: --inference_asr_model: ${asr_exp}/${inference_asr_model} does not exist"
    else
        for pattern in "valid.cer_ctc.ave_*best.pth" "valid.loss.ave.pth" "valid.loss.ave_*best.pth" \
            "valid.*.ave.pth" "valid.*.ave_*best.pth" "valid.cer_ctc.best.pth" "valid.*.best.pth" "latest.pth"; do
            found=$(compgen -G "${asr_exp}/${pattern}" | sort | head -n 1 || true)
            [ -z "${found}" ] || break
        done
        [ -n "${found}" ] ||
            fail "Stage ${current_stage}: no checkpoint in ${asr_exp} (run stage 11 or set --inference_asr_model)"
        inference_model=$(basename "${found}")
        log "Stage ${current_stage}: ${inference_asr_model} is not in ${asr_exp}; decoding ${inference_model}"
    fi
    find_size_checkpoints
    mapfile -t depth_model_opts < <(find_depth_checkpoints "${inference_model}" "${prune_depths}")
    derive_decode_dir
}

# size_model_opts: "--size_model_file <size>=<file>" for every size (of --subnets, when
# given) that has its own checkpoint: with --size_checkpoints true and a decoded checkpoint
# valid.<criterion>.<rest> (criterion cer_ctc or loss_ctc, the statistics supernet_ctc
# reports per size), the file valid.<criterion>_<size>.<rest> that ESPnet's averaging
# wrote for a best_model_criterion [valid, <criterion>_<size>, min].
find_size_checkpoints() {
    local prefix suffix file size
    size_model_opts=()
    [ "${size_checkpoints}" = true ] || return 0
    [[ ${inference_model} =~ ^(valid\.(cer_ctc|loss_ctc))(\..+)$ ]] || return 0
    prefix=${BASH_REMATCH[1]} suffix=${BASH_REMATCH[3]}
    for file in "${asr_exp}/${prefix}"_*"${suffix}"; do
        [ -e "${file}" ] || continue
        size=${file#"${asr_exp}/${prefix}_"}
        size=${size%"${suffix}"}
        [[ ${size} =~ ^[0-9]+$ ]] || continue
        [ -z "${subnets}" ] || [[ " ${subnets//,/ } " == *" ${size} "* ]] || continue
        size_model_opts+=(--size_model_file "${size}=${file}")
    done
}

# find_depth_checkpoints CHECKPOINT DEPTHS: "--depth_model_file <depth>=<file>" (one word a line)
# for every depth of DEPTHS (--prune_depths) that has its own checkpoint: with --size_checkpoints
# true and CHECKPOINT valid.<kind>_ctc.<rest> (kind cer or loss), the file
# valid.<kind>_interctc_layer<depth>.<rest> that ESPnet's averaging wrote for a
# best_model_criterion [valid, <kind>_interctc_layer<depth>, min]: the epochs best by the
# intermediate CTC exit after block <depth>, which supernet_ctc reports for each layer of
# interctc_layer_idx. A pruned depth keeps <depth> blocks: that exit is exactly the encoder the
# strategy top keeps, and a proxy for the other strategies, which keep other blocks.
find_depth_checkpoints() {
    local checkpoint=$1 depths=$2 prefix suffix depth file
    [ "${size_checkpoints}" = true ] || return 0
    [[ ${checkpoint} =~ ^valid\.(cer|loss)_ctc(\..+)$ ]] || return 0
    prefix=valid.${BASH_REMATCH[1]}_interctc_layer suffix=${BASH_REMATCH[2]}
    for depth in ${depths//,/ }; do
        file=${asr_exp}/${prefix}${depth}${suffix}
        [ -e "${file}" ] || continue
        printf '%s\n' --depth_model_file "${depth}=${file}"
    done
}

# the checkpoint size $1 is decoded and packed from (see find_size_checkpoints)
size_checkpoint() {
    local index
    for ((index = 1; index < ${#size_model_opts[@]}; index += 2)); do
        if [ "${size_model_opts[index]%%=*}" = "$1" ]; then
            basename "${size_model_opts[index]#*=}"
            return
        fi
    done
    echo "${inference_model}"
}

stage_12() {
    resolve_inference_model
    require_inputs "run stage 11 first" "${asr_exp}/config.yaml" "${asr_exp}/${inference_model}"
    if [ "${use_lm}" = true ]; then
        require_inputs "run stages 6-9 first, or set --lm_exp and --inference_lm" \
            "${lm_exp}/config.yaml" "${lm_exp}/${inference_lm}"
    fi
    write_resume_script "${decode_dir}" 12
    local plan= weights=${decode_dir}/lm_weights.yaml what dset decoder=()
    if [ -n "${prune_depths}" ]; then
        plan=$(pruning_plan_of "${decode_dir}")
        plan_pruning "${plan}" "${inference_model}"
    fi
    what=$(describe_decoding "${decoding}" "${inference_model}")
    mapfile -t decoder < <(decoder_options "${inference_module}" "${decoding}" "${inference_model}" "${plan}")
    if [ -n "${lm_weight_grid}" ]; then
        tune_lm_weight "${decode_dir}/lm_weight_tuning" "${weights}" "${what}" "${decoder[@]}"
        decoder+=(--lm_weights "${weights}")
    fi
    for dset in ${test_sets}; do
        decode_set "${dset}" "${decode_dir}/${dset}" "${what}" "${decoder[@]}"
    done
}

# decoder_options MODULE DECODING CHECKPOINT PLAN: the decoding entry point (first line), then
# its options, one a line, that decide what every data set's decoding makes: the checkpoint in
# the experiment directory (and each size's own, see find_size_checkpoints), the pruning plan
# (none: empty), the LM, the decoding options and, for greedy decoding, the batch size.
# --subnets is left to decode_set: a decoding that has the sizes asked for is kept.
decoder_options() {
    local module=$1 decoding=$2 checkpoint=$3 plan=$4 words=()
    printf '%s\n' "${module}" --asr_train_config "${asr_exp}/config.yaml" --asr_model_file "${asr_exp}/${checkpoint}"
    [ "${#size_model_opts[@]}" -eq 0 ] || printf '%s\n' "${size_model_opts[@]}"
    [ -z "${plan}" ] || printf '%s\n' --pruning_plan "${plan}"
    [ -z "${plan}" ] || [ "${#depth_model_opts[@]}" -eq 0 ] || printf '%s\n' "${depth_model_opts[@]}"
    [ -z "${inference_config}" ] || printf '%s\n' --config "${inference_config}"
    if [ "${decoding}" = greedy ]; then
        printf '%s\n' --batch_size "${batch_size}"
    elif [ "${use_lm}" = true ]; then # beam search decodes one utterance at a time
        printf '%s\n' --lm_train_config "${lm_exp}/config.yaml" --lm_file "${lm_exp}/${inference_lm}"
    fi
    read -r -a words <<<"${inference_args}"
    [ "${#words[@]}" -eq 0 ] || printf '%s\n' "${words[@]}"
}

# describe_decoding DECODING CHECKPOINT: what the log says a data set is decoded with
describe_decoding() {
    local what="greedy CTC"
    if [ "$1" != greedy ]; then
        what="beam search"
        [ "${use_lm}" = false ] || what+=" + LM"
    fi
    local own=("${size_model_opts[@]}" "${depth_model_opts[@]}")
    echo "$2 ${own[*]:+(own checkpoints: ${own[*]}) }(${what})"
}

# decoding_settings MODULE [OPTION...]: the one line that names a decoding (see is_current): the
# entry point, its options and the content of the files they name whose content changes the
# outputs (checkpoints, pruning plan, LM weights, decoding config): a checkpoint written again
# (e.g. averaged again by espnet_dynenc.bin.average_checkpoints) is decoded again
decoding_settings() {
    local line="module=$1" option previous=
    shift
    for option in "$@"; do
        line+=" ${option}"
        case "${previous}" in
            --asr_model_file | --pruning_plan | --lm_weights | --config) line+="[$(file_digest "${option}")]" ;;
            --size_model_file | --depth_model_file) line+="[$(file_digest "${option#*=}")]" ;;
        esac
        previous=${option}
    done
    echo "${line}"
}

# file_digest FILE: a checksum and the size of FILE ("none" when it is absent)
file_digest() {
    if [ -f "$1" ]; then
        cksum <"$1" | cut -d ' ' -f 1,2
    else
        echo none
    fi
}

# tune_lm_weight DIR WEIGHTS WHAT MODULE [OPTION...]: --lm_weight_grid: decode --valid_set into
# DIR with every weight (every size and pruned depth, as the test sets, with the decoder
# MODULE and its OPTIONs), then keep each output's best weight in WEIGHTS (lm_weights.yaml).
# Weights tuned with another grid, dev set, --subnets or decoder are tuned again.
tune_lm_weight() {
    local dir=$1 weights=$2 what=$3 weight settings
    shift 3
    settings="grid=${lm_weight_grid} dev=${valid_set} subnets=${subnets} $(decoding_settings "$@")"
    if is_current "${dir}/.done" "${settings}" && [ -f "${weights}" ]; then
        report_skip "${dir}/.done" "lm_weight tuning (the weights are in ${weights})"
        return
    fi
    rm -rf "${dir}" "${weights}"
    for weight in ${lm_weight_grid}; do
        log "Stage 12: lm_weight ${weight} on ${valid_set} (tuning ${lm_weight_grid})"
        decode_set "${valid_set}" "${dir}/${weight}/${valid_set}" "${what}" "$@" --lm_weight "${weight}"
    done
    run_helper espnet_dynenc.bin.choose_lm_weight --tuning_dir "${dir}" --dev_set "${valid_set}" \
        --grid "${lm_weight_grid}" --ref_text "${data_feats}/${valid_set}/text" --output "${weights}" \
        --cleaner "${cleaner}" --non_linguistic_symbols "${nlsyms_txt}" ||
        fail "Stage 12: cannot choose the LM weights from ${dir}"
    mark_done "${dir}/.done" "${settings}"
}

# what a pruning plan of CHECKPOINT is made with: a plan made with other options, or of a
# checkpoint written again since, is made again
pruning_settings() {
    echo "depths=${prune_depths} strategies=${prune_strategies} subnet=${prune_subnet:-largest}" \
        "metric=${prune_metric} utterances=${prune_max_utterances} model=$1[$(file_digest "${asr_exp}/$1")]"
}

# plan_pruning PLAN CHECKPOINT: PLAN (<decode_dir>/pruning/pruning_plan.yaml), the blocks to
# remove per strategy and depth, chosen on the dev set for CHECKPOINT
plan_pruning() {
    local plan=$1 checkpoint=$2 dir data=${data_feats}/${valid_set} opts=() runner=${decode_cmd} gpus=0 settings
    dir=$(dirname "${plan}")
    settings=$(pruning_settings "${checkpoint}")
    if is_current "${dir}/.done" "${settings}" && [ -f "${plan}" ]; then
        report_skip "${dir}/.done" "pruning plan"
        return
    fi
    require_inputs "run stage 4 first" "${data}/wav.scp" "${data}/text"
    rm -rf "${dir}"
    mkdir -p "${dir}"
    if [ "${gpu_inference}" = true ]; then runner=${cuda_cmd}; gpus=1; fi
    [ -z "${prune_subnet}" ] || opts+=(--subnet "${prune_subnet}")
    log "Stage 12: pruning plan on ${data} for depths ${prune_depths} (${prune_strategies}) (log: ${dir}/plan.log)"
    # shellcheck disable=SC2086
    ${runner} --gpu "${gpus}" "${dir}/plan.log" ${python} -m espnet_dynenc.bin.prune_on_demand --ngpu "${gpus}" \
        --asr_train_config "${asr_exp}/config.yaml" --asr_model_file "${asr_exp}/${checkpoint}" \
        --data_path_and_name_and_type "${data}/wav.scp,speech,sound" \
        --data_path_and_name_and_type "${data}/text,text,text" \
        --max_utterances "${prune_max_utterances}" --depths ${prune_depths} --strategies ${prune_strategies} \
        --greedy_metric "${prune_metric}" --output_dir "${dir}" "${opts[@]}" ||
        fail "Stage 12: pruning plan failed; see ${dir}/plan.log"
    [ -f "${plan}" ] || fail "Stage 12: the pruning plan wrote no ${plan}; see ${dir}/plan.log"
    mark_done "${dir}/.done" "${settings}"
}

# decode_threads JOBS GPUS: the torch threads (OMP_NUM_THREADS) of each of JOBS decoding jobs;
# empty: leave torch's default. --inference_threads when given; else 1 when several jobs run
# on CPU: each job's default (every core) would oversubscribe the cores, which slows small
# models several times over; else empty
decode_threads() {
    if [ -n "${inference_threads}" ]; then
        echo "${inference_threads}"
    elif [ "$1" -gt 1 ] && [ "$2" = 0 ] && [ -z "${OMP_NUM_THREADS:-}" ]; then
        echo 1
    fi
}

# decode_set SET DIR WHAT MODULE [OPTION...]: decode <data_feats>/SET into DIR in --inference_nj
# jobs with python -m MODULE and its OPTIONs (see decoder_options; then the dev set's lm_weight
# while tuning, the tuned weights for the test sets), the sizes of --subnets. WHAT says in the
# log what it decodes with. A decoding done with these settings that has every output asked
# for is kept; one done with other settings (among them the data set: its wav.scp and text,
# e.g. a test set made again with more utterances), or lacking outputs, is decoded again.
decode_set() {
    local data=${data_feats}/$1 dir=$2 what=$3 module=$4 jobs threads index runner=${decode_cmd} gpus=0 outputs=()
    local logdir=$2/logdir settings missing subnet_opts=()
    shift 4
    settings="$(decoding_settings "${module}" "$@")"
    settings+=" data=${data}[$(file_digest "${data}/wav.scp")][$(file_digest "${data}/text")]"
    if is_current "${dir}/.done" "${settings}"; then
        missing=$(missing_outputs "${dir}")
        if [ -z "${missing}" ]; then
            report_skip "${dir}/.done" "decoding of $(basename "${data}")"
            return
        fi
        log "Stage 12: ${dir} lacks some of the sizes ${subnets}${prune_depths:+ or pruned depths ${prune_depths}};" \
            "decoding $(basename "${data}") again"
    elif is_done "${dir}/.done"; then
        log "Stage 12: ${dir} was decoded with other settings (model, plan, LM weights, decoding options or data);" \
            "decoding $(basename "${data}") again"
    fi
    require_inputs "run stage 3 first" "${data}/.done"
    if [ "${gpu_inference}" = true ]; then runner=${cuda_cmd}; gpus=1; fi
    [ -z "${subnets}" ] || subnet_opts=(--subnets "${subnets}")
    jobs=$(min "${inference_nj}" "$(count_lines "${data}/wav.scp")")
    threads=$(decode_threads "${jobs}" "${gpus}")
    rm -rf "${dir}"
    mkdir -p "${logdir}"
    split_keys "${data}/wav.scp" "${logdir}/keys" "${jobs}"
    log "Stage 12: decoding ${data} with ${what}, sizes: ${subnets:-all}," \
        "${jobs} job(s)${threads:+ of ${threads} thread(s)}" \
        "(logs: ${logdir}/decode.*.log)"
    # shellcheck disable=SC2086
    ${threads:+env OMP_NUM_THREADS=${threads}} ${runner} --gpu "${gpus}" JOB=1:"${jobs}" "${logdir}/decode.JOB.log" \
        ${python} -m "${module}" --data_path_and_name_and_type "${data}/wav.scp,speech,sound" \
        --key_file "${logdir}/keys.JOB.scp" --output_dir "${logdir}/output.JOB" \
        --ngpu "${gpus}" "${subnet_opts[@]}" "$@" ||
        fail "Stage 12: decoding ${data} failed; see ${logdir}/decode.*.log"
    for ((index = 1; index <= jobs; index++)); do outputs+=("${logdir}/output.${index}"); done
    run_helper espnet_dynenc.bin.merge_decode --output_dir "${dir}" "${outputs[@]}" ||
        fail "Stage 12: merging the decoding jobs of ${data} failed"
    mark_done "${dir}/.done" "${settings}"
}

# decoded_outputs DIR [OPTION...]: the finished outputs of DIR (one data set's decoding), one a
# line (a size, or pruned/<strategy>/<depth>), that --subnets (with the pruning plan's subnet),
# --prune_depths and --prune_strategies ask for; with --missing, those asked for and not there
decoded_outputs() {
    local dir=$1 args
    shift
    args=(list --dir "${dir}" --subnets "${subnets}" --prune_depths "${prune_depths}"
        --prune_strategies "${prune_strategies}")
    [ -z "${prune_depths}" ] || args+=(--pruning_plan "$(pruning_plan_of "$(dirname "${dir}")")")
    run_helper espnet_dynenc.bin.decode_outputs "${args[@]}" "$@" ||
        fail "Stage ${current_stage}: cannot list the decoded outputs of ${dir}"
}

# the sizes --subnets asks for and the strategies and depths --prune_depths asks for that DIR lacks
missing_outputs() {
    decoded_outputs "$1" --missing
}

stage_13() {
    resolve_inference_model
    local dset sizes output outputs scorer=own
    command -v sclite >/dev/null && scorer=sclite
    log "Stage 13: scoring ${decode_dir} with ${scorer}"
    for dset in ${test_sets}; do
        require_inputs "run stage 12 first" "${decode_dir}/${dset}/.done" "${data_feats}/${dset}/text"
        sizes=$(decoded_outputs "${decode_dir}/${dset}" --prune_depths "")
        [ -n "${sizes}" ] || fail "Stage 13: ${decode_dir}/${dset} has no decoded size matching --subnets '${subnets}'"
        outputs=$(decoded_outputs "${decode_dir}/${dset}")
        for output in ${outputs}; do
            score_output "${dset}" "${output}" "${scorer}"
        done
    done
    write_results
}

# score <decode_dir>/<test set>/<output> (a size, or pruned/<strategy>/<depth>)
score_output() {
    local dset=$1 size=$2 scorer=$3 dir=${decode_dir}/$1/$2 kind scoredir
    if is_done "${dir}/.score.done"; then report_skip "${dir}/.score.done" "scoring of ${dset} ${size}"; return; fi
    for kind in wer cer; do
        scoredir=${dir}/score_${kind}
        rm -rf "${scoredir}"
        mkdir -p "${scoredir}"
        run_helper espnet_dynenc.bin.make_trn --token_type "$([ "${kind}" = wer ] && echo word || echo char)" \
            --ref_text "${data_feats}/${dset}/text" --hyp_text "${dir}/text" --utt2spk "${data_feats}/${dset}/utt2spk" \
            --out_dir "${scoredir}" --non_linguistic_symbols "${nlsyms_txt}" --cleaner "${cleaner}" ||
            fail "Stage 13: cannot write ${scoredir}/ref.trn and hyp.trn"
        score_trn "${scoredir}" "${scorer}"
        log "Stage 13: ${dset} ${size} ${kind}: $(grep -m 1 'Sum/Avg' "${scoredir}/result.txt")"
    done
    mark_done "${dir}/.score.done"
}

score_trn() {
    local scoredir=$1 scorer=$2
    if [ "${scorer}" = sclite ]; then
        sclite -r "${scoredir}/ref.trn" trn -h "${scoredir}/hyp.trn" trn -i rm -o all stdout \
            >"${scoredir}/result.txt" || fail "Stage 13: sclite failed on ${scoredir}"
    else
        run_helper espnet_dynenc.bin.score --ref "${scoredir}/ref.trn" --hyp "${scoredir}/hyp.trn" \
            --output "${scoredir}/result.txt" || fail "Stage 13: scoring ${scoredir} failed"
    fi
}

write_results() {
    local device=cpu
    [ "${gpu_inference}" = false ] || device=gpu
    run_helper espnet_dynenc.bin.results_table --decode_dir "${decode_dir}" --test_sets "${test_sets}" \
        --subnets "${subnets}" --prune_depths "${prune_depths}" --prune_strategies "${prune_strategies}" \
        --model_file "${asr_exp}/${inference_model}" --device "${device}" \
        --output "${asr_exp}/RESULTS.md" || fail "Stage 13: cannot write ${asr_exp}/RESULTS.md"
    log "Stage 13: results in ${asr_exp}/RESULTS.md"
    cat "${asr_exp}/RESULTS.md"
}

# Stage 14: every size decoded for the first test set, cut out of the supernet as a
# standalone ESPnet model (export_subnet) and zipped by ESPnet's packer, so that
# Speech2Text loads it from the zip (after espnet2.main_funcs.pack_funcs.unpack).
stage_14() {
    if [ "${skip_packing}" = true ]; then
        log "Stage 14: skipped (--skip_packing true)"
        return
    fi
    resolve_inference_model
    local dset=${test_sets%% *} size sizes zips=()
    require_inputs "run stage 12 first" "${decode_dir}/${dset}/.done" "${asr_exp}/config.yaml"
    sizes=$(decoded_outputs "${decode_dir}/${dset}" --prune_depths "")
    [ -n "${sizes}" ] || fail "Stage 14: ${decode_dir}/${dset} has no decoded size matching --subnets '${subnets}'"
    mkdir -p "${asr_exp}/packed/logs"
    for size in ${sizes}; do
        pack_size "${size}"
        zips+=("$(packed_zip "${size}")")
    done
    log "Stage 14: exported sizes in ${asr_exp}/packed/<size>/, ESPnet zips: ${zips[*]}"
}

packed_zip() {
    echo "${asr_exp}/packed/$(basename "${asr_exp}")_${inference_model%.pth}_$1.zip"
}

# export one size into <asr_exp>/packed/<size>/ and pack it; redone when the checkpoint changes
pack_size() {
    local size=$1 dir=${asr_exp}/packed/$1 zip opts=() file checkpoint
    local logs=${asr_exp}/packed/logs
    zip=$(packed_zip "${size}")
    checkpoint=$(size_checkpoint "${size}")
    if is_current "${dir}/.done" "${checkpoint}" && [ -f "${zip}" ]; then
        report_skip "${dir}/.done" "packing of size ${size}"
        return
    fi
    rm -rf "${dir}" "${zip}"
    log "Stage 14: size ${size} (${checkpoint}) -> ${dir} and ${zip} (logs: ${logs}/${size}.*.log)"
    run_helper espnet_dynenc.bin.export_subnet --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${checkpoint}" --subnet "${size}" --output_dir "${dir}" \
        >"${logs}/${size}.export.log" 2>&1 ||
        fail "Stage 14: export of size ${size} failed; see ${logs}/${size}.export.log"
    grep -A 1 '^export_subnet:' "${logs}/${size}.export.log" | sed 's/^/    /' || true
    for file in "${dir}"/*; do
        case "$(basename "${file}")" in config.yaml | model.pth) ;; *) opts+=(--option "${file}") ;; esac
    done
    ${python} -m espnet2.bin.pack asr --asr_train_config "${dir}/config.yaml" --asr_model_file "${dir}/model.pth" \
        "${opts[@]}" --outpath "${zip}" >"${logs}/${size}.pack.log" 2>&1 ||
        fail "Stage 14: packing size ${size} failed; see ${logs}/${size}.pack.log"
    mark_done "${dir}/.done" "${checkpoint}"
}

# ------------------------------------------------------------------ decoding set-up
# What stage 12 decodes with, settled before any stage runs: an unknown decoding option, a
# missing LM checkpoint or an LM trained on other tokens stops the call here, with nothing
# marked done, instead of in stage 12 after hours of training.
check_decoding_setup() {
    runs_stage 12 || runs_stage 13 || runs_stage 14 || runs_stage 9 || return 0
    local args=(--inference_args "${inference_args}" --use_lm "${use_lm}") tokens answer
    [ -z "${inference_config}" ] || args+=(--inference_config "${inference_config}")
    [ -z "${asr_inference_module}" ] || args+=(--inference_module "${asr_inference_module}")
    if [ "${use_lm}" = true ] && ! lm_trained_by_this_call && [ -f "${lm_exp}/config.yaml" ]; then
        tokens=$(asr_token_source)
        [ -z "${tokens}" ] || args+=(--lm_train_config "${lm_exp}/config.yaml" --asr_tokens "${tokens}")
    fi
    answer=$(run_helper espnet_dynenc.bin.check_decoding "${args[@]}" 2>&1) ||
        usage_error "$(tail -n 1 <<<"${answer}" | sed -e 's/^check_decoding: error: //')"
    decoding=$(tail -n 1 <<<"${answer}")
    [ -n "${inference_module}" ] || inference_module=espnet_dynenc.bin.ctc_${decoding}_inference
    if [ "${decoding}" = beam ] && option_given batch_size && [ "${batch_size}" -gt 1 ]; then
        usage_error "--batch_size ${batch_size}: beam search decodes one utterance at a time" \
            "(ESPnet 202511's Speech2Text refuses batch_size > 1 for beam search)"
    fi
    if [ "${use_lm}" = true ] && { runs_stage 12 || runs_stage 9; } && ! lm_trained_by_this_call; then
        [ -f "${lm_exp}/${inference_lm}" ] ||
            usage_error "--inference_lm: LM checkpoint ${lm_exp}/${inference_lm} does not exist" \
                "(run stages 6-9, or set --lm_exp and --inference_lm)"
        [ -f "${lm_exp}/config.yaml" ] ||
            usage_error "--lm_exp ${lm_exp}: no config.yaml (run stages 6-9, or give a trained LM's directory)"
    fi
}

# --pretrained_model, checked before any stage runs where it can be: the recipe's token list
# exists and this call does not remake it. Otherwise stage 11 checks it before it writes anything.
pretrained_summary=
check_pretrained_setup() {
    [ -n "${pretrained_model}" ] && runs_stage 11 && ! is_done "${asr_exp}/.train.done" || return 0
    [ -f "${pretrained_model%%:*}" ] || usage_error "--pretrained_model: file '${pretrained_model%%:*}' does not exist"
    [ -f "${token_list}" ] && { ! runs_stage 5 || is_done "$(dirname "${token_list}")/.done"; } || return 0
    pretrained_summary=$(check_pretrained_model) || exit 2
}

# whether stage 8 will train the LM in this call (so its checkpoint need not exist yet)
lm_trained_by_this_call() {
    runs_stage 8 && ! is_done "${lm_exp}/.train.done"
}

# the ASR model's token list as it will be decoded: the trained model's config.yaml, else
# the recipe's token list; nothing while this call still makes them
asr_token_source() {
    if [ -f "${asr_exp}/config.yaml" ] && { ! runs_stage 11 || is_done "${asr_exp}/.train.done"; }; then
        echo "${asr_exp}/config.yaml"
    elif [ -f "${token_list}" ] && { ! runs_stage 5 || is_done "$(dirname "${token_list}")/.done"; }; then
        echo "${token_list}"
    fi
}

run_stage() {
    current_stage=$1
    case "$1" in
        6 | 7 | 8 | 9) lm_stage "$1" ;;
        *) "stage_$1" ;;
    esac
}

# Stages 6-9 (language model) run with --use_lm true; otherwise they are skipped, and the
# first of them that this call reaches says so.
lm_stage() {
    if [ "${use_lm}" = true ]; then
        "stage_$1"
    elif [ "$1" -eq 6 ] || [ "$1" -eq "${stage}" ]; then
        announce_lm_stages
    fi
}

# ------------------------------------------------------------------------------- main
check_decoding_setup
check_pretrained_setup
mkdir -p "${expdir}/logs"
driver_log=${expdir}/logs/asr.$(date '+%Y%m%dT%H%M%S').$$.log
exec > >(tee -a "${driver_log}") 2>&1
trap 'log "interrupted in stage ${current_stage:-?}; its unfinished work is not marked done"; exit 130' INT TERM

log "$0 $*"
log "driver log: ${driver_log}"
for ((number = stage; number <= stop_stage; number++)); do
    run_stage "${number}"
done
log "Finished stages ${stage}-${stop_stage} in ${SECONDS} s"
