#!/usr/bin/env bash
# Train and decode every run of a comparison plan with this recipe's run.sh, then write
# COMPARISON.md and comparison.png: every size cut from one model (Dynamic Encoder Size,
# Aux-Loss, layer pruning on demand) against the same size trained alone, DMAO against
# its uniform model, and the training cost of each approach, over several seeds.
#
# Run it from a recipe directory (egs2/<corpus>/asr1), where it is a link to
# egs2/TEMPLATE/asr1/run_comparison.sh, e.g.
#   ./run_comparison.sh                         # every run of conf/comparison_plan.tsv
#   ./run_comparison.sh --seeds "0 1 2"         # three seeds for the main rows
#   ./run_comparison.sh --methods "des_simple_topk individual_8"
# Steps: data preparation and statistics once (./run.sh --stop_stage 10), then per run
# and seed ./run.sh --stage 11 --stop_stage 13 (training, decoding, scoring) with the run's config, into
# exp/asr_<method>_seed<seed>; finished work is skipped, so a rerun continues where an
# interrupted one stopped. Logs: exp/comparison/logs/<method>_seed<seed>.log.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_comparison.sh) $*"
}

usage_error() {
    echo "run_comparison.sh: error: $*" >&2
    exit 2
}

plan=conf/comparison_plan.tsv # one run per line: method role seeds config [run.sh options]
seeds="0 1"                   # seeds of the runs whose seed group is "main"
other_seeds="0"               # seeds of the runs whose seed group is "other"
methods=                      # only these methods of the plan (default: all)
out_dir=.                     # COMPARISON.md and comparison.png go here
python=python3

option_names="plan seeds other_seeds methods out_dir python"
help_message=$(
    cat <<EOF
Usage: $0 [options]   (run from a recipe directory, egs2/<corpus>/asr1)
Trains and decodes every run of the plan with ./run.sh and writes COMPARISON.md and
comparison.png. Finished work is skipped; an interrupted comparison continues.

Options (default in brackets):
  --plan FILE          runs: "<method> <role> <seed group> <config> [run.sh options]" per line [${plan}]
                       roles: supernet, alone, pruned, dmao; seed groups: main, other
  --seeds "S..."       seeds of the "main" runs (rows over seeds show mean ± sd) [${seeds}]
  --other_seeds "S..." seeds of the "other" runs [${other_seeds}]
  --methods "M..."     run only these methods of the plan [all]
  --out_dir DIR        where COMPARISON.md and comparison.png go [${out_dir}]
  --python CMD         python command [${python}]
EOF
)
# shellcheck source=utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/utils/parse_options.sh"
parse_options "$@"

[ -f "${plan}" ] || usage_error "--plan: no such file: ${plan}"
[ -x ./run.sh ] || usage_error "no ./run.sh in $(pwd): run from a recipe directory (egs2/<corpus>/asr1)"
for seed in ${seeds} ${other_seeds}; do
    [[ ${seed} =~ ^[0-9]+$ ]] || usage_error "seeds must be whole numbers, got '${seed}'"
done
[ -n "${seeds// /}" ] || usage_error "--seeds is empty"
[ -f path.sh ] || usage_error "no path.sh in $(pwd): run from a recipe directory (egs2/<corpus>/asr1)"
# the environment asr.sh works in (tools/venv, the package on PYTHONPATH), also for the tables
# shellcheck source=path.sh
. ./path.sh

# ----------------------------------------------------------------------------- the plan
names=() roles=() configs=() options=() run_seeds=()
line_number=0
while IFS= read -r line || [ -n "${line}" ]; do
    line_number=$((line_number + 1))
    [[ ${line} =~ ^[[:space:]]*(#|$) ]] && continue
    read -r method role group config rest <<<"${line}"
    [ -n "${config:-}" ] || usage_error "${plan}:${line_number}: expected '<method> <role> <seed group> <config> [options]'"
    case "${role}" in supernet | alone | pruned | dmao) ;; *)
        usage_error "${plan}:${line_number}: unknown role '${role}' (supernet, alone, pruned, dmao)" ;;
    esac
    case "${group}" in main) group_seeds=${seeds} ;; other) group_seeds=${other_seeds} ;; *)
        usage_error "${plan}:${line_number}: unknown seed group '${group}' (main, other)" ;;
    esac
    [ -f "${config}" ] || usage_error "${plan}:${line_number}: config '${config}' does not exist"
    if [ -n "${methods}" ] && [[ " ${methods} " != *" ${method} "* ]]; then continue; fi
    for seed in ${group_seeds}; do
        names+=("${method}") roles+=("${role}") configs+=("${config}") options+=("${rest:-}") run_seeds+=("${seed}")
    done
done <"${plan}"
[ "${#names[@]}" -gt 0 ] || usage_error "no run of ${plan} matches --methods '${methods}'"
for method in ${methods}; do
    [[ " ${names[*]} " == *" ${method} "* ]] || usage_error "--methods: '${method}' is not in ${plan}"
done

mkdir -p exp/comparison/logs
timing=exp/comparison/timing.tsv
touch "${timing}"

# ---------------------------------------------------------------------------- the runs
SECONDS=0
log "data preparation and statistics (./run.sh --stop_stage 10)"
start=${SECONDS}
./run.sh --stop_stage 10 >exp/comparison/logs/data.log 2>&1 ||
    { tail -n 20 exp/comparison/logs/data.log >&2; log "error: data preparation failed; see exp/comparison/logs/data.log"; exit 1; }
echo "data $((SECONDS - start))" >>"${timing}"

total=${#names[@]}
spent=0
manifest=exp/comparison/manifest.tsv
: >"${manifest}.tmp"
for ((index = 0; index < total; index++)); do
    method=${names[index]} seed=${run_seeds[index]}
    tag=${method}_seed${seed}
    eta=
    if [ "${index}" -gt 0 ] && [ "${spent}" -gt 0 ]; then
        eta=", ETA $(((spent / index) * (total - index) / 60)) min"
    fi
    log "run $((index + 1))/${total}: ${method}, seed ${seed} (${configs[index]}; elapsed $((SECONDS / 60)) min${eta})"
    start=${SECONDS}
    eval "run_options=(${options[index]})"
    # the run's whole output into its log; its stage 11-13 lines (progress, results) on the console
    set +e
    ./run.sh --stage 11 --stop_stage 13 --asr_config "${configs[index]}" --asr_tag "${tag}" --asr_args "--seed ${seed}" \
        "${run_options[@]}" 2>&1 | tee "exp/comparison/logs/${tag}.log" | grep --line-buffered -E "Stage 1[1-3]: "
    status=${PIPESTATUS[0]}
    set -e
    [ "${status}" -eq 0 ] || { log "error: run ${tag} failed; see exp/comparison/logs/${tag}.log"; exit 1; }
    echo "${tag} $((SECONDS - start))" >>"${timing}"
    spent=$((spent + SECONDS - start))
    echo "${method} ${roles[index]} ${seed} exp/asr_${tag}" >>"${manifest}.tmp"
done
mv "${manifest}.tmp" "${manifest}"

wall=$(awk '{ s += $2 } END { print s + 0 }' "${timing}")
log "all ${total} runs finished; COMPARISON.md and comparison.png into ${out_dir} (all runs so far: $((wall / 60)) min)"
# shellcheck disable=SC2086
${python} -m espnet_dynenc.bin.compare_results --manifest "${manifest}" --output_dir "${out_dir}" \
    --wall_seconds "${wall}" --command "$(printf '%q ' "$0" "$@")"
