#!/usr/bin/env bash
# Best effort: install the optional Debian tools the recipes use when present
# (sclite from sctk for scoring, sox and flac for audio, espeak-ng for the synthetic corpus).
# Without root or apt-get this prints what is missing and carries on: every tool has a
# fallback inside the project.
set -uo pipefail
case "${1:-}" in
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
packages=(sctk sox flac espeak-ng)
missing=()
# Debian installs sclite under /usr/lib/sctk/bin; recipes put that on PATH (path.sh).
command -v sclite >/dev/null || [ -x /usr/lib/sctk/bin/sclite ] || missing+=(sctk)
command -v sox >/dev/null || missing+=(sox)
command -v flac >/dev/null || missing+=(flac)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian packages: ${missing[*]}"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null) \
        || echo "warning: could not install ${missing[*]}; the project's fallbacks will be used"
else
    echo "note: optional tools not installed: ${missing[*]} (of ${packages[*]}); fallbacks will be used"
fi
exit 0
