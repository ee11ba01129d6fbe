#!/usr/bin/env bash
# The CUDA paths and the GPU timings, checked in one run on a machine with a CUDA GPU.
#
# Usage: bash tools/gpu_check.sh [--out DIR] [--part all|recipe|benchmarks] [--ngpu 1|0]
#                                [--epochs N] [--updates_per_epoch N]
#
#   1. the environment: torch, CUDA, the GPU, bfloat16
#   2. egs2/mini_synth/asr1 end to end on the GPU: the main job's DES config on a shorter
#      schedule (the same shape: Step 1 for the same share of the updates, then the sandwich rule),
#      trained with ESPnet's --use_amp true, each size decoded on the GPU (--gpu_inference),
#      scored and packed; experiment exp/asr_gpu_check (data stages shared with ./run.sh)
#   3. what a GPU training could get wrong, read off the trained experiment: each averaged
#      checkpoint's masks nested and of the configured sizes (the Step-2 masks reached the
#      checkpoints from the GPU), the trainer's update time
#   4. deployment from the GPU-trained checkpoint: each size exported (compact PyTorch,
#      ONNX fp32 and int8) and decoded by each backend (tools/benchmark_deploy.py, 100
#      utterances)
#   5. GPU timings: tools/benchmark_encoder.py and tools/benchmark_des_training.py on the
#      GPU (their default model, then the LibriSpeech paper model and batch, float32 and AMP)
#
# --part recipe runs steps 1-4, --part benchmarks steps 1 and 5 (on one H100 machine steps
# 1-4 took 8.5 minutes; of step 5, 5a took 22 s and 5c with 5d at 3 repeats 114 s). --ngpu 0
# runs steps 1-4 on the CPU (a dry run of the script itself; step 5 is left out).
# Everything it prints also goes to DIR/gpu_check.log (default exp/gpu_check under the
# recipe); the recipe's own logs stay in its exp/ as usual. A failed step is named and the
# others still run (3 and 4 need 2's experiment); the exit status is 1 if any failed.
set -euo pipefail

out=
part=all
ngpu=1
epochs=6
updates_per_epoch=150
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=$2; shift 2 ;;
        --part) part=$2; shift 2 ;;
        --ngpu) ngpu=$2; shift 2 ;;
        --epochs) epochs=$2; shift 2 ;;
        --updates_per_epoch) updates_per_epoch=$2; shift 2 ;;
        -h|--help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$0: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for option in epochs updates_per_epoch; do
    [[ "${!option}" =~ ^[1-9][0-9]*$ ]] || { echo "$0: --${option} must be a positive whole number, got '${!option}'" >&2; exit 2; }
done
[ "${epochs}" -ge 4 ] || { echo "$0: --epochs must be at least 4 (3 averaged epochs after Step 1), got ${epochs}" >&2; exit 2; }
case "${ngpu}" in 0|1) ;; *) echo "$0: --ngpu must be 0 or 1, got '${ngpu}'" >&2; exit 2 ;; esac
case "${part}" in all|recipe|benchmarks) ;; *) echo "$0: --part must be all, recipe or benchmarks, got '${part}'" >&2; exit 2 ;; esac
[ "${ngpu}" = 1 ] || [ "${part}" != benchmarks ] || { echo "$0: --part benchmarks needs the GPU (--ngpu 1)" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
recipe=${root}/egs2/mini_synth/asr1
cd "${recipe}"
# shellcheck disable=SC1091
. ./path.sh
out=${out:-${recipe}/exp/gpu_check}
mkdir -p "${out}"
out=$(cd "${out}" && pwd)
exec > >(tee "${out}/gpu_check.log") 2>&1
step() { echo; echo "== $(date '+%H:%M:%S') $*"; }
failures=()
failed() { echo "gpu_check: FAILED: $*"; failures+=("$*"); }
start=$(date +%s)

step "1. environment"
python3 - "${ngpu}" <<'EOF' || { failed "1. environment"; exit 1; }
import sys, torch, espnet
print(f"python {sys.version.split()[0]} | torch {torch.__version__} | espnet {espnet.__version__}")
if sys.argv[1] == "1":
    if not torch.cuda.is_available():
        sys.exit("torch sees no CUDA device (run with --ngpu 0 for a CPU dry run)")
    p = torch.cuda.get_device_properties(0)
    print(f"GPU {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, CUDA {torch.version.cuda}, "
          f"bfloat16: {torch.cuda.is_bf16_supported()}")
EOF

if [ "${part}" != benchmarks ]; then
step "2. mini_synth on the $([ "${ngpu}" = 1 ] && echo GPU || echo CPU): ${epochs} epochs of ${updates_per_epoch} updates"
conf=${out}/train_asr_des_gpu_check.yaml
python3 - conf/train_asr_des.yaml "${conf}" "${epochs}" "${updates_per_epoch}" <<'EOF' || { failed "2. the short config"; exit 1; }
import sys, yaml
source, target, epochs, per_epoch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(source) as f:
    conf = yaml.safe_load(f)
updates = epochs * per_epoch
model, selector = conf["model_conf"], conf["model_conf"]["selector_conf"]
steps = (max(model["subnet_sizes"]) - min(model["subnet_sizes"])) // selector["k_reduction"]
step1_share = steps * selector["updates_per_k_step"] / (conf["num_iters_per_epoch"] * conf["max_epoch"])
selector["updates_per_k_step"] = max(1, int(step1_share * updates) // steps)
conf["num_iters_per_epoch"], conf["max_epoch"] = per_epoch, epochs
conf["scheduler_conf"]["total_steps"] = updates
with open(target, "w") as f:
    f.write(f"# {source} on a schedule of {updates} updates (tools/gpu_check.sh)\n")
    yaml.safe_dump(conf, f, sort_keys=False)
print(f"{target}: {updates} updates, Step 1 for {steps} x {selector['updates_per_k_step']} ({step1_share:.0%}, as {source})")
EOF
gpu_opts=(--ngpu "${ngpu}")
[ "${ngpu}" = 0 ] || gpu_opts+=(--gpu_inference true --inference_nj 1 --asr_args "--use_amp true")
exp=${recipe}/exp/asr_gpu_check
if ! ./run.sh --asr_config "${conf}" --asr_tag gpu_check --nj 4 "${gpu_opts[@]}"; then
    failed "2. ./run.sh (logs: ${exp})"
else
cp "${exp}/RESULTS.md" "${out}/RESULTS.md"

step "3. the trained experiment"
python3 - "${exp}" <<'EOF' || failed "3. the trained experiment"
import glob, os, re, sys, torch, yaml
exp = sys.argv[1]
with open(os.path.join(exp, "config.yaml")) as f:
    config = yaml.safe_load(f)
sizes = config["model_conf"]["subnet_sizes"]
print(f"use_amp: {config.get('use_amp')} | ngpu: {config.get('ngpu')}")
# the last epoch's masks (a bool buffer) and each average's (ESPnet's averaging turns the
# buffer into floats of the same support): the configured nested sizes, the same in all
epochs = {int(m.group(1)): os.path.join(exp, m.group(0)) for m in
          (re.fullmatch(r"([0-9]+)epoch\.pth", name) for name in os.listdir(exp)) if m}
last = epochs[max(epochs)]
reference = None
for path in [last] + sorted(glob.glob(os.path.join(exp, "valid.*.ave.pth"))):
    masks = torch.load(path, map_location="cpu", weights_only=False)["subnet_masks"]
    kept_masks = masks != 0
    kept = kept_masks.sum(dim=1).tolist()
    nested = all(bool((kept_masks[i] <= kept_masks[i + 1]).all()) for i in range(len(sizes) - 1))
    reference = kept_masks if reference is None else reference
    same = bool((kept_masks == reference).all())
    ok = kept == sizes and nested and same
    print(f"{os.path.basename(path)}: masks {masks.dtype}, units kept {kept}, nested {nested}, "
          f"as {os.path.basename(last)}: {same} -> {'ok' if ok else 'WRONG'}")
    if not ok:
        sys.exit(f"{path}: the masks are not the configured nested sizes {sizes} of {last}")
times = [float(m) for m in re.findall(r"train_time=([0-9.]+)", open(os.path.join(exp, "train.log")).read())]
if times:
    print(f"trainer's train_time (seconds per update) over the logged intervals: first {times[0]:.3f}, "
          f"median {sorted(times)[len(times) // 2]:.3f}, last {times[-1]:.3f}")
EOF
grep -h "Stage 11: training finished\|Finished stages" "${out}/gpu_check.log" || true

step "4. deployment from the trained checkpoint"
decode_dir=$(ls -d "${exp}"/decode_ctc_greedy_* | head -n 1)
python3 "${root}/tools/benchmark_deploy.py" --asr_train_config "${exp}/config.yaml" \
    --asr_model_file "${exp}/valid.cer_ctc.ave.pth" --decode_dir "${decode_dir}" --test_set test \
    --wav_scp dump/raw/test/wav.scp --work_dir "${out}/deploy" --max_utterances 100 ||
    failed "4. tools/benchmark_deploy.py"
fi

fi

if [ "${ngpu}" = 1 ] && [ "${part}" != recipe ]; then
    step "5a. tools/benchmark_encoder.py --device cuda (12 blocks d256, batch 4 x 8 s)"
    python3 "${root}/tools/benchmark_encoder.py" --device cuda --repeats 20 || failed "5a. benchmark_encoder"
    step "5b. tools/benchmark_des_training.py --device cuda (12 blocks d256, batch 4 x 8 s)"
    python3 "${root}/tools/benchmark_des_training.py" --device cuda --repeats 5 || failed "5b. benchmark_des_training"
    paper=(--blocks 12 --d_model 512 --heads 8 --ffn 2048 --batch 10 --seconds 15 --vocab 5000 --repeats 5)
    step "5c. tools/benchmark_des_training.py --device cuda, the LibriSpeech paper model and batch (150 s), float32"
    python3 "${root}/tools/benchmark_des_training.py" --device cuda "${paper[@]}" || failed "5c. benchmark_des_training"
    step "5d. the same with --amp"
    python3 "${root}/tools/benchmark_des_training.py" --device cuda --amp "${paper[@]}" || failed "5d. benchmark_des_training --amp"
fi
if [ "${#failures[@]}" -gt 0 ]; then
    step "gpu_check: ${#failures[@]} step(s) failed in $(( $(date +%s) - start )) s: ${failures[*]}"
    exit 1
fi
step "gpu_check: all steps passed in $(( $(date +%s) - start )) s"
