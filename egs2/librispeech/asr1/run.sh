#!/usr/bin/env bash
# LibriSpeech 960 h: one Dynamic Encoder Size supernet (Conformer-CTC, 12 blocks, d 512),
# decoded at 16, 32 and 48 units; see README.md. Stages 1-13 of ../../TEMPLATE/asr1/asr.sh:
#   1     local/data.sh: data/{train_960,dev,test_clean,test_other,dev_clean,dev_other}
#         from the corpus that db.sh names (downloaded into downloads/ when it names none)
#   2     speed perturbation: skipped (--speed_perturb_factors "")
#   3-4   dump/raw/<set>: FLAC at 16 kHz; training and dev utterances of 0.1-30 s
#   5     data/en_token_list/bpe_unigram5000: sentencepiece model learned on data/train_960/text
#   6-9   with --use_lm true: the LM (conf/train_lm.yaml, ESPnet's LibriSpeech LM size) learned from
#         data/train_960/text and the LM text of openslr 11 (local/data.sh stage 3 fetches it)
#   10    exp/asr_stats_raw_en_bpe5000: feature statistics and shapes
#   11    exp/asr_<config>_raw_en_bpe5000: training (--ngpu GPUs)
#   12    .../decode_ctc_greedy_asr_model_valid.cer_ctc.ave/<test_set>/<size>: greedy CTC
#         (with --use_lm true --inference_config conf/decode_lm.yaml: beam search with the LM)
#   13    .../score_{wer,cer}/result.txt per size and exp/asr_<...>/RESULTS.md
# Every option of asr.sh can be added and wins over the values below, e.g.
#   ./run.sh --stage 10 --stop_stage 11 --ngpu 2
#   ./run.sh --asr_config conf/tuning/train_individual_16.yaml --subnets 16
#   ./run.sh --use_lm true --inference_config conf/decode_lm.yaml --lm_weight_grid "0.3 0.5 0.7 0.9"
set -euo pipefail

train_set=train_960
valid_set=dev
test_sets="test_clean test_other dev_clean dev_other"

# the DES supernet with the Simple-Top-k selector; conf/tuning lists the alternatives
asr_config=conf/tuning/train_des_simple_topk_16_32_48.yaml
# sizes (in Conformer modules) decoded and scored; "" decodes every size of the model
subnets="16 32 48"
# the language model of --use_lm true: its config, and its text (the transcripts once, and the
# LM text corpus of openslr 11 that local/data.sh writes when asr.sh passes it use_lm=true)
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
    --speed_perturb_factors "" \
    --token_type bpe \
    --nbpe 5000 \
    --bpe_train_text "data/${train_set}/text" \
    --asr_config "${asr_config}" \
    --lm_config "${lm_config}" \
    --lm_train_text "${lm_train_text}" \
    --subnets "${subnets}" \
    --train_set "${train_set}" \
    --valid_set "${valid_set}" \
    --test_sets "${test_sets}" \
    "$@"
