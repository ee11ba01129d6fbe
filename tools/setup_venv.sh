#!/usr/bin/env bash
# Create (or reuse) tools/venv with espnet_dynenc and its pinned dependencies.
#
# Usage: bash tools/setup_venv.sh [--python PYTHON]
#
# The pins follow espnet 202511's working set: torch/torchaudio 2.11.0 (torchaudio must match
# torch exactly), setuptools<74 (espnet's own pin). Running it again is cheap: a finished
# install leaves tools/venv/.done and is not repeated unless setup.py changed.
set -euo pipefail

python=python3
while [ $# -gt 0 ]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "$0: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/tools/venv"
stamp="$venv/.done"
fingerprint=$(cat "$root/setup.py" "$0" | sha1sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$fingerprint" ]; then
    echo "tools/venv is up to date"
    exit 0
fi
rm -f "$stamp"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/python -m pip"
# newer pip refuses ci_sdr 0.0.2 (an espnet dependency) for a git URL in an extra it never installs
$pip install --quiet "pip==23.2.1"

echo "installing espnet_dynenc and its dependencies into tools/venv (several GB on a first run)..."
$pip install --progress-bar off "torch==2.11.0" "torchaudio==2.11.0"
$pip install --progress-bar off -e "$root[test]"
$pip check
echo "$fingerprint" > "$stamp"
echo "tools/venv ready: source tools/venv/bin/activate"
