#!/usr/bin/env bash
# Compare the speed of the DKEK share key derivation (internal/dkekshare)
# with OpenSSL's EVP_BytesToKey (what sc-hsm-tool uses) and with a bare loop
# of general MD5 compressions (bench/bareloop); see bench/doc.go for what is
# measured. Installs libssl-dev (and a C compiler for cgo) if missing, checks
# that OpenSSL and dkekshare agree, runs the benchmark and prints the times
# per derivation and the ratios. Takes about 25 s per round (3 rounds by
# default; BENCHTIME=1x for one). Exits 1 if a ratio misses its target
# (ours/openssl <= 0.3, ours/bareloop <= 1.15).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go

missing=()
for p in libssl-dev gcc libc6-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
export CGO_ENABLED=1

"$GO" test -count=1 -tags openssl -run 'OpenSSL|BareLoop' ./bench/...

log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$GO" test -count=1 -tags openssl -run '^$' -bench KDF -benchtime "${BENCHTIME:-3x}" ./bench/... | tee "$log"

line=$(grep '^BenchmarkKDF' "$log" || true)
if [ -z "$line" ]; then
	echo "kdf.sh: no benchmark result" >&2
	exit 1
fi
metric() { awk -v m="$1" '{ for (i = 2; i <= NF; i++) if ($i == m) print $(i-1) }' <<<"$line"; }

echo
echo "One derivation (3 x 10,000,000 MD5), thread CPU seconds, mean of the rounds:"
printf '  %-9s %8.3f s\n' ours "$(metric ours-s)" openssl "$(metric openssl-s)" bareloop "$(metric bareloop-s)"
status=0
check() { # name value limit
	if awk -v v="$2" -v l="$3" 'BEGIN { exit !(v <= l) }'; then verdict=ok; else verdict="NOT MET"; status=1; fi
	printf '  %-14s %6.3f  (target <= %s, wall-time ratio %s)  %s\n' "$1" "$2" "$3" "$(metric "wall-$1")" "$verdict"
}
check ours/openssl "$(metric ours/openssl)" 0.3
check ours/bareloop "$(metric ours/bareloop)" 1.15
exit $status
