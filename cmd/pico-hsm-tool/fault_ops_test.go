package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// matrixOps are the multi-step commands of the fault matrix, each with the
// device states it may leave and the claims its messages may make.
var matrixOps = []matrixOp{
	{
		name:  "initialize",
		state: "base",
		args:  []string{"initialize", "--so-pin", matrixSOPIN, "--pin", matrixPIN, "--dkek-shares", "1", "--yes"},
		allowed: func(fx *matrixFixture, st devState) bool {
			return isState(fx, st, "2/2", "1=alpha, 2=beta") || isState(fx, st, "0/1", "no keys")
		},
		claims: []claim{
			{re: lit("nothing was changed, the device is as it was"), says: "device unchanged",
				ok: func(st devState) bool { return len(st.Keys) == 2 }},
			{re: lit("the device may or may not have been initialized: run the same initialize command again"), says: "device initialized or not",
				ok: func(st devState) bool { return true }},
		},
	},
	{
		name:  "import-dkek-share",
		state: "import",
		prepare: func(t *testing.T, fx *matrixFixture, work string) {
			faultCopyFile(t, filepath.Join(fx.dir, "s1.pbe"), filepath.Join(work, "s1.pbe"))
			faultCopyFile(t, filepath.Join(fx.dir, "s2.pbe"), filepath.Join(work, "s2.pbe"))
		},
		args: []string{"import-dkek-share", "s1.pbe", "s2.pbe", "--password", "fault-matrix-1", "--password", "fault-matrix-2", "--pin", matrixPIN},
		allowed: func(fx *matrixFixture, st devState) bool {
			return isState(fx, st, "0/2", "no keys") || isState(fx, st, "1/2", "no keys") || isState(fx, st, "2/2", "no keys")
		},
		claims: []claim{
			{re: lit("no share was imported, the device is as it was"), says: "no share imported",
				ok: func(st devState) bool { return st.DKEK == "0/2" }},
			{re: regexp.MustCompile(regexp.QuoteMeta("share 1 of 2 may or may not have been imported: run 'pico-hsm-tool --reader sim:") + `\S+ status'`), says: "share 1 imported or not",
				ok: func(st devState) bool { return st.DKEK == "0/2" || st.DKEK == "1/2" }},
			{re: regexp.MustCompile(regexp.QuoteMeta("share 2 of 2 may or may not have been imported (the 1 before it were): run 'pico-hsm-tool --reader sim:") + `\S+ status'`), says: "share 1 imported, share 2 imported or not",
				ok: func(st devState) bool { return st.DKEK == "1/2" || st.DKEK == "2/2" }},
		},
	},
	{
		name:  "wrap-key",
		state: "base",
		prepare: func(t *testing.T, fx *matrixFixture, work string) {
			faultCopyFile(t, filepath.Join(fx.dir, "bk", "key-001-alpha.bin"), filepath.Join(work, "out.bin"))
		},
		args:    []string{"wrap-key", "out.bin", "--key-reference", "1", "--force", "--pin", matrixPIN},
		allowed: func(fx *matrixFixture, st devState) bool { return isState(fx, st, "2/2", "1=alpha, 2=beta") },
		claims: []claim{
			{re: lit("nothing was written: out.bin keeps its earlier content and the device is unchanged"), says: "out.bin and device unchanged",
				ok: func(st devState) bool { return true }},
		},
	},
	{
		name:  "unwrap-key",
		state: "base",
		prepare: func(t *testing.T, fx *matrixFixture, work string) {
			faultCopyFile(t, filepath.Join(fx.dir, "beta.bin"), filepath.Join(work, "beta.bin"))
		},
		args: []string{"unwrap-key", "beta.bin", "--allow-duplicate", "--pin", matrixPIN},
		allowed: func(fx *matrixFixture, st devState) bool {
			return st.Keys[1] == "alpha" && st.Keys[2] == "beta" && len(st.Keys) <= 3 && (st.Keys[3] == "" || isKey(st.Keys[3], "beta"))
		},
		claims: restoreClaims("beta.bin", 3, "", "beta"),
	},
	{
		name:  "unwrap-key --force",
		state: "base",
		prepare: func(t *testing.T, fx *matrixFixture, work string) {
			faultCopyFile(t, filepath.Join(fx.dir, "beta.bin"), filepath.Join(work, "beta.bin"))
		},
		args: []string{"unwrap-key", "beta.bin", "--key-reference", "1", "--force", "--allow-duplicate", "--pin", matrixPIN},
		allowed: func(fx *matrixFixture, st devState) bool {
			return st.Keys[2] == "beta" && len(st.Keys) == 2 && (st.Keys[1] == "alpha" || isKey(st.Keys[1], "beta"))
		},
		claims: restoreClaims("beta.bin", 1, "alpha", "beta"),
	},
	{
		name:  "backup",
		state: "base",
		prepare: func(t *testing.T, fx *matrixFixture, work string) {
			faultCopyDir(t, filepath.Join(fx.dir, "bk"), filepath.Join(work, "bk"))
		},
		args:    []string{"backup", "--out-dir", "bk", "--force", "--pin", matrixPIN},
		allowed: func(fx *matrixFixture, st devState) bool { return isState(fx, st, "2/2", "1=alpha, 2=beta") },
		claims: []claim{
			{re: lit("nothing was written: the earlier backup in bk is unchanged"), says: "earlier backup unchanged",
				ok: func(st devState) bool { return true }},
		},
	},
	{
		name:  "restore",
		state: "target",
		prepare: func(t *testing.T, fx *matrixFixture, work string) {
			faultCopyDir(t, filepath.Join(fx.dir, "bk"), filepath.Join(work, "bk"))
		},
		args: []string{"restore", "--from", "bk", "--force", "--key-reference", "1", "--pin", matrixPIN},
		allowed: func(fx *matrixFixture, st devState) bool {
			return len(st.Keys) <= 2 && (st.Keys[1] == "gamma" || isKey(st.Keys[1], "alpha")) && (st.Keys[2] == "" || isKey(st.Keys[2], "beta"))
		},
		claims: append(append([]claim{
			{re: lit("nothing was restored, the device is unchanged"), says: "nothing restored",
				ok: func(st devState) bool { return st.Keys[1] == "gamma" && st.Keys[2] == "" }},
		}, restoreAllClaims("key-001-alpha.bin", 1, "gamma", "alpha")...), restoreAllClaims("key-002-beta.bin", 2, "", "beta")...),
		cover: []int{1, 2},
	},
}

// isState tells whether the device has the fixture's DKEK with shares
// imported as given ("2/2": complete, with the shares' check value) and
// keys as given.
func isState(fx *matrixFixture, st devState, shares, keys string) bool {
	return st.String() == "DKEK "+shares+", "+keys
}

// isKey tells whether a reference's description is the key name, with or
// without its label and certificate.
func isKey(desc, name string) bool { return desc == name || strings.HasPrefix(desc, name+" (") }

func lit(s string) *regexp.Regexp { return regexp.MustCompile(regexp.QuoteMeta(s)) }

// restoreClaims are what unwrap-key may say about reference ref, which
// held the key old ("" for none) and is to hold the key new from file.
func restoreClaims(file string, ref int, old, new string) []claim {
	// The command to finish carries --allow-duplicate when the run had it.
	finish := regexp.QuoteMeta("finish with 'pico-hsm-tool --reader ") + `\S+` + regexp.QuoteMeta(" unwrap-key "+file+" --key-reference "+itoa(ref)+" --force") + "( --allow-duplicate)?'"
	either := "is either still free or holds the restored key"
	done := "the key was restored at reference " + itoa(ref) + ","
	if old != "" {
		either = "holds either its old key or the restored one"
		done += " replacing the old key,"
	}
	return []claim{
		{re: lit("nothing was restored, the device is unchanged"), says: "nothing restored",
			ok: func(st devState) bool { return st.Keys[ref] == old }},
		{re: regexp.MustCompile(regexp.QuoteMeta("key reference "+itoa(ref)+" "+either) + ".*" + finish), says: "old or new key, how to finish",
			ok: func(st devState) bool { return st.Keys[ref] == old || isKey(st.Keys[ref], new) }},
		{re: regexp.MustCompile(regexp.QuoteMeta(done) + ".*" + finish), says: "new key, how to finish",
			ok: func(st devState) bool { return isKey(st.Keys[ref], new) }},
	}
}

// restoreAllClaims are what restore may say about one key of the backup:
// its line on stdout, "restored ..." or "FAILED ...".
func restoreAllClaims(file string, ref int, old, new string) []claim {
	var out []claim
	for _, c := range restoreClaims("bk/"+file, ref, old, new)[1:] {
		c.re = regexp.MustCompile("FAILED " + regexp.QuoteMeta(file) + ": .*" + c.re.String())
		c.says = file + ": " + c.says
		c.refs = []int{ref}
		out = append(out, c)
	}
	return append(out,
		claim{re: regexp.MustCompile("(?m)^restored " + regexp.QuoteMeta(file) + " to key reference " + itoa(ref) + " "), says: file + ": restored", refs: []int{ref},
			ok: func(st devState) bool { return st.Keys[ref] == new }},
		claim{re: lit("FAILED " + file + ": not restored: the restore was interrupted before this key"), says: file + ": not attempted", refs: []int{ref},
			ok: func(st devState) bool { return st.Keys[ref] == old }},
	)
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+i))) }
