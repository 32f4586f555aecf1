package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// The README's guides that run as written, and the files each needs that
// a user would bring: a document to sign, a PKCS#12 file (made with
// openssl; see internal/keyimport/testdata/README.md).
var readmeGuides = []struct {
	name, heading string
	files         map[string]string // name in the guide: source
}{
	{"key-domains", "### 8. Key domains", nil},
	{"ca-key", "### 9. Move an existing CA key", map[string]string{
		"ca.p12":       "../../internal/keyimport/testdata/rsa2048-modern.p12",
		"contract.txt": "testdata/readme/contract.txt",
	}},
	{"pins", "### 10. PINs after the ceremony", nil},
}

// TestREADMEKeyDomains runs the README's key domain guide as it is
// written: every command of its sh blocks, against simulated devices,
// and checks that the output the guide shows after a block (its text
// block) is what the last command of the block prints. Check values come
// from random shares, so any 16 hex digits stand for the ones shown.
func TestREADMEKeyDomains(t *testing.T) { runREADMEGuide(t, readmeGuides[0].name, false) }

// TestREADMECAKey runs the README's guide to moving a CA key from a
// PKCS#12 file into the device, on a simulated device; the OpenSC and
// OpenSSL lines need pcscd and run in TestE2EREADME.
func TestREADMECAKey(t *testing.T) { runREADMEGuide(t, readmeGuides[1].name, false) }

// TestREADMEPINs runs the README's guide to changing, blocking and
// unblocking PINs on a simulated device.
func TestREADMEPINs(t *testing.T) { runREADMEGuide(t, readmeGuides[2].name, false) }

// TestE2EREADME runs the same guides through pcscd with the simulated
// devices in the bed's reader: "-r sim:NAME.json" is dropped, and a
// guide that moves to another device name gets another simulated device
// in the reader (bed swap-card). The OpenSC and OpenSSL lines run too.
func TestE2EREADME(t *testing.T) {
	testbed.SkipShort(t)
	for _, g := range readmeGuides {
		t.Run(g.name, func(t *testing.T) { runREADMEGuide(t, g.name, true) })
	}
}

func runREADMEGuide(t *testing.T, name string, pcscd bool) {
	t.Helper()
	var heading string
	var files map[string]string
	for _, g := range readmeGuides {
		if g.name == name {
			heading, files = g.heading, g.files
		}
	}
	script := readmeScript(t, heading, pcscd)
	if strings.Count(script, "exec ") < 8 || !strings.Contains(script, "\nstdout ") {
		t.Fatalf("the guide has too few commands or no output:\n%s", script)
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "readme-"+name+".txtar")
	if err := os.WriteFile(f, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	setup := func(env *testscript.Env) error {
		// Only for speed: the guide's share files never leave this tool.
		env.Setenv("PICO_HSM_TEST_KDF_ITERATIONS", "1000")
		for dst, src := range files {
			b, err := os.ReadFile(src)
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(env.WorkDir, dst), b, 0o600); err != nil {
				return err
			}
		}
		return nil
	}
	p := testscript.Params{Files: []string{f}, RequireExplicitExec: true}
	if !pcscd {
		p.Setup = func(env *testscript.Env) error {
			env.Setenv("PCSCLITE_CSOCK_NAME", env.WorkDir+"/no-pcscd/pcscd.comm")
			return setup(env)
		}
		testscript.Run(t, p)
		return
	}
	bed, _ := startBed(t, "readme-"+name)
	p.Setup = func(env *testscript.Env) error {
		env.Setenv("PCSCLITE_CSOCK_NAME", bed.Socket())
		return setup(env)
	}
	p.Cmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"bed": func(ts *testscript.TestScript, neg bool, args []string) {
			if neg || len(args) != 2 || args[0] != "swap-card" {
				ts.Fatalf("usage: bed swap-card STATE")
			}
			bed.SwapCard(bridgeCommand(ts, ts.MkAbs(args[1])))
		},
	}
	testscript.Run(t, p)
}

var (
	kcvHex    = regexp.MustCompile(`\b[0-9A-F]{16}\b`)
	simReader = regexp.MustCompile(`^pico-hsm-tool -r (sim:(\S+)) `)
)

// readmeScript turns the README section that starts with heading into a
// testscript: "export A=B C=D" lines set variables, "pico-hsm-tool …"
// lines run ("# refused: WORDS" at the end: they must fail, saying
// WORDS), and each line of
// a text block that follows an sh block must be a line of the last
// command's standard output. Lines of OpenSC and OpenSSL run only with
// pcscd, where "-r sim:PATH" is dropped and a new PATH swaps the card.
func readmeScript(t *testing.T, heading string, pcscd bool) string {
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
	block, device, skipped := "", "", false
	for _, line := range strings.Split(sec, "\n") {
		cmd := line
		neg, why := "", ""
		if k := strings.Index(cmd, "  # refused"); k >= 0 {
			// "# refused: WORDS": the command fails, saying WORDS.
			cmd, neg = cmd[:k], "! "
			why = strings.TrimSpace(strings.TrimPrefix(line[k:], "  # refused"))
			why = strings.TrimSpace(strings.TrimPrefix(why, ":"))
		}
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
			if m := simReader.FindStringSubmatch(cmd); m != nil && pcscd {
				if device != "" && m[2] != device {
					out.WriteString("bed swap-card " + m[2] + "\n")
				}
				device = m[2]
				cmd = "pico-hsm-tool " + cmd[len(m[0]):]
			}
			out.WriteString(neg + "exec " + cmd + "\n")
			if why != "" {
				out.WriteString("stderr '" + strings.ReplaceAll(regexp.QuoteMeta(why), "'", "''") + "'\n")
			}
			skipped = false
		case block == "sh" && (strings.HasPrefix(line, "pkcs11-tool ") || strings.HasPrefix(line, "pkcs15-tool ") || strings.HasPrefix(line, "openssl ")):
			if pcscd {
				out.WriteString(neg + "exec " + cmd + "\n")
			}
			skipped = !pcscd
		case block == "sh" && strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "#"):
			t.Fatalf("README %s: a line the test cannot run: %q", heading, line)
		case block == "text" && strings.TrimSpace(line) != "" && !skipped:
			re := kcvHex.ReplaceAllString(regexp.QuoteMeta(line), "[0-9A-F]{16}")
			out.WriteString("stdout '^" + strings.ReplaceAll(re, "'", "''") + "$'\n")
		}
	}
	return out.String()
}
