# Shared by the job runners run.pl and slurm.pl, which source it after setting ${me}: their
# help text, errors, the JOB=FIRST:LAST argument, the log-file check, and how the command's
# arguments are quoted for bash (see run.pl's header).

usage() {
    sed -n '2,/^set -u/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
    echo "${me}: error: $*" >&2
    exit 2
}

job_var=
job_first=1
job_last=1

parse_job_range() {
    # NAME=FIRST:LAST or NAME=INDEX; returns 1 (and sets nothing) for anything else
    local spec=$1
    [[ ${spec} =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)(:([0-9]+))?$ ]] || return 1
    job_var=${BASH_REMATCH[1]}
    job_first=$((10#${BASH_REMATCH[2]}))
    job_last=$((10#${BASH_REMATCH[4]:-${BASH_REMATCH[2]}}))
    ((job_first <= job_last)) || die "empty job range '${spec}'"
}

# num_jobs from the job range; several jobs need the job identifier in their log name
check_log_template() {
    local template=$1
    num_jobs=$((job_last - job_first + 1))
    if [ -n "${job_var}" ] && [ "${num_jobs}" -gt 1 ] && [[ ${template} != *"${job_var}"* ]]; then
        die "log file '${template}' lacks '${job_var}': all ${num_jobs} jobs would write the same log"
    fi
}

shell_word() {
    # one argument as bash should see it: ordinary words and shell operators as they are,
    # anything else quoted
    local arg=$1
    case "${arg}" in
        "|" | "||" | "&&" | ";" | ">" | ">>" | "<" | "2>&1" | "&>") printf '%s' "${arg}"; return ;;
    esac
    if [[ -n ${arg} && ${arg} =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
        printf '%s' "${arg}"
    else
        printf "'%s'" "${arg//\'/\'\\\'\'}"
    fi
}

# command_template: the arguments joined into one bash command line
build_command_template() {
    local arg
    command_template=
    for arg in "$@"; do
        command_template+="$(shell_word "${arg}") "
    done
    command_template=${command_template% }
}
