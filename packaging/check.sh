#!/usr/bin/env bash
# CI's packaging checks (make package-check, run by .ci/run as root on a
# clean Debian machine):
#  1. make install DESTDIR=... puts the binary, man pages and completions
#     where PREFIX says;
#  2. the .deb installs with dpkg -i and works: --version, man -w, bash
#     completion through bash-completion's loader, and scripts/demo.sh's
#     rehearsal against the installed /usr/bin/pico-hsm-tool; it is removed
#     again at the end (dpkg -r);
#  3. make release refuses a VERSION without a CHANGELOG.md entry, and two
#     release builds of HEAD in two clones in different directories give the
#     same SHA256SUMS.
# SKIP_DEMO=1 leaves out the rehearsal (about 50 s on two cores).
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
sudo=()
if [ "$(id -u)" -ne 0 ]; then
	sudo=(sudo)
fi
tmp=$(mktemp -d)
installed=
cleanup() {
	if [ -n "$installed" ]; then "${sudo[@]}" dpkg -r pico-hsm-tool >/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
t0=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - t0)); }
fail() { echo "package-check: $*" >&2; exit 1; }

step "the packaging tools' tests"
(cd packaging && $GO test -count=1 ./...)

step "make install DESTDIR=$tmp/root PREFIX=/usr"
make --no-print-directory install DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
for f in usr/bin/pico-hsm-tool usr/share/man/man1/pico-hsm-tool.1 usr/share/man/man1/pico-hsm-tool-initialize.1 \
	usr/share/bash-completion/completions/pico-hsm-tool usr/share/zsh/site-functions/_pico-hsm-tool \
	usr/share/fish/vendor_completions.d/pico-hsm-tool.fish; do
	[ -s "$tmp/root/$f" ] || fail "make install did not install /$f"
done
[ -x "$tmp/root/usr/bin/pico-hsm-tool" ] || fail "/usr/bin/pico-hsm-tool is not executable"
"$tmp/root/usr/bin/pico-hsm-tool" --version
man -l "$tmp/root/usr/share/man/man1/pico-hsm-tool.1" 2>/dev/null | grep 'pico-hsm-tool manages a Pico HSM' >/dev/null ||
	fail "the installed pico-hsm-tool.1 does not render with man -l"

step "make deb, dpkg -i"
if dpkg-query -W -f='${Status}' pico-hsm-tool 2>/dev/null | grep 'install ok installed' >/dev/null; then
	fail "a pico-hsm-tool package is installed already: dpkg -r pico-hsm-tool first"
fi
deb=$(make --no-print-directory deb | tail -1)
[ -f "$deb" ] || fail "make deb did not say where the package is (got '$deb')"
dpkg-deb -f "$deb" Depends | grep -w libpcsclite1 >/dev/null || fail "$deb does not depend on libpcsclite1"
dpkg-deb -f "$deb" Recommends | grep -w pcscd >/dev/null || fail "$deb does not recommend pcscd"
"${sudo[@]}" dpkg -i "$deb"
installed=1
tool=$(command -v pico-hsm-tool) || fail "pico-hsm-tool is not on PATH after dpkg -i"
[ "$tool" = /usr/bin/pico-hsm-tool ] || fail "pico-hsm-tool on PATH is $tool, not the package's /usr/bin/pico-hsm-tool"
pico-hsm-tool --version
# Docker's Debian images may exclude /usr/share/man from packages
# (path-exclude in /etc/dpkg/dpkg.cfg.d): then the package holds the pages
# but dpkg does not unpack them, and man -w cannot find them.
if grep -qs '^path-exclude[= ]*/usr/share/man' /etc/dpkg/dpkg.cfg.d/*; then
	echo "man pages excluded by dpkg's configuration here: checking the package holds them"
	dpkg-deb -c "$deb" | grep ' \./usr/share/man/man1/pico-hsm-tool\.1\.gz$' >/dev/null || fail "$deb holds no pico-hsm-tool.1.gz"
else
	page=$(man -w pico-hsm-tool) || fail "man -w pico-hsm-tool finds no page"
	echo "man -w pico-hsm-tool: $page"
	man -w pico-hsm-tool-import-dkek-share >/dev/null || fail "man -w pico-hsm-tool-import-dkek-share finds no page"
fi
# Tab completion as bash does it: bash-completion's loader finds the script
# by the command's name, and the script asks the binary for candidates.
got=$(bash -c '
	source /usr/share/bash-completion/bash_completion
	_completion_loader pico-hsm-tool
	COMP_WORDS=(pico-hsm-tool ini); COMP_CWORD=1; COMP_LINE="pico-hsm-tool ini"; COMP_POINT=${#COMP_LINE}
	__start_pico-hsm-tool pico-hsm-tool ini pico-hsm-tool 2>/dev/null
	echo "${COMPREPLY[*]}"')
[ "$got" = initialize ] || fail "bash completion of 'pico-hsm-tool ini' gave '$got', want 'initialize'"
echo "bash completion of 'pico-hsm-tool ini': $got"
if [ -z "${SKIP_DEMO:-}" ]; then
	step "make demo's rehearsal against /usr/bin/pico-hsm-tool"
	./scripts/demo.sh /usr/bin/pico-hsm-tool >"$tmp/demo.out" 2>&1 || { cat "$tmp/demo.out"; fail "the rehearsal failed with the installed binary"; }
	tail -1 "$tmp/demo.out"
fi
"${sudo[@]}" dpkg -r pico-hsm-tool >/dev/null
installed=

step "make release refuses a version without a CHANGELOG.md entry"
if out=$(make --no-print-directory release VERSION=999.0.0 2>&1); then
	fail "make release VERSION=999.0.0 succeeded without a CHANGELOG.md entry"
fi
grep -q "CHANGELOG.md has no '## \[999.0.0\]" <<<"$out" || fail "make release VERSION=999.0.0: unexpected refusal: $out"

step "two release builds of HEAD in two directories"
for d in a b/c; do
	git clone -q . "$tmp/$d"
	# The second clone is built with another umask too.
	(cd "$tmp/$d" && umask $([ "$d" = a ] && echo 022 || echo 002) &&
		make --no-print-directory release VERSION=0.0.0-ci NO_CHANGELOG_CHECK=1 >"$tmp/release.log" 2>&1) ||
		{ cat "$tmp/release.log"; fail "make release in $tmp/$d failed"; }
done
cat "$tmp/a/dist/SHA256SUMS"
cmp "$tmp/a/dist/SHA256SUMS" "$tmp/b/c/dist/SHA256SUMS" || {
	diff "$tmp/a/dist/SHA256SUMS" "$tmp/b/c/dist/SHA256SUMS" || true
	fail "two release builds of the same commit differ"
}
for f in pico-hsm-tool_0.0.0-ci_linux_amd64.tar.gz pico-hsm-tool_0.0.0-ci_windows_amd64.zip \
	pico-hsm-tool_0.0.0-ci_windows_arm64.zip pico-hsm-tool_0.0.0-ci_amd64.deb; do
	grep -q "  $f\$" "$tmp/a/dist/SHA256SUMS" || fail "the release has no $f"
done
for a in amd64 arm64; do
	names=$(unzip -Z1 "$tmp/a/dist/pico-hsm-tool_0.0.0-ci_windows_$a.zip")
	grep -qx "pico-hsm-tool_0.0.0-ci_windows_$a/pico-hsm-tool.exe" <<<"$names" ||
		fail "the windows $a zip holds no pico-hsm-tool.exe: $names"
done
step "package-check passed"
