#!/usr/bin/env bash
# mini_synth: the embedded end-to-end recipe. A small English corpus is synthesised on the
# spot with espeak-ng (held-out voices for dev and test), a Dynamic Encoder Size supernet
# is trained on the CPU and decoded at 8, 16 and 24 Conformer modules. About 12 minutes on
# 2 CPU cores. Stages of ../../TEMPLATE/asr1/asr.sh:
#   1     local/data.sh: data/{train,dev,test} (2500/500/6000 utterances, one other speaker
#         of the same split under each, 10-20 dB below) and WAVs in downloads/
#   2     speed perturbation: skipped
#   3-4   dump/raw/<set>: 16 kHz audio; training and dev utterances of 0.1-20 s
#   5     data/en_token_list/bpe_bpe100: sentencepiece BPE learned on data/train/text
#   6-9   skipped; with --use_lm true: an LSTM LM (conf/train_lm.yaml) on the training text
#   10    exp/asr_stats_raw_en_bpe100: feature statistics and shapes
#   11    exp/asr_train_asr_des_raw_en_bpe100: training on the CPU (--ngpu 0)
#   12    .../decode_ctc_greedy_asr_model_valid.cer_ctc.ave/test/<size>: greedy CTC per size
#   13    .../score_{wer,cer}/result.txt per size and exp/asr_<...>/RESULTS.md, printed
#   14    exp/asr_<...>/packed/<size>/: each size as a standalone ESPnet model, and its zip
#         (ESPnet's pack) next to it; --skip_packing true leaves it out
# Every option of asr.sh can be added and wins over the values below, e.g.
#   ./run.sh --stage 10            # after an earlier data preparation
#   ./run.sh --stage 12 --subnets 16
#   ./run.sh --stage 6 --use_lm true --inference_config conf/decode_lm.yaml --lm_weight_grid "0.5 1.0 1.5 2.0"
#                                  # LM (stages 6-9) and beam search with it for every size; README.md
set -euo pipefail

asr_config=conf/train_asr_des.yaml
subnets="8 16 24"   # sizes (in Conformer modules) decoded and scored
lm_config=conf/train_lm.yaml  # the language model of --use_lm true

./asr.sh \
    --lang en \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --speed_perturb_factors "" \
    --max_wav_duration 20 \
    --token_type bpe \
    --bpemode bpe \
    --nbpe 100 \
    --asr_config "${asr_config}" \
    --lm_config "${lm_config}" \
    --subnets "${subnets}" \
    --train_set train \
    --valid_set dev \
    --test_sets test \
    --skip_packing false \
    "$@"
