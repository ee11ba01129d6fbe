#!/usr/bin/env bash
# Run a command, or an array of numbered jobs, through Slurm and wait for it to finish.
#
#   utils/slurm.pl [options] [JOB=1:N] <log-file> <command> [<arg>...]
#
# Same calling convention and log files as utils/run.pl (see there). The script is bash;
# it is named slurm.pl because espnet2.bin.launch recognises the Slurm runner by that
# file name and then starts multi-node training as "slurm.pl ... <log> srun <training>".
#
# One sbatch call submits everything: a job array (--array=FIRST-LAST) for JOB=FIRST:LAST,
# else a single job. sbatch --wait blocks until all tasks ended and fails when any task
# failed. The batch script is written to <log-dir>/q/<log-name>.sh; each task replaces
# the job identifier by $SLURM_ARRAY_TASK_ID in the command and the log name, runs the
# command with bash in the submission directory, and appends "# Ended (code N)" to its
# log. Slurm's own messages go to <log-dir>/q/<log-name>-<task>.out.
#
# Options (turned into sbatch options):
#   --gpu N            --gres=gpu:N (and --partition of --gpu_partition when N > 0)
#   --num_threads N    --cpus-per-task=N
#   --num_nodes N      --nodes=N --ntasks-per-node=1 (one launcher per node, for srun)
#   --mem SIZE         --mem=SIZE
#   --time LIMIT       --time=LIMIT
#   --name NAME        --job-name=NAME (default: the log file's name)
#   --partition P      --partition=P
#   --gpu_partition P  partition used instead of --partition for jobs with --gpu > 0
#   --max_jobs_run N   at most N array tasks at once (--array=...%N; also --max-jobs-run)
#   --sbatch_opts "..."  further sbatch options, split on spaces
#   --config FILE      accepted and ignored (Kaldi's slurm.conf is not read)
#   --dry_run          print the sbatch command and batch script, submit nothing
#   -h, --help         show this help
set -u -o pipefail

me=slurm.pl

# shellcheck source=job_common.sh
. "$(dirname "$(readlink -f "$0")")/job_common.sh"

gpu=0
num_threads=
num_nodes=1
mem=
time_limit=
name=
partition=
gpu_partition=
max_jobs_run=
sbatch_opts=
dry_run=false

is_count() { [[ $1 =~ ^[0-9]+$ ]]; }

need_value() {
    [ "$1" -ge 2 ] || die "$2 needs a value"
}

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --dry_run) dry_run=true; shift ;;
        --gpu) need_value $# "$1"; gpu=$2; shift 2 ;;
        --num_threads | --num-threads) need_value $# "$1"; num_threads=$2; shift 2 ;;
        --num_nodes | --num-nodes) need_value $# "$1"; num_nodes=$2; shift 2 ;;
        --mem) need_value $# "$1"; mem=$2; shift 2 ;;
        --time) need_value $# "$1"; time_limit=$2; shift 2 ;;
        --name) need_value $# "$1"; name=$2; shift 2 ;;
        --partition) need_value $# "$1"; partition=$2; shift 2 ;;
        --gpu_partition) need_value $# "$1"; gpu_partition=$2; shift 2 ;;
        --max_jobs_run | --max-jobs-run) need_value $# "$1"; max_jobs_run=$2; shift 2 ;;
        --sbatch_opts) need_value $# "$1"; sbatch_opts=$2; shift 2 ;;
        --config) need_value $# "$1"; shift 2 ;;
        --*) die "unknown option '$1' (see --help)" ;;
        *)
            if parse_job_range "$1"; then shift; else break; fi ;;
    esac
done

for pair in "gpu:${gpu}" "num_nodes:${num_nodes}" "num_threads:${num_threads:-1}" "max_jobs_run:${max_jobs_run:-1}"; do
    is_count "${pair#*:}" || die "--${pair%%:*} must be a number, got '${pair#*:}'"
done
[ $# -ge 2 ] || die "need a log file and a command (see --help)"
log_template=$1
shift
check_log_template "${log_template}"

build_command_template "$@"

log_dir=$(dirname "${log_template}")
log_name=$(basename "${log_template}")
log_name=${log_name%.log}
[ -n "${job_var}" ] && log_name=${log_name//${job_var}/array}
queue_dir=${log_dir//${job_var:-@@none@@}/array}/q
script=${queue_dir}/${log_name}.sh
[ -n "${name}" ] || name=${log_name}

sbatch_command() {
    # the sbatch argument list, one per line
    local out_pattern="${queue_dir}/${log_name}-%j.out"
    printf '%s\n' sbatch --wait --parsable --export=ALL "--job-name=${name}" "--chdir=${PWD}"
    if [ -n "${job_var}" ]; then
        out_pattern="${queue_dir}/${log_name}-%a.out"
        printf '%s\n' "--array=${job_first}-${job_last}${max_jobs_run:+%${max_jobs_run}}"
    fi
    printf '%s\n' "--output=${out_pattern}"
    if [ "${gpu}" -gt 0 ]; then
        printf '%s\n' "--gres=gpu:${gpu}"
        [ -n "${gpu_partition}" ] && printf '%s\n' "--partition=${gpu_partition}"
    fi
    if [ -n "${partition}" ] && { [ "${gpu}" -eq 0 ] || [ -z "${gpu_partition}" ]; }; then
        printf '%s\n' "--partition=${partition}"
    fi
    [ -n "${num_threads}" ] && printf '%s\n' "--cpus-per-task=${num_threads}"
    if [ "${num_nodes}" -gt 1 ]; then
        printf '%s\n' "--nodes=${num_nodes}" "--ntasks-per-node=1"
    fi
    [ -n "${mem}" ] && printf '%s\n' "--mem=${mem}"
    [ -n "${time_limit}" ] && printf '%s\n' "--time=${time_limit}"
    local opt
    for opt in ${sbatch_opts}; do
        printf '%s\n' "${opt}"
    done
    printf '%s\n' "${script}"
}

write_batch_script() {
    # the task's own index replaces the job identifier at run time
    mkdir -p "${queue_dir}" || die "cannot create ${queue_dir}"
    {
        echo "#!/usr/bin/env bash"
        echo "# written by ${me} for: ${log_template}"
        echo "cd $(printf '%q' "${PWD}") || exit 1"
        echo "task=\${SLURM_ARRAY_TASK_ID:-${job_first}}"
        echo "command=$(printf '%q' "${command_template}")"
        echo "log=$(printf '%q' "${log_template}")"
        if [ -n "${job_var}" ]; then
            echo "command=\${command//${job_var}/\${task}}"
            echo "log=\${log//${job_var}/\${task}}"
        fi
        echo 'mkdir -p "$(dirname "${log}")" || exit 1'
        echo 'started=${SECONDS}'
        echo 'printf "# %s\n# Started at %s on %s (slurm job %s)\n#\n" "${command}" "$(date)" "$(hostname)" "${SLURM_JOB_ID:-?}" >"${log}"'
        echo 'bash -c "${command}" >>"${log}" 2>&1 </dev/null'
        echo 'status=$?'
        echo 'printf "# Accounting: time=%d threads=%s\n# Ended (code %d) at %s, elapsed time %d seconds\n" $((SECONDS - started)) "${SLURM_CPUS_PER_TASK:-1}" "${status}" "$(date)" $((SECONDS - started)) >>"${log}"'
        echo 'exit "${status}"'
    } >"${script}" || die "cannot write ${script}"
    chmod +x "${script}"
}

failed_tasks() {
    # indices whose log does not end with "# Ended (code 0)"
    local index log
    for ((index = job_first; index <= job_last; index++)); do
        log=${log_template}
        [ -n "${job_var}" ] && log=${log//${job_var}/${index}}
        grep -q '^# Ended (code 0)' "${log}" 2>/dev/null || echo "${index}"
    done
}

mapfile -t submit < <(sbatch_command)
write_batch_script
if ${dry_run}; then
    printf '%q ' "${submit[@]}"
    echo
    cat "${script}"
    exit 0
fi
command -v sbatch >/dev/null || die "sbatch not found: Slurm's client tools must be on PATH"
"${submit[@]}" >"${queue_dir}/${log_name}.sbatch_id"
sbatch_status=$?
mapfile -t failed < <(failed_tasks)
if [ "${sbatch_status}" -ne 0 ] || [ "${#failed[@]}" -gt 0 ]; then
    if [ -n "${job_var}" ]; then
        echo "${me}: ${#failed[@]} / ${num_jobs} failed (tasks: ${failed[*]:-?}), log is in ${log_template//${job_var}/*}" >&2
    else
        echo "${me}: job failed, log is in ${log_template}" >&2
    fi
    [ "${sbatch_status}" -ne 0 ] && exit "${sbatch_status}"
    exit 1
fi
exit 0
