# Option parsing for the recipe scripts: "--name value" or "--name=value" sets the shell
# variable "name" (dashes in the name count as underscores: --train-set = --train_set).
#
# Source it, then call:   parse_options "$@"
# The caller defines option_names (space-separated names that may be set) and
# help_message (printed for -h/--help). A name outside option_names, an option without a
# value and a positional argument are errors (exit status 2). option_given NAME tells
# whether NAME was set on the command line.

given_options=" "

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
                    echo "${0##*/}: error: option '${arg}' needs a value (see --help)" >&2
                    exit 2
                fi
                value=$2
                shift 2
                ;;
            *)
                echo "${0##*/}: error: unexpected argument '${arg}': options look like --name value (see --help)" >&2
                exit 2
                ;;
        esac
        name=${name#--}
        name=${name//-/_}
        if [[ " ${option_names} " != *" ${name} "* ]]; then
            echo "${0##*/}: error: unknown option '${arg%%=*}' (see --help)" >&2
            exit 2
        fi
        printf -v "${name}" '%s' "${value}"
        given_options+="${name} "
    done
}

option_given() {
    [[ ${given_options} == *" $1 "* ]]
}
