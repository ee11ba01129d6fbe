#!/usr/bin/env bash
# Run a command, or an array of numbered jobs, on this machine; write each job's output
# to its own log file.
#
#   utils/run.pl [options] [JOB=1:N] <log-file> <command> [<arg>...]
#
# This is the calling convention of Kaldi's run.pl, which ESPnet recipes and
# espnet2.bin.launch use for every job runner (cmd.sh's train_cmd, decode_cmd, cuda_cmd).
# The script is bash; it keeps the name run.pl because espnet2.bin.launch recognises job
# runners by file name (it refuses multi-node training with run.pl, as it should).
#
# With JOB=1:N (any upper-case-or-not identifier works, e.g. N=3:5) the command runs once
# per index; every occurrence of the identifier in <log-file> and in the command is
# replaced by the index. Up to --max_jobs_run jobs run at a time. The exit status is 0
# when every job succeeded, else the status of the lowest-numbered failed job.
#
# Each log starts with the command and the start time and ends with
# "# Ended (code <status>) at <date>". Arguments made only of ordinary characters
# (letters, digits, / . , : = + @ % - _) and the shell operators | || && ; > >> < 2>&1
# are passed to bash as they are, so pipes and redirections work; any other argument is
# quoted, so spaces, '*', '$' and brackets arrive literally.
#
# Options:
#   --max_jobs_run N   jobs running at once (default: number of CPUs; also --max-jobs-run)
#   --gpu N            accepted for compatibility; jobs see the machine's GPUs as they are
#   --num_threads N    accepted for compatibility
#   --num_nodes N      must be 1: this runner has only this machine
#   --mem, --time, --name, --config VALUE
#                      accepted and ignored (scheduler settings of cluster runners)
#   -h, --help         show this help
set -u -o pipefail

me=run.pl

# shellcheck source=job_common.sh
. "$(dirname "$(readlink -f "$0")")/job_common.sh"

max_jobs_run=$(nproc 2>/dev/null || echo 1)
num_nodes=1

is_count() { [[ $1 =~ ^[1-9][0-9]*$ ]]; }

while [ $# -gt 0 ]; do
    case "$1" in
        -h | --help) usage; exit 0 ;;
        --max_jobs_run | --max-jobs-run)
            if [ $# -lt 2 ] || ! is_count "$2"; then die "$1 needs a positive number"; fi
            max_jobs_run=$2; shift 2 ;;
        --num_nodes | --num-nodes)
            [ $# -ge 2 ] || die "$1 needs a value"
            num_nodes=$2; shift 2 ;;
        --gpu | --num_threads | --num-threads | --mem | --time | --name | --config)
            [ $# -ge 2 ] || die "$1 needs a value"
            shift 2 ;;
        --*) die "unknown option '$1' (see --help)" ;;
        *)
            if parse_job_range "$1"; then shift; else break; fi ;;
    esac
done

[ "${num_nodes}" = 1 ] || die "--num_nodes ${num_nodes}: run.pl runs jobs on this machine only; use slurm.pl"
[ $# -ge 2 ] || die "need a log file and a command (see --help)"
log_template=$1
shift
check_log_template "${log_template}"

build_command_template "$@"

for_job() {
    # the template with the job identifier replaced by index $2
    local text=$1
    if [ -n "${job_var}" ]; then
        text=${text//${job_var}/$2}
    fi
    printf '%s' "${text}"
}

run_job() {
    local index=$1 command log status started=${SECONDS}
    command=$(for_job "${command_template}" "${index}")
    log=$(for_job "${log_template}" "${index}")
    mkdir -p "$(dirname "${log}")" || return 1
    printf '# %s\n# Started at %s\n#\n' "${command}" "$(date)" >"${log}" || return 1
    bash -c "${command}" >>"${log}" 2>&1 </dev/null
    status=$?
    printf '# Accounting: time=%d threads=1\n# Ended (code %d) at %s, elapsed time %d seconds\n' \
        $((SECONDS - started)) "${status}" "$(date)" $((SECONDS - started)) >>"${log}"
    return "${status}"
}

status_dir=$(mktemp -d "${TMPDIR:-/tmp}/run.pl.XXXXXX") || die "cannot create a temporary directory"
trap 'rm -rf "${status_dir}"' EXIT

# Jobs stay in the caller's process group: whatever stops the recipe as a whole (Ctrl-C in
# its terminal, kill -9 of its process group) reaches every job too, so no training is left
# running on its own. A TERM or INT sent to run.pl alone is passed on to every process below
# it (without job control, bash starts background jobs with INT ignored).
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        descendants "${child}"
        echo "${child}"
    done
}

stop_jobs() {
    local pids
    pids=$(descendants $$)
    # shellcheck disable=SC2086  # one argument per process id
    [ -z "${pids}" ] || kill -TERM ${pids} 2>/dev/null
    wait
    echo "${me}: interrupted; unfinished jobs were stopped" >&2
    exit "$1"
}
trap 'stop_jobs 130' INT
trap 'stop_jobs 143' TERM

for ((index = job_first; index <= job_last; index++)); do
    while [ "$(jobs -rp | wc -l)" -ge "${max_jobs_run}" ]; do
        wait -n
    done
    (
        run_job "${index}"
        status=$?
        echo "${status}" >"${status_dir}/${index}"
        if [ "${num_jobs}" -gt 1 ]; then
            done_count=$(find "${status_dir}" -type f | wc -l)
            echo "${me}: job ${index} ended with status ${status} (${done_count} of ${num_jobs} done)" >&2
        fi
    ) &
done
# without job control a stopped and continued job (kill -STOP, a suspended terminal) is
# simply waited for to its end
wait

failed=0
first_status=0
for ((index = job_first; index <= job_last; index++)); do
    status=$(cat "${status_dir}/${index}" 2>/dev/null || echo 1)
    if [ "${status}" -ne 0 ]; then
        failed=$((failed + 1))
        [ "${first_status}" -ne 0 ] || first_status=${status}
    fi
done
if [ "${failed}" -gt 0 ]; then
    if [ "${num_jobs}" -gt 1 ]; then
        echo "${me}: ${failed} / ${num_jobs} failed, log is in $(for_job "${log_template}" '*')" >&2
    else
        echo "${me}: job failed, log is in $(for_job "${log_template}" "${job_first}")" >&2
    fi
    exit "${first_status}"
fi
exit 0
