package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/backup"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// TestErrorScripts runs testdata/errors: one case per entry of the error
// catalogue, docs/errors.md. Each case starts with a line
//
//	# case NAME: what it shows
//
// and the catalogue names it as errors/FILE.txtar#NAME; TestErrorCatalogue
// checks that the two agree.
func TestErrorScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/errors",
		RequireExplicitExec: true,
		Cmds:                errorCmds,
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "tmpfs":
				return canMountTmpfs(), nil
			case "nodac":
				return os.Geteuid() != 0 || setprivPath() != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Setup: func(env *testscript.Env) error {
			env.Setenv("PCSCLITE_CSOCK_NAME", env.WorkDir+"/no-pcscd/pcscd.comm")
			env.Setenv("PICO_HSM_TEST_KDF_ITERATIONS", "1000")
			env.Setenv("SO", "3537363231383830")
			env.Setenv("PIN", "648219")
			return nil
		},
	})
}

// errorCmds are the scripts' helpers: they make the bad input (damaged
// files, a full disk, a busy device) that a script cannot write by hand.
var errorCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	"kcv": scriptCmds["kcv"],

	// nodac CMD ARGS... runs a command as exec does, but without
	// CAP_DAC_OVERRIDE when root, so that file permissions apply to it.
	"nodac": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) == 0 {
			ts.Fatalf("usage: nodac CMD ARGS...")
		}
		if os.Geteuid() == 0 {
			args = append([]string{setprivPath(), "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all", "--"}, args...)
		}
		err := ts.Exec(args[0], args[1:]...)
		switch {
		case err != nil && !neg:
			ts.Fatalf("unexpected command failure: %v", err)
		case err == nil && neg:
			ts.Fatalf("unexpected command success")
		}
	},

	// exit-status N CMD ARGS... runs a command as exec does and checks
	// that it exits with status N.
	"exit-status": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: exit-status N CMD ARGS...")
		}
		want := atoi(ts, args[0])
		err := ts.Exec(args[1], args[2:]...)
		got := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			got = ee.ExitCode()
		} else if err != nil {
			ts.Fatalf("%v", err)
		}
		if got != want {
			ts.Fatalf("exit status %d, want %d", got, want)
		}
	},

	// fill-keys STATE PIN generates AES keys on the simulated device
	// STATE until every key reference is taken.
	"fill-keys": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: fill-keys STATE PIN")
		}
		conn, err := device.Open(device.Options{Reader: "sim:" + ts.MkAbs(args[0])})
		ts.Check(err)
		defer conn.Close()
		for {
			_, err := keystore.Generate(conn, keystore.GenSpec{Type: "aes", Bits: 128, Ref: -1, PIN: []byte(args[1]), AllowDuplicate: true})
			if err != nil {
				if strings.Contains(err.Error(), "no free key reference") {
					return
				}
				ts.Fatalf("fill-keys: %v", err)
			}
		}
	},

	// tmpfs DIR SIZE [ro] mounts a tmpfs of SIZE on DIR until the script
	// ends (condition [tmpfs] says whether this machine can).
	"tmpfs": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 || len(args) > 3 {
			ts.Fatalf("usage: tmpfs DIR SIZE [ro]")
		}
		dir := ts.MkAbs(args[0])
		os.MkdirAll(dir, 0o755)
		if err := mountTmpfs(dir, args[1], len(args) == 3 && args[2] == "ro"); err != nil {
			ts.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
		ts.Defer(func() {
			if err := unmount(dir); err != nil {
				ts.Logf("unmount %s: %v", dir, err)
			}
		})
	},

	// fill DIR writes a file into DIR until its file system is full.
	"fill": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: fill DIR")
		}
		f, err := os.Create(filepath.Join(ts.MkAbs(args[0]), "filler"))
		ts.Check(err)
		defer f.Close()
		buf := make([]byte, 4096)
		for i := 0; i < 1<<16; i++ {
			if _, err := f.Write(buf); err != nil {
				if errors.Is(err, syscall.ENOSPC) {
					// Fill the last bytes too.
					for err == nil || !errors.Is(err, syscall.ENOSPC) {
						_, err = f.Write(buf[:1])
					}
					return
				}
				ts.Fatalf("fill: %v", err)
			}
		}
		ts.Fatalf("fill: %s never filled up", args[0])
	},

	// bigfile FILE N writes N bytes "x", with no line end.
	"bigfile": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: bigfile FILE N")
		}
		writeBin(ts, args[0], bytes.Repeat([]byte("x"), atoi(ts, args[1])))
	},

	// truncate FILE N keeps the first N bytes of FILE (N < 0: drops -N).
	"truncate": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: truncate FILE N")
		}
		b := readBin(ts, args[0])
		n := atoi(ts, args[1])
		if n < 0 {
			n += len(b)
		}
		writeBin(ts, args[0], b[:n])
	},

	// flipbyte FILE OFFSET changes one byte (OFFSET < 0 counts from the end).
	"flipbyte": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: flipbyte FILE OFFSET")
		}
		b := readBin(ts, args[0])
		i := atoi(ts, args[1])
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 0x5A
		writeBin(ts, args[0], b)
	},

	// splice-cert OUT BLOBFROM CERTFROM writes a wrapped-key file with the
	// key blob and description of one file and the certificate of another.
	"splice-cert": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 3 {
			ts.Fatalf("usage: splice-cert OUT BLOBFROM CERTFROM")
		}
		a, b := parseWrapped(ts, args[1]), parseWrapped(ts, args[2])
		a.Cert = b.Cert
		writeBin(ts, args[0], a.Marshal())
	},

	// tamper-blob FILE changes one byte of the encrypted key inside the key
	// blob of the wrapped-key FILE: its KCV still names the DKEK, its CMAC
	// no longer verifies.
	"tamper-blob": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: tamper-blob FILE")
		}
		f := parseWrapped(ts, args[0])
		f.Blob[len(f.Blob)-20] ^= 0x5A // before the 16-byte CMAC
		writeBin(ts, args[0], f.Marshal())
	},

	// cut-blob OUT IN N writes IN with its key blob cut to N bytes, in a
	// well-formed file.
	"cut-blob": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 3 {
			ts.Fatalf("usage: cut-blob OUT IN N")
		}
		f := parseWrapped(ts, args[1])
		f.Blob = f.Blob[:atoi(ts, args[2])]
		writeBin(ts, args[0], f.Marshal())
	},

	// damage-key OUT IN SHARE PASSWORD opens IN's EC key with the DKEK of
	// the one share file SHARE, changes the private scalar, and seals it
	// again: a file whose KCV and CMAC check out, but whose key does not
	// hold together.
	"damage-key": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 4 {
			ts.Fatalf("usage: damage-key OUT IN SHARE PASSWORD")
		}
		restore := dkekshare.SetIterationsForTesting(1000)
		defer restore()
		dkek, err := dkekshare.Open(readBin(ts, args[2]), []byte(args[3]), nil)
		ts.Check(err)
		f := parseWrapped(ts, args[1])
		bl, err := wrap.ParseBlob(f.Blob)
		ts.Check(err)
		k, err := bl.Open(dkek)
		ts.Check(err)
		if k.Type != wrap.TypeEC {
			ts.Fatalf("damage-key: not an EC key")
		}
		k.D = new(big.Int).Add(new(big.Int).SetBytes(k.D), big.NewInt(1)).Bytes()
		f.Blob, err = wrap.Seal(dkek, k, bl.Allowed, zeroReader{})
		ts.Check(err)
		writeBin(ts, args[0], f.Marshal())
	},

	// manifest-add DIR FILE copies FILE into the backup DIR and adds it to
	// DIR/manifest.json with its SHA-256, as backup would have.
	"manifest-add": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: manifest-add DIR FILE")
		}
		mpath := filepath.Join(ts.MkAbs(args[0]), backup.ManifestName)
		var m backup.Manifest
		ts.Check(json.Unmarshal(readBin(ts, mpath), &m))
		data := readBin(ts, args[1])
		name := "added-" + filepath.Base(args[1])
		writeBin(ts, filepath.Join(args[0], name), data)
		f := parseWrapped(ts, args[1])
		bl, err := wrap.ParseBlob(f.Blob)
		ts.Check(err)
		ref := 200 + len(m.Keys)
		m.Keys = append(m.Keys, backup.Entry{File: name, Ref: ref, Type: bl.Type.String(), KCV: fmt.Sprintf("%X", bl.KCV), SHA256: fmt.Sprintf("%x", sha256.Sum256(data))})
		js, err := json.MarshalIndent(m, "", "  ")
		ts.Check(err)
		writeBin(ts, mpath, js)
	},
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func readBin(ts *testscript.TestScript, name string) []byte {
	b, err := os.ReadFile(ts.MkAbs(name))
	ts.Check(err)
	return b
}

func writeBin(ts *testscript.TestScript, name string, b []byte) {
	ts.Check(os.WriteFile(ts.MkAbs(name), b, 0o600))
}

func atoi(ts *testscript.TestScript, s string) int {
	n, err := strconv.Atoi(s)
	ts.Check(err)
	return n
}

func parseWrapped(ts *testscript.TestScript, name string) *wrap.File {
	f, err := wrap.ParseFile(readBin(ts, name))
	ts.Check(err)
	return f
}

func setprivPath() string {
	p, _ := exec.LookPath("setpriv")
	return p
}

// canMountTmpfs reports whether this process may mount a tmpfs (root,
// not in a container that forbids it). When it may not, the scripts that
// need one skip with a line that says so.
var canMountTmpfs = sync.OnceValue(func() bool {
	dir, err := os.MkdirTemp("", "tmpfs-probe")
	if err != nil {
		return false
	}
	defer os.Remove(dir)
	if err := mountTmpfs(dir, "4k", false); err != nil {
		fmt.Fprintf(os.Stderr, "DISK-FULL AND READ-ONLY CASES SKIPPED: cannot mount a tmpfs here (%v); run the tests as root to cover them\n", err)
		return false
	}
	unmount(dir)
	return true
})

// catalogueRef is a test reference in docs/errors.md: a script, and for
// the errors scripts the case.
var catalogueRef = regexp.MustCompile("`((errors|e2e|script)/[a-z0-9.-]+\\.txtar)(#([a-z0-9-]+))?`")

// entryField is a field line of a catalogue entry.
var entryField = regexp.MustCompile(`^- \*\*(Cause|Fix|Test)\*\*: \S`)

// unitRef is a reference to a unit test in docs/errors.md.
var unitRef = regexp.MustCompile("`(internal/[a-z0-9/]+_test\\.go)#(Test\\w+)`")

// TestErrorCatalogue checks docs/errors.md against the scripts: every
// entry gives the cause, the fix and at least one test, every errors/*.txtar case it names
// exists, and every case of testdata/errors is named by an entry. Scripts
// of testdata/e2e and testdata/script it names must exist and contain the
// quoted message given after them.
func TestErrorCatalogue(t *testing.T) {
	doc, err := os.ReadFile("../../docs/errors.md")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{} // "errors/f.txtar#name"
	files, _ := filepath.Glob("testdata/errors/*.txtar")
	if len(files) == 0 {
		t.Fatal("no testdata/errors scripts")
	}
	caseLine := regexp.MustCompile(`^# case ([a-z0-9-]+): \S`)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "-- ") {
				break // the archive's files
			}
			if !strings.HasPrefix(line, "# case") {
				continue
			}
			m := caseLine.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: malformed case line %q: want \"# case NAME: what it shows\"", f, line)
				continue
			}
			key := "errors/" + filepath.Base(f) + "#" + m[1]
			if cases[key] {
				t.Errorf("%s: case %s twice", f, m[1])
			}
			cases[key] = true
		}
		fh.Close()
	}

	named := map[string]bool{}
	entries, unitTests := 0, 0
	var entry string
	var refs int
	var fields []string
	endEntry := func() {
		if entry == "" {
			return
		}
		if refs == 0 {
			t.Errorf("docs/errors.md: entry %q names no test", entry)
		}
		for _, f := range []string{"Cause", "Fix", "Test"} {
			if !slices.Contains(fields, f) {
				t.Errorf("docs/errors.md: entry %q has no **%s**", entry, f)
			}
		}
	}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#### ") {
			endEntry()
			entry, refs, fields = strings.TrimPrefix(line, "#### "), 0, nil
			entries++
			continue
		}
		if m := entryField.FindStringSubmatch(line); m != nil {
			fields = append(fields, m[1])
		}
		if strings.HasPrefix(line, "## ") || strings.HasPrefix(line, "### ") {
			endEntry()
			entry = ""
		}
		for _, m := range catalogueRef.FindAllStringSubmatch(line, -1) {
			refs++
			file, name := m[1], m[4]
			if strings.HasPrefix(file, "errors/") {
				key := file + "#" + name
				if name == "" || !cases[key] {
					t.Errorf("docs/errors.md: %q names %s, which is not a case of testdata/errors", entry, key)
				}
				named[key] = true
				continue
			}
			if _, err := os.Stat(filepath.Join("testdata", file)); err != nil {
				t.Errorf("docs/errors.md: %q names %s: %v", entry, file, err)
			}
		}
		// `internal/p/x_test.go#TestName`: a unit test, where no script can
		// make the error happen.
		for _, m := range unitRef.FindAllStringSubmatch(line, -1) {
			refs++
			unitTests++
			b, err := os.ReadFile(filepath.Join("../..", m[1]))
			if err != nil || !strings.Contains(string(b), "func "+m[2]+"(") {
				t.Errorf("docs/errors.md: %q names %s#%s, which does not exist", entry, m[1], m[2])
			}
		}
		// `e2e/x.txtar` "message": the script must check that message.
		for _, m := range regexp.MustCompile("`((?:e2e|script)/[a-z0-9.-]+\\.txtar)` \"([^\"]+)\"").FindAllStringSubmatch(line, -1) {
			b, _ := os.ReadFile(filepath.Join("testdata", m[1]))
			if !strings.Contains(string(b), m[2]) {
				t.Errorf("docs/errors.md: %q: %s does not contain %q", entry, m[1], m[2])
			}
		}
	}
	endEntry()
	var missing []string
	for c := range cases {
		if !named[c] {
			missing = append(missing, c)
		}
	}
	slices.Sort(missing)
	for _, c := range missing {
		t.Errorf("docs/errors.md names no entry for %s", c)
	}
	t.Logf("%d catalogue entries, %d cases in testdata/errors, %d references to unit tests", entries, len(cases), unitTests)
}
