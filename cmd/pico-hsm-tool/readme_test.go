package main

import (
	"fmt"
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
var readmeGuides = []readmeGuide{
	{name: "key-domains", heading: "### 8. Key domains"},
	{name: "ca-key", heading: "### 9. Move an existing CA key", files: map[string]string{
		"ca.p12":       "../../internal/keyimport/testdata/rsa2048-modern.p12",
		"contract.txt": "testdata/readme/contract.txt",
	}},
	{name: "pins", heading: "### 10. PINs after the ceremony"},
	{name: "ceremony", heading: "### 1. Check the devices", until: "### 5. Keys", twoReaders: true},
}

type readmeGuide struct {
	name    string
	heading string
	// until ends the guide at this heading instead of the next one, for a
	// guide of several sections.
	until string
	files map[string]string // name in the guide: source
	// twoReaders: through pcscd the guide's devices sit in two readers at
	// once (the first device named in reader 0, the others in reader 1,
	// each new one replacing the last there), and "-r sim:NAME" becomes
	// "-r 0" or "-r 1", as at a ceremony with a primary and a spare.
	twoReaders bool
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

// TestREADMECeremony runs the README's ceremony guide, sections 1 to 4:
// a primary and a spare initialized together, three custodians' shares
// with their check values written down and given back, paper copies made
// and read back, every share imported into both devices in one run, a
// replacement spare given the DKEK against its expected check value.
func TestREADMECeremony(t *testing.T) { runREADMEGuide(t, "ceremony", false) }

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
	var guide readmeGuide
	for _, g := range readmeGuides {
		if g.name == name {
			guide = g
		}
	}
	files := guide.files
	script := readmeScript(t, guide, pcscd)
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
	p := testscript.Params{Files: []string{f}, RequireExplicitExec: true, Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
		"bind": readmeBind,
	}}
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
	p.Cmds["bed"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: bed swap-card|second-card|swap-second-card STATE")
		}
		cmd := bridgeCommand(ts, ts.MkAbs(args[1]))
		switch args[0] {
		case "swap-card":
			bed.SwapCard(cmd)
		case "second-card":
			bed.InsertSecondCard(cmd)
		case "swap-second-card":
			bed.SwapSecondCard(cmd)
		default:
			ts.Fatalf("unknown bed action %q", args[0])
		}
	}
	testscript.Run(t, p)
}

var (
	kcvHex    = regexp.MustCompile(`\b[0-9A-F]{16}\b`)
	simReader = regexp.MustCompile(`^pico-hsm-tool((?: -r sim:\S+)+) `)
	simName   = regexp.MustCompile(`sim:([^\s:]+)`)
)

// readmeBind is the scripts' "bind NAME REGEXP": it sets NAME to the
// first group of REGEXP in the last command's standard output. The
// README shows a check value in one command's output and types it into a
// later command; the test gives the later command the value this run
// printed.
func readmeBind(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bind NAME REGEXP")
	}
	m := regexp.MustCompile("(?m)" + args[1]).FindStringSubmatch(ts.ReadFile("stdout"))
	if m == nil || len(m) < 2 {
		ts.Fatalf("no %s in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// readmeScript turns the README section that starts with g.heading into a
// testscript: "export A=B C=D" lines set variables, "pico-hsm-tool …"
// lines run ("# refused: WORDS" at the end: they must fail, saying
// WORDS), and each line of a text block that follows an sh block must be
// a line of the last command's standard output. Lines of OpenSC and
// OpenSSL run only with pcscd, where "-r sim:PATH" is dropped and a new
// PATH swaps the card (with g.twoReaders: becomes the device's reader).
//
// Check values are random, so any 16 hex digits in a text block stand
// for the value printed; the first time a value is shown it is bound to
// what this run printed, and where the guide shows or types it again the
// same value must be there.
func readmeScript(t *testing.T, g readmeGuide, pcscd bool) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n"+g.heading)
	if i < 0 {
		t.Fatalf("README has no %q", g.heading)
	}
	sec := doc[i+1:]
	end := "\n### "
	if g.until != "" {
		end = "\n" + g.until
	}
	if j := strings.Index(sec[1:], end); j >= 0 {
		sec = sec[:j+1]
	} else if g.until != "" {
		t.Fatalf("README has no %q after %q", g.until, g.heading)
	}
	var out strings.Builder
	block, device, skipped := "", "", false
	slots := map[string]int{} // with g.twoReaders: device name -> reader
	second := ""              // the device in reader 1
	bound := map[string]bool{}
	readerOf := func(name string) string {
		if k, ok := slots[name]; ok {
			return fmt.Sprint(k)
		}
		switch {
		case len(slots) == 0:
			slots[name] = 0
		case second == "":
			out.WriteString("bed second-card " + name + "\n")
			slots[name], second = 1, name
		default:
			out.WriteString("bed swap-second-card " + name + "\n")
			delete(slots, second)
			slots[name], second = 1, name
		}
		return fmt.Sprint(slots[name])
	}
	// A line ending in " \" goes on on the next one, as in a shell.
	var lines []string
	for _, line := range strings.Split(sec, "\n") {
		if n := len(lines); n > 0 && strings.HasSuffix(lines[n-1], " \\") {
			lines[n-1] = strings.TrimSuffix(lines[n-1], "\\") + strings.TrimSpace(line)
			continue
		}
		lines = append(lines, line)
	}
	for _, line := range lines {
		cmd := line
		neg, why := "", ""
		if k := strings.Index(cmd, "  # refused"); k >= 0 {
			// "# refused: WORDS": the command fails, saying WORDS.
			cmd, neg = cmd[:k], "! "
			why = strings.TrimSpace(strings.TrimPrefix(line[k:], "  # refused"))
			why = strings.TrimSpace(strings.TrimPrefix(why, ":"))
		}
		// A value shown before is typed as this run's.
		cmd = kcvHex.ReplaceAllStringFunc(cmd, func(v string) string {
			if bound[v] {
				return "$K_" + v
			}
			return v
		})
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
				var flags []string
				for _, n := range simName.FindAllStringSubmatch(m[1], -1) {
					if g.twoReaders {
						flags = append(flags, "-r "+readerOf(n[1]))
						continue
					}
					if device != "" && n[1] != device {
						out.WriteString("bed swap-card " + n[1] + "\n")
					}
					device = n[1]
				}
				cmd = strings.Join(append([]string{"pico-hsm-tool"}, flags...), " ") + " " + cmd[len(m[0]):]
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
			t.Fatalf("README %s: a line the test cannot run: %q", g.heading, line)
		case block == "text" && strings.TrimSpace(line) == "…":
			// Lines of the output the guide does not show.
		case block == "text" && strings.TrimSpace(line) != "" && !skipped:
			want := line
			if pcscd && g.twoReaders {
				// Through pcscd a device is named by its reader.
				want = simName.ReplaceAllStringFunc(want, func(v string) string {
					return testbedReader(slots[strings.TrimPrefix(v, "sim:")])
				})
			}
			out.WriteString("stdout " + textLine(want, bound, "") + "\n")
			for _, v := range kcvHex.FindAllString(want, -1) {
				if !bound[v] {
					out.WriteString("bind K_" + v + " " + textLine(want, bound, v) + "\n")
					bound[v] = true
				}
			}
		}
	}
	return out.String()
}

// textLine is the testscript word that matches a README output line:
// values bound before are this run's ($K_VALUE), the one to bind becomes
// the group, the others any 16 hex digits.
func textLine(line string, bound map[string]bool, bind string) string {
	var b strings.Builder
	b.WriteString("'^")
	last := 0
	for _, m := range kcvHex.FindAllStringIndex(line, -1) {
		b.WriteString(strings.ReplaceAll(regexp.QuoteMeta(line[last:m[0]]), "'", "''"))
		switch v := line[m[0]:m[1]]; {
		case v == bind:
			b.WriteString("([0-9A-F]{16})")
		case bound[v] && bind == "":
			b.WriteString("'$K_" + v + "'")
		default:
			b.WriteString("[0-9A-F]{16}")
		}
		last = m[1]
	}
	b.WriteString(strings.ReplaceAll(regexp.QuoteMeta(line[last:]), "'", "''") + "$'")
	return b.String()
}

// testbedReader is the name of the bed's reader k.
func testbedReader(k int) string {
	if k == 1 {
		return testbed.Reader2Name
	}
	return testbed.ReaderName
}
