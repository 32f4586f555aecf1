#!/usr/bin/env bash
# Rehearse a DKEK key ceremony for a primary Pico HSM and its spare, on the
# built-in simulated devices: no hardware, no pcscd.
# Usage: scripts/demo.sh [path/to/pico-hsm-tool]
# The passwords and PINs here are demo values: never use them for real.
set -euo pipefail
tool=$(realpath "${1:-bin/pico-hsm-tool}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
primary="sim:$dir/primary.json"
spare="sim:$dir/spare.json"
both=(--reader "$primary" --reader "$spare")
export SO_PIN=3537363231383830 HSM_PIN=648219 NEW_PIN=731905

step() { printf '\n$ %s\n' "$*" | sed "s|$tool|pico-hsm-tool|; s|$dir/||g"; "$@"; }

# found WHAT VALUE prints VALUE, a check value read from a command's
# output, or stops the rehearsal when the output had none.
found() { [[ -n $2 ]] || { echo "demo: no $1 in the output above" >&2; exit 1; }; printf '%s' "$2"; }
# share_kcv OUT is the check value create-dkek-share printed last to OUT.
share_kcv() { found "share check value" "$(sed -n 's/^Share check value *: \([0-9A-F]\{16\}\).*/\1/p' "$1")"; }

echo "Rehearsal of a 3-custodian DKEK ceremony for a primary and a spare, key backup,"
echo "restore and paper copies, on simulated Pico HSMs (in $dir)."
echo "Each share file costs one 10,000,000-iteration key derivation (a few seconds)."

# Both devices are set up alike in one run, and get the same DKEK from one
# decryption of each share file.
step "$tool" "${both[@]}" initialize --so-pin env:SO_PIN --pin env:HSM_PIN --dkek-shares 3
step "$tool" "${both[@]}" status

# Each custodian writes down the file name with the check value create-dkek-share printed last.
kcvs=()
for i in 1 2 3; do
	step "$tool" create-dkek-share "custodian-$i.pbe" --password "demo-password-$i" | tee "custodian-$i.out"
	kcvs+=(--expect-share-kcv "$(share_kcv "custodian-$i.out")")
done
passwords=(--password demo-password-1 --password demo-password-2 --password demo-password-3)
step "$tool" dkek-share kcv custodian-1.pbe custodian-2.pbe custodian-3.pbe "${passwords[@]}" | tee dkek.out
dkek=$(found "DKEK key check value" "$(sed -n 's/^DKEK key check value : \([0-9A-F]\{16\}\)$/\1/p' dkek.out)")
step "$tool" "${both[@]}" import-dkek-share custodian-1.pbe custodian-2.pbe custodian-3.pbe \
	"${passwords[@]}" "${kcvs[@]}" --expect-kcv "$dkek" --pin env:HSM_PIN
step "$tool" "${both[@]}" status --pin env:HSM_PIN | tee status.out
grep -q "^DKEKs *: all 2 devices hold DKEK $dkek\$" status.out ||
	{ echo "demo: the devices do not both hold DKEK $dkek" >&2; exit 1; }
echo
echo "Both devices hold the DKEK whose key check value the share files give offline ($dkek)."

# Keys on the primary, a nightly backup, and a restore into the spare.
step "$tool" --reader "$primary" generate-key --type ec:secp256r1 --label tls --pin env:HSM_PIN
step "$tool" --reader "$primary" generate-key --type rsa:2048 --label signing --pin env:HSM_PIN
step "$tool" --reader "$primary" list-keys | tee primary-keys.out
step "$tool" --reader "$primary" backup --out-dir nightly --pin env:HSM_PIN
step "$tool" --reader "$spare" restore --from nightly --pin env:HSM_PIN
step "$tool" --reader "$spare" list-keys | tee spare-keys.out
# The key lists match, apart from the command line step printed first.
cmp -s <(tail -n +3 primary-keys.out) <(tail -n +3 spare-keys.out) ||
	{ echo "demo: the spare does not list the primary's keys" >&2; exit 1; }

# A custodian keeps a paper copy of their share file, and makes the file
# again from it.
step "$tool" dkek-share print custodian-1.pbe --out page.txt
step "$tool" dkek-share from-paper --in page.txt --out rebuilt.pbe
step cmp custodian-1.pbe rebuilt.pbe
echo "rebuilt.pbe is custodian-1.pbe, byte for byte."

# The spare gets its own user PIN.
step "$tool" --reader "$spare" change-pin --pin env:HSM_PIN --new-pin env:NEW_PIN
step "$tool" --reader "$spare" status --pin env:NEW_PIN
echo
echo "The spare holds the primary's DKEK and keys under its own PIN: the rehearsal is complete."
