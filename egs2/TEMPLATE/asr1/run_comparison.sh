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
#   ./run_comparison.sh --plan conf/ablation_plan.tsv --report ABLATION.md   # another plan, its own report
#   ./run_comparison.sh --report_only true      # the report from the runs summarised so far
#   ./run_comparison.sh --plan conf/longer_plan.tsv --report LONGER.md --other_seeds 0  # twice the updates
#   ./run_comparison.sh --reaverage true        # finished runs averaged again, decoded again where changed
#   ./run_comparison.sh --redecode true         # finished runs decoded again where out of date (a new test set)
# Steps: data preparation and statistics once (./run.sh --stop_stage 10), then per run
# and seed ./run.sh --stage 11 --stop_stage 13 (training, decoding, scoring) with the run's config, into
# exp/asr_<method>_seed<seed>; a supernet whose sizes (a pruned model whose depths) have their
# own checkpoints is decoded once more from the full size's (--size_checkpoints false), so the
# report shows both rules.
# Each finished run is summarised into comparison_runs/<method>_seed<seed>.json (what the
# tables and intervals need; small text files meant to be committed): a run with a summary
# is done, here or on another machine, so a rerun, or a clone with the summaries, continues
# where an interrupted comparison stopped; within a run, asr.sh skips finished stages.
# Delete a run's summary to run it again. Logs: exp/comparison/logs/<method>_seed<seed>.log.
# A plan line whose options start with "--runner SCRIPT" runs SCRIPT in place of ./run.sh
# for its stages 11-13 (SCRIPT takes run.sh's options), e.g. local/finetune_from_stock.sh,
# which pre-trains a stock model and converts it before the run's own training.
# A role may carry a regime, "<role>@<regime>" (e.g. supernet@2x, alone@2x for runs at twice the
# updates; a plain role is regime 1x): the report sets each regime's supernets, pruned and DMAO
# models only against the sizes trained alone in that same regime, shows the regimes' rows side
# by side and, per size, the supernet-minus-alone gap of each regime. A method name stands for
# one regime: give the longer runs their own names (des_simple_topk_2x).
# --reaverage true repairs runs trained before the task's trainer averaged each
# best_model_criterion on its own (ESPnet's averaging of several criteria can average an
# average; see espnet_dynenc.checkpoint_averaging): every run with a summary and its
# experiment dir is averaged again (python -m espnet_dynenc.bin.average_checkpoints); one whose
# averages changed is decoded again (stages 12-13, both rules: asr.sh redoes each decoding whose
# checkpoint changed) and its summary takes the new results, keeping its measured run time
# (compare_results --refresh_results). Nothing is trained; then the report, as --report_only.
# --redecode true decodes every run with a summary and its experiment dir again where asr.sh
# finds a decoding out of date (stages 12-13, both rules: another checkpoint, decoding option
# or data set; e.g. after the corpus was made again with a larger test set: rm
# data/.stage1.done and the test set's dump/raw/<set>/.done, then ./run.sh --stop_stage 3) and
# refreshes its summary's results, keeping its measured run time. Nothing is trained; then
# the report, as --report_only.
set -euo pipefail

log() {
    echo "$(date '+%Y-%m-%dT%H:%M:%S') (run_comparison.sh) $*"
}

usage_error() {
    echo "run_comparison.sh: error: $*" >&2
    exit 2
}

plan=conf/comparison_plan.tsv # one run per line: method role seeds config [run.sh options]
seeds="0 1 2"                 # seeds of the runs whose seed group is "main"
other_seeds="0 1"             # seeds of the runs whose seed group is "other"
baseline_seeds="0 1 2 3 4 5"  # seeds of the runs whose seed group is "baseline" (the sizes trained alone)
methods=                      # only these methods of the plan (default: all)
out_dir=.                     # the report and its plot go here
report=COMPARISON.md          # the report's file name; the plot is its lower-cased stem + .png
runs_dir=comparison_runs      # one summary per finished run (<method>_seed<seed>.json)
python=python3
report_only=false             # true: the report from the runs that have a summary; train nothing
reaverage=false               # true: the finished runs averaged again, decoded again where changed; train nothing
redecode=false                # true: the finished runs decoded again where out of date; train nothing

option_names="plan seeds other_seeds baseline_seeds methods out_dir report runs_dir python report_only"
option_names+=" reaverage redecode"
help_message=$(
    cat <<EOF
Usage: $0 [options]   (run from a recipe directory, egs2/<corpus>/asr1)
Trains and decodes every run of the plan with ./run.sh and writes COMPARISON.md and
comparison.png. Finished work is skipped; an interrupted comparison continues.

Options (default in brackets):
  --plan FILE          runs: "<method> <role> <seed group> <config> [run.sh options]" per line [${plan}]
                       roles: supernet, alone, pruned, dmao, each optionally "@<regime>" (supernet@2x,
                       alone@2x: compared only with runs of the same regime; plain: 1x); seed groups:
                       main, other, baseline; options starting with "--runner SCRIPT": SCRIPT trains
                       and decodes the run instead of ./run.sh
  --seeds "S..."       seeds of the "main" runs (rows over seeds show mean ± sd) [${seeds}]
  --other_seeds "S..." seeds of the "other" runs [${other_seeds}]
  --baseline_seeds "S..."  seeds of the "baseline" runs, the sizes trained alone that every claim
                       is set against, so that their seed spread narrows every interval [${baseline_seeds}]
  --methods "M..."     run only these methods of the plan [all]
  --out_dir DIR        where the report and its plot go [${out_dir}]
  --report NAME        the report's file name, e.g. ABLATION.md; the plot is its lower-cased
                       stem + .png (comparison.png, ablation.png) [${report}]
  --runs_dir DIR       summaries of finished runs; a run with one is not run again [${runs_dir}]
  --python CMD         python command [${python}]
  --report_only BOOL   write the report from the runs that have a summary, train and decode
                       nothing; runs without one are named on the console and left out [${report_only}]
  --reaverage BOOL     average every run with a summary again, one best_model_criterion at a time;
                       decode a run whose averages changed again and refresh its summary's
                       results (run time kept); train nothing; then the report [${reaverage}]
  --redecode BOOL      decode every run with a summary again where its decodings are out of date
                       (another checkpoint, option or test set: asr.sh's markers) and refresh
                       its summary's results (run time kept); train nothing; then the report [${redecode}]
EOF
)
# shellcheck source=utils/parse_options.sh
. "$(dirname "$(readlink -f "$0")")/utils/parse_options.sh"
parse_options "$@"

[ -f "${plan}" ] || usage_error "--plan: no such file: ${plan}"
case "${report_only}" in true | false) ;; *) usage_error "--report_only must be true or false, got '${report_only}'" ;; esac
case "${reaverage}" in true | false) ;; *) usage_error "--reaverage must be true or false, got '${reaverage}'" ;; esac
case "${redecode}" in true | false) ;; *) usage_error "--redecode must be true or false, got '${redecode}'" ;; esac
[ "${reaverage}" = false ] || [ "${redecode}" = false ] || usage_error "--reaverage and --redecode: give one at a time"
# nothing is trained: the report of the runs with a summary
[ "${reaverage}" = false ] && [ "${redecode}" = false ] || report_only=true
[[ ${report} =~ ^[A-Za-z0-9_.-]+\.md$ ]] || usage_error "--report must be a file name ending in .md, got '${report}'"
plot=$(basename "${report}" .md | tr '[:upper:]' '[:lower:]').png
[ -x ./run.sh ] || usage_error "no ./run.sh in $(pwd): run from a recipe directory (egs2/<corpus>/asr1)"
for seed in ${seeds} ${other_seeds} ${baseline_seeds}; do
    [[ ${seed} =~ ^[0-9]+$ ]] || usage_error "seeds must be whole numbers, got '${seed}'"
done
[ -n "${seeds// /}" ] || usage_error "--seeds is empty"
[ -f path.sh ] || usage_error "no path.sh in $(pwd): run from a recipe directory (egs2/<corpus>/asr1)"
# the environment asr.sh works in (tools/venv, the package on PYTHONPATH), also for the tables
# shellcheck source=path.sh
. ./path.sh

# ----------------------------------------------------------------------------- the plan
plan_names=() plan_roles=() plan_configs=() plan_options=() plan_seeds=()
line_number=0
while IFS= read -r line || [ -n "${line}" ]; do
    line_number=$((line_number + 1))
    [[ ${line} =~ ^[[:space:]]*(#|$) ]] && continue
    read -r method role group config rest <<<"${line}"
    [ -n "${config:-}" ] || usage_error "${plan}:${line_number}: expected '<method> <role> <seed group> <config> [options]'"
    case "${role%%@*}" in supernet | alone | pruned | dmao) ;; *)
        usage_error "${plan}:${line_number}: unknown role '${role}' (supernet, alone, pruned, dmao; optionally @<regime>)" ;;
    esac
    if [[ ${role} == *@* ]] && ! [[ ${role#*@} =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]]; then
        usage_error "${plan}:${line_number}: bad regime '${role#*@}' in role '${role}' (e.g. supernet@2x)"
    fi
    case "${group}" in
        main) group_seeds=${seeds} ;;
        other) group_seeds=${other_seeds} ;;
        baseline) group_seeds=${baseline_seeds} ;;
        *) usage_error "${plan}:${line_number}: unknown seed group '${group}' (main, other, baseline)" ;;
    esac
    [ -f "${config}" ] || usage_error "${plan}:${line_number}: config '${config}' does not exist"
    if [[ ${rest:-} =~ ^--runner[[:space:]]+([^[:space:]]+) ]] && [ ! -x "${BASH_REMATCH[1]}" ]; then
        usage_error "${plan}:${line_number}: runner '${BASH_REMATCH[1]}' is not an executable script"
    fi
    if [ -n "${methods}" ] && [[ " ${methods} " != *" ${method} "* ]]; then continue; fi
    plan_names+=("${method}") plan_roles+=("${role}") plan_configs+=("${config}") plan_options+=("${rest:-}")
    plan_seeds+=("${group_seeds}")
done <"${plan}"
# the runs, seed by seed (every method of the first seed, then of the next one), so that an
# interrupted comparison has every method of its first seeds
names=() roles=() configs=() options=() run_seeds=()
all_seeds=$(printf '%s\n' ${seeds} ${other_seeds} ${baseline_seeds} | awk '!seen[$0]++')
for seed in ${all_seeds}; do
    for ((index = 0; index < ${#plan_names[@]}; index++)); do
        [[ " ${plan_seeds[index]} " == *" ${seed} "* ]] || continue
        names+=("${plan_names[index]}") roles+=("${plan_roles[index]}") configs+=("${plan_configs[index]}")
        options+=("${plan_options[index]}") run_seeds+=("${seed}")
    done
done
[ "${#names[@]}" -gt 0 ] || usage_error "no run of ${plan} matches --methods '${methods}'"
for method in ${methods}; do
    [[ " ${names[*]} " == *" ${method} "* ]] || usage_error "--methods: '${method}' is not in ${plan}"
done

mkdir -p exp/comparison/logs
timing=exp/comparison/timing.tsv
touch "${timing}"

# run_stages INDEX STAGE: stages STAGE-13 of run INDEX with its runner and options (from 11:
# training too); a supernet whose sizes (a pruned model whose depths) have their own
# checkpoints is decoded once more from the full size's. Its whole output goes into its log
# (appended from stage 12), its stage 11-13 lines (progress, results) to the console.
run_stages() {
    local index=$1 first=$2 tag=${names[$1]}_seed${run_seeds[$1]} runner=./run.sh status
    local run_options run_args
    eval "run_options=(${options[index]})"
    if [ "${run_options[0]:-}" = --runner ]; then
        runner=${run_options[1]}
        run_options=("${run_options[@]:2}")
    fi
    run_args=(--asr_config "${configs[index]}" --asr_tag "${tag}" --asr_args "--seed ${run_seeds[index]}"
        "${run_options[@]}")
    local tee_opts=()
    [ "${first}" -eq 11 ] || tee_opts=(-a)
    set +e
    {
        "${runner}" --stage "${first}" --stop_stage 13 "${run_args[@]}" &&
            if [ "${roles[index]%%@*}" = supernet ] || [ "${roles[index]%%@*}" = pruned ]; then
                # nothing to do when no size (depth) has its own checkpoint
                "${runner}" --stage 12 --stop_stage 13 --size_checkpoints false "${run_args[@]}"
            fi
    } 2>&1 | tee "${tee_opts[@]}" "exp/comparison/logs/${tag}.log" | grep --line-buffered -E "Stage 1[1-3]: "
    status=${PIPESTATUS[0]}
    set -e
    return "${status}"
}

# exp_dir_here INDEX: whether the experiment dir of run INDEX is here; where it is not, says
# that the run's summary is kept as it is
exp_dir_here() {
    local tag=${names[$1]}_seed${run_seeds[$1]}
    [ -d "exp/asr_${tag}" ] && return 0
    log "run ${tag}: no exp/asr_${tag} here; its summary is kept as it is"
    return 1
}

# decode_again INDEX: stages 12-13 of a finished run again (asr.sh redoes each decoding that is
# out of date: another checkpoint, option or data set) and its summary read again from its
# experiment dir, its measured run time kept (compare_results --refresh_results)
decode_again() {
    local index=$1 tag=${names[$1]}_seed${run_seeds[$1]}
    log "run ${tag}: decoding again where out of date (log: exp/comparison/logs/${tag}.log)"
    run_stages "${index}" 12 || { log "error: decoding ${tag} again failed; see exp/comparison/logs/${tag}.log"; exit 1; }
    echo "${names[index]} ${roles[index]} ${run_seeds[index]} exp/asr_${tag}" >"exp/comparison/run_${tag}.tsv"
    ${python} -m espnet_dynenc.bin.compare_results --manifest "exp/comparison/run_${tag}.tsv" \
        --runs_dir "${runs_dir}" --refresh_results || { log "error: cannot refresh the summary of ${tag}"; exit 1; }
}

# reaverage_run INDEX: a finished run averaged again; decoded again and its summary refreshed
# where an average changed (see --reaverage)
reaverage_run() {
    local index=$1 tag=${names[$1]}_seed${run_seeds[$1]} exp out
    exp_dir_here "${index}" || return 0
    exp=exp/asr_${tag}
    out=$(${python} -m espnet_dynenc.bin.average_checkpoints --exp_dir "${exp}" 2>&1) ||
        { echo "${out}" >&2; log "error: cannot average ${exp} again"; exit 1; }
    echo "${out}" | grep "^average_checkpoints: " | sed "s/^/    /"
    if ! echo "${out}" | grep -q "averages made again, [1-9][0-9]* changed"; then
        log "run ${tag}: every average as it was; nothing to decode again"
        return 0
    fi
    decode_again "${index}"
}

# ---------------------------------------------------------------------------- the runs
SECONDS=0
total=${#names[@]}
pending=0
for ((index = 0; index < total; index++)); do
    [ -f "${runs_dir}/${names[index]}_seed${run_seeds[index]}.json" ] || pending=$((pending + 1))
done
if [ "${pending}" -gt 0 ] && [ "${report_only}" = false ]; then
    log "data preparation and statistics (./run.sh --stop_stage 10)"
    start=${SECONDS}
    ./run.sh --stop_stage 10 >exp/comparison/logs/data.log 2>&1 || {
        tail -n 20 exp/comparison/logs/data.log >&2
        log "error: data preparation failed; see exp/comparison/logs/data.log"
        exit 1
    }
    echo "data $((SECONDS - start))" >>"${timing}"
fi

spent=0 ran=0 reported=0
manifest=exp/comparison/manifest.tsv
trap 'rm -f "${manifest}.$$.tmp"' EXIT
: >"${manifest}.$$.tmp"
for ((index = 0; index < total; index++)); do
    method=${names[index]} seed=${run_seeds[index]}
    tag=${method}_seed${seed}
    line="${method} ${roles[index]} ${seed} exp/asr_${tag}"
    if [ -f "${runs_dir}/${tag}.json" ]; then
        echo "${line}" >>"${manifest}.$$.tmp"
        reported=$((reported + 1))
        log "run $((index + 1))/${total}: ${method}, seed ${seed}: done (${runs_dir}/${tag}.json)"
        [ "${reaverage}" = false ] || reaverage_run "${index}"
        if [ "${redecode}" = true ] && exp_dir_here "${index}"; then decode_again "${index}"; fi
        continue
    fi
    if [ "${report_only}" = true ]; then
        log "run $((index + 1))/${total}: ${method}, seed ${seed}: not run yet, left out of the report (--report_only)"
        continue
    fi
    echo "${line}" >>"${manifest}.$$.tmp"
    reported=$((reported + 1))
    eta=
    if [ "${ran}" -gt 0 ] && [ "${spent}" -gt 0 ]; then
        eta=", ETA $(((spent / ran) * (pending - ran) / 60)) min"
    fi
    log "run $((index + 1))/${total}: ${method}, seed ${seed} (${configs[index]}; elapsed $((SECONDS / 60)) min${eta})"
    start=${SECONDS}
    run_stages "${index}" 11 || { log "error: run ${tag} failed; see exp/comparison/logs/${tag}.log"; exit 1; }
    echo "${tag} $((SECONDS - start))" >>"${timing}"
    echo "${line}" >"exp/comparison/run_${tag}.tsv"
    ${python} -m espnet_dynenc.bin.compare_results --manifest "exp/comparison/run_${tag}.tsv" \
        --runs_dir "${runs_dir}" --summarise_only --run_seconds "$((SECONDS - start))" ||
        { log "error: cannot summarise run ${tag}"; exit 1; }
    spent=$((spent + SECONDS - start)) ran=$((ran + 1))
done
[ "${reported}" -gt 0 ] || { log "error: no run of ${plan} has a summary in ${runs_dir}: nothing to report"; exit 1; }
mv "${manifest}.$$.tmp" "${manifest}"

if [ "${reported}" -lt "${total}" ]; then
    log "${reported} of ${total} runs summarised (--report_only);" "${report} and ${plot} into ${out_dir}"
else
    log "all ${total} runs finished (${ran} in this call, $((SECONDS / 60)) min);" \
        "${report} and ${plot} into ${out_dir}"
fi
${python} -m espnet_dynenc.bin.compare_results --manifest "${manifest}" --runs_dir "${runs_dir}" \
    --output_dir "${out_dir}" --report "${report}" --command "$(printf '%q ' "$0" "$@")"
