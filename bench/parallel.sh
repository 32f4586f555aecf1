#!/usr/bin/env bash
# Measure share decryption on every core (issue 12 section 5): K real share
# files (10,000,000 iterations each) decrypted one after the other and then
# at the same time (ceremony.OpenShares), for K = 2, 3, 4 (BENCH_SHARES=2,3,4
# to change), in one run; see BenchmarkParallelShares in
# bench/parallel_test.go. Prints each K's times, the ratio of the parallel
# wall time to one derivation, and the bound ceil(K/C) x 1.15; exits 1 if a
# ratio misses it. Each time is the fastest of BENCHTIME rounds (3x by
# default: other programs on the machine only slow a round down). Takes
# about (K + ceil(K/C)) x 3.3 s per K and round on a quiet machine (a
# minute per round for 2, 3, 4 on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
command -v "$GO" >/dev/null 2>&1 || GO=/usr/local/go/bin/go

log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$GO" test -count=1 -run '^$' -bench 'ParallelShares' -benchtime "${BENCHTIME:-3x}" ./bench | tee "$log"

lines=$(grep '^BenchmarkParallelShares/' "$log" || true)
if [ -z "$lines" ]; then
	echo "parallel.sh: no benchmark result" >&2
	exit 1
fi
echo
echo "Share decryption, wall seconds (one derivation = sequential / K):"
status=0
while read -r line; do
	metric() { awk -v m="$1" '{ for (i = 2; i <= NF; i++) if ($i == m) print $(i-1) }' <<<"$line"; }
	k=$(sed -E 's/^BenchmarkParallelShares\/K=([0-9]+).*/\1/' <<<"$line")
	if awk -v p="$(metric pass)" 'BEGIN { exit !(p == 1) }'; then verdict=PASS; else verdict=FAIL; status=1; fi
	printf '  K=%-2s sequential %7.2f s  parallel %7.2f s  ratio %5.2f  bound %5.2f  %s  (cores used %s)\n' \
		"$k" "$(metric seq-s)" "$(metric par-s)" "$(metric ratio)" "$(metric bound)" "$verdict" "$(metric cores)"
done <<<"$lines"
exit $status
