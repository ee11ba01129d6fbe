# Option parsing for the recipe scripts: "--name value" or "--name=value" sets the shell
# variable "name" (dashes in the name count as underscores: --train-set = --train_set).
#
# Source it, then call:   parse_options "$@"
# The caller defines option_names (space-separated names that may be set) and
# help_message (printed for -h/--help). A name outside option_names, an option without a
# value and a positional argument are errors (exit status 2). option_given NAME tells
# whether NAME was set on the command line.
#
# option_names need not be written out: options_declared_in FILE lists the variables
# assigned in FILE's defaults block, the lines between "# ---- options" and
# "# ---- end of options" (any number of dashes), so every option is written once, with
# its default, and the list follows the block.
#
# A script with messages of its own defines option_error before calling parse_options;
# it is called with the kind of error and the offending argument, and must exit. The kinds:
# "unknown" (a name outside option_names), "missing_value" (a known name last, without a
# value), "unknown_last" (an unknown name last, without a value), "positional" (not an
# option). Without it, parse_options prints its own message and exits 2 (an unknown name
# given last counts as a missing value there).

given_options=" "

# the names assigned at the start of a line in FILE's defaults block, space-separated
options_declared_in() {
    awk '/^# -+ options$/ { inside = 1; next }
         /^# -+ end of options$/ { inside = 0 }
         inside && /^[A-Za-z_][A-Za-z0-9_]*=/ { sub(/=.*/, ""); printf "%s ", $0 }' "$1"
}

# report a bad command line through the caller's option_error, else with these messages
report_option_error() {
    local kind=$1 arg=$2
    if declare -F option_error >/dev/null; then
        option_error "${kind}" "${arg}"
    fi
    case "${kind}" in
        missing_value | unknown_last) echo "${0##*/}: error: option '${arg}' needs a value (see --help)" >&2 ;;
        positional)
            echo "${0##*/}: error: unexpected argument '${arg}': options look like --name value (see --help)" >&2
            ;;
        *) echo "${0##*/}: error: unknown option '${arg}' (see --help)" >&2 ;;
    esac
    exit 2
}

parse_options() {
    local arg name value
    while [ $# -gt 0 ]; do
        arg=$1
        case "${arg}" in
            -h | --help)
                echo "${help_message}"
                exit 0
                ;;
            --*=*)
                name=${arg%%=*}
                value=${arg#*=}
                shift
                ;;
            --*)
                name=${arg}
                if [ $# -lt 2 ]; then
                    name=${arg#--}
                    [[ " ${option_names} " == *" ${name//-/_} "* ]] || report_option_error unknown_last "${arg}"
                    report_option_error missing_value "${arg}"
                fi
                value=$2
                shift 2
                ;;
            *)
                report_option_error positional "${arg}"
                ;;
        esac
        name=${name#--}
        name=${name//-/_}
        [[ " ${option_names} " == *" ${name} "* ]] || report_option_error unknown "${arg%%=*}"
        printf -v "${name}" '%s' "${value}"
        given_options+="${name} "
    done
}

option_given() {
    [[ ${given_options} == *" $1 "* ]]
}
