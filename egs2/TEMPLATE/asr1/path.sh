# Environment for the recipes; asr.sh sources it from egs2/<corpus>/asr1, where it is a
# symbolic link to egs2/TEMPLATE/asr1/path.sh.
#
# - activates the repository's tools/venv when it exists (bash tools/setup_venv.sh makes it)
# - puts the repository root on PYTHONPATH, so espnet_dynenc imports without installing
# - adds Debian's sctk directory to PATH, where its sclite lives
# - sorts and compares in the C locale, as Kaldi-style data directories require
_path_sh_dir=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
repo_root=$(cd "${_path_sh_dir}/../../.." && pwd)
unset _path_sh_dir
if [ -f "${repo_root}/tools/venv/bin/activate" ] && [ "${VIRTUAL_ENV:-}" != "${repo_root}/tools/venv" ]; then
    # shellcheck disable=SC1091
    . "${repo_root}/tools/venv/bin/activate"
fi
export PYTHONPATH="${repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
if [ -d /usr/lib/sctk/bin ] && [[ ":${PATH}:" != *":/usr/lib/sctk/bin:"* ]]; then
    export PATH="${PATH}:/usr/lib/sctk/bin"
fi
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
