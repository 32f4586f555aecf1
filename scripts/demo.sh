#!/usr/bin/env bash
# Rehearse a DKEK key ceremony on the built-in simulated Pico HSM: no
# hardware, no pcscd. Usage: scripts/demo.sh [path/to/pico-hsm-tool]
# The passwords and PINs here are demo values: never use them for real.
set -euo pipefail
tool=$(realpath "${1:-bin/pico-hsm-tool}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
dev="sim:$dir/device.json"
export SO_PIN=3537363231383830 HSM_PIN=648219

step() { printf '\n$ %s\n' "$*" | sed "s|$tool|pico-hsm-tool|; s|$dir/||g"; "$@"; }

echo "Rehearsal of a 2-custodian DKEK ceremony, key backup and restore on simulated Pico HSMs (in $dir)."
echo "Each share file costs one 10,000,000-iteration key derivation (a few seconds)."
step "$tool" --reader "$dev" status
step "$tool" --reader "$dev" initialize --so-pin env:SO_PIN --pin env:HSM_PIN --dkek-shares 2
step "$tool" --reader "$dev" status
step "$tool" create-dkek-share custodian-1.pbe --password demo-password-one
step "$tool" create-dkek-share custodian-2.pbe --password demo-password-two
step "$tool" dkek-share kcv custodian-1.pbe custodian-2.pbe --password demo-password-one --password demo-password-two
step "$tool" --reader "$dev" import-dkek-share custodian-1.pbe custodian-2.pbe \
	--password demo-password-one --password demo-password-two --pin env:HSM_PIN
step "$tool" --reader "$dev" status --pin env:HSM_PIN
echo
echo "The device's DKEK key check value equals the one computed from the share files."

# Keys, a nightly backup, and a restore into a second device with the same DKEK.
step "$tool" --reader "$dev" generate-key --type ec:secp256r1 --label tls --pin env:HSM_PIN
step "$tool" --reader "$dev" generate-key --type rsa:2048 --label signing --pin env:HSM_PIN
step "$tool" --reader "$dev" list-keys
step "$tool" --reader "$dev" backup --out-dir nightly --pin env:HSM_PIN
step "$tool" inspect nightly/key-002-signing.bin --dkek-share custodian-1.pbe --dkek-share custodian-2.pbe \
	--password demo-password-one --password demo-password-two
spare="sim:$dir/spare.json"
step "$tool" --reader "$spare" initialize --so-pin env:SO_PIN --pin env:HSM_PIN --dkek-shares 2
step "$tool" --reader "$spare" import-dkek-share custodian-1.pbe custodian-2.pbe \
	--password demo-password-one --password demo-password-two --pin env:HSM_PIN
step "$tool" --reader "$spare" restore --from nightly --pin env:HSM_PIN
step "$tool" --reader "$spare" list-keys
echo
echo "The spare device holds the same keys: the rehearsal is complete."
