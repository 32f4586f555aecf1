#!/usr/bin/env bash
# Rehearse on the built-in simulated Pico HSM: no hardware, no pcscd.
# Usage: scripts/demo.sh [path/to/pico-hsm-tool]
set -euo pipefail
tool=${1:-bin/pico-hsm-tool}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
dev="sim:$dir/device.json"

step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "Rehearsal on a simulated Pico HSM (state in $dir/device.json)"
step "$tool" --reader "$dev" status
step "$tool" --reader "$dev" status --json
echo
echo "Done. The simulated device answers as the Pico HSM firmware v6.6 does."
