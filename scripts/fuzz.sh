#!/usr/bin/env bash
# Run every Go fuzz target of the repository for a bounded time each.
# Usage: scripts/fuzz.sh [FUZZTIME]   (default $FUZZTIME, else 20s)
# The targets are found by grepping the test files for `func FuzzXxx(`; each
# runs alone, as `go test -fuzz` requires. A failing input is written to the
# package's testdata/fuzz/FuzzXxx/ directory by go test: fix the parser, keep
# the input as a corpus entry and add a regression test case. The script
# runs every target and fails at the end if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
fuzztime=${1:-${FUZZTIME:-20s}}

mapfile -t targets < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' internal cmd 2>/dev/null |
	sed -E 's|^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\($|./\1 \2|' | sort -u)
if [ "${#targets[@]}" -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi

echo "fuzz: ${#targets[@]} targets, $fuzztime each"
failed=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $pkg $name"
	if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed+=("$pkg $name")
	fi
done
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
