package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestREADMEKeyDomains runs the README's key domain guide as it is
// written: every command of its sh blocks, against simulated devices,
// and checks that the output the guide shows after a block (its text
// block) is what the last command of the block prints. Check values come
// from random shares, so any 16 hex digits stand for the ones shown.
func TestREADMEKeyDomains(t *testing.T) {
	script := readmeScript(t, "### 8. Key domains")
	if strings.Count(script, "\nexec ") < 15 || !strings.Contains(script, "\nstdout ") {
		t.Fatalf("the guide has too few commands or no output:\n%s", script)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "readme-key-domains.txtar")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Files:               []string{f},
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// Only for speed: the guide's files never leave this tool.
			env.Setenv("PICO_HSM_TEST_KDF_ITERATIONS", "1000")
			env.Setenv("PCSCLITE_CSOCK_NAME", env.WorkDir+"/no-pcscd/pcscd.comm")
			return nil
		},
	})
}

var kcvHex = regexp.MustCompile(`\b[0-9A-F]{16}\b`)

// readmeScript turns the README section that starts with heading into a
// testscript: "export A=B C=D" lines set variables, "pico-hsm-tool …"
// lines run, and each line of a text block that follows an sh block must
// be a line of the last command's standard output.
func readmeScript(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	sec := doc[i+1:]
	if j := strings.Index(sec[1:], "\n### "); j >= 0 {
		sec = sec[:j+1]
	}
	var out strings.Builder
	block := ""
	for _, line := range strings.Split(sec, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			if block == "" {
				block = strings.TrimPrefix(line, "```")
			} else {
				block = ""
			}
		case block == "sh" && strings.HasPrefix(line, "export "):
			for _, kv := range strings.Fields(strings.TrimPrefix(line, "export ")) {
				out.WriteString("env " + kv + "\n")
			}
		case block == "sh" && strings.HasPrefix(line, "pico-hsm-tool "):
			out.WriteString("exec " + line + "\n")
		case block == "sh" && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#"):
			t.Fatalf("README %s: a line the test cannot run: %q", heading, line)
		case block == "text" && strings.TrimSpace(line) != "":
			re := kcvHex.ReplaceAllString(regexp.QuoteMeta(line), "[0-9A-F]{16}")
			out.WriteString("stdout '^" + strings.ReplaceAll(re, "'", "''") + "$'\n")
		}
	}
	return out.String()
}
