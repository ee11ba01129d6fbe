#!/usr/bin/env bash
# TED-LIUM release 2: one Dynamic Encoder Size supernet (Conformer-CTC, 12 blocks, d 384),
# decoded at 16, 32 and 48 units; see README.md. Stages 1-13 of ../../TEMPLATE/asr1/asr.sh:
#   1     local/data.sh: data/{train,dev,test} with segments, from the corpus that db.sh
#         names (downloaded into downloads/ when it names none)
#   2     data/train_sp: speed perturbation by 0.9, 1.0 and 1.1
#   3-4   dump/raw/<set>: FLAC at 16 kHz; training and dev utterances of 0.1-30 s
#   5     data/en_token_list/bpe_unigram500: sentencepiece model learned on data/train/text
#   6-9   with --use_lm true: the LM (conf/train_lm.yaml, ESPnet's TED-LIUM 2 LM size) learned from
#         data/train/text and the release's LM text (local/data.sh stage 3; none: transcripts only)
#   10    exp/asr_stats_raw_en_bpe500_sp: feature statistics and shapes
#   11    exp/asr_<config>_raw_en_bpe500_sp: training (--ngpu GPUs)
#   12    .../decode_ctc_greedy_asr_model_valid.cer_ctc.ave/<test_set>/<size>: greedy CTC
#         (with --use_lm true --inference_config conf/decode_lm.yaml: beam search with the LM)
#   13    .../score_{wer,cer}/result.txt per size and exp/asr_<...>/RESULTS.md
# Every option of asr.sh can be added and wins over the values below, e.g.
#   ./run.sh --stage 10 --stop_stage 11 --ngpu 2
#   ./run.sh --asr_config conf/tuning/train_des_simple_topk_24_48.yaml --subnets "24 48"
#   ./run.sh --use_lm true --inference_config conf/decode_lm.yaml --lm_weight_grid "0.3 0.5 0.7 0.9"
set -euo pipefail

train_set=train
valid_set=dev
test_sets="dev test"

# the DES supernet with the Simple-Top-k selector; conf/tuning lists the alternatives
asr_config=conf/tuning/train_des_simple_topk_16_32_48.yaml
# sizes (in Conformer modules) decoded and scored; "" decodes every size of the model
subnets="16 32 48"
# the language model of --use_lm true: its config, and its text (the transcripts once, not the
# speed-perturbed copies, and the release's LM text that local/data.sh writes when asr.sh
# passes it use_lm=true)
lm_config=conf/train_lm.yaml
lm_train_text="data/${train_set}/text data/local/other_text/text"

ngpu=4          # training GPUs (the configs' batch of ~150 s of audio is split across them)
nj=32           # parallel jobs for audio formatting and statistics
inference_nj=32 # parallel decoding jobs (CPU unless --gpu_inference true)

./asr.sh \
    --lang en \
    --ngpu "${ngpu}" \
    --nj "${nj}" \
    --inference_nj "${inference_nj}" \
    --audio_format flac \
    --max_wav_duration 30 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --token_type bpe \
    --nbpe 500 \
    --bpe_train_text "data/${train_set}/text" \
    --asr_config "${asr_config}" \
    --lm_config "${lm_config}" \
    --lm_train_text "${lm_train_text}" \
    --subnets "${subnets}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    "$@"
