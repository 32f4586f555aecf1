package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
)

// The fault matrix (issue "Hardening", section 2): every multi-step command
// runs against the simulated device with a fault at each APDU of its
// session, for each kind of fault, and each run must
//
//	(a) exit non-zero with a message that says what state the device is
//	    in, truthfully, and what to do;
//	(b) leave the disk as it was: files that existed keep their bytes, and
//	    no new file (a temporary one included) is left;
//	(c) leave the device in the old state or the new one, never with a key
//	    deleted and not replaced.
//
// The rows are written to docs/reliability.md with -update-reliability; a
// normal run checks that the document is current.

var updateReliability = flag.Bool("update-reliability", false, "rewrite docs/reliability.md from the fault matrix")

const reliabilityDoc = "../../docs/reliability.md"

// faultKinds are the faults tried at every APDU; see sim.FaultKind.
var faultKinds = []string{"removed:before", "removed:after", "reset:after", "noservice:before", "sw=6581:before", "sw=6F00:after", "truncate:after"}

const (
	matrixPIN   = "648219"
	matrixSOPIN = "3537363231383830"
)

// faultRunTool runs the test binary as pico-hsm-tool in dir with extra
// environment variables, and returns its exit code, stdout and stderr.
// The share files' key derivation is lowered as in the scripts.
func faultRunTool(t testing.TB, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PICO_HSM_TEST_KDF_ITERATIONS=1000")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return code, out.String(), errb.String()
}

// faultMustTool runs the tool and fails the test unless it succeeds.
func faultMustTool(t testing.TB, dir string, args ...string) string {
	t.Helper()
	code, out, errs := faultRunTool(t, dir, nil, args...)
	if code != 0 {
		t.Fatalf("pico-hsm-tool %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// faultTempDir is a temporary directory on tmpfs (/dev/shm) when there is
// one: the simulated device and the tool fsync their writes, which costs
// tens of milliseconds each on a virtual disk and would make the matrix's
// hundreds of runs take minutes. The matrix checks what is written, not
// its durability.
func faultTempDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "pico-hsm-fault-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

// matrixFixture holds the devices and files every row starts from, made
// once: state files to copy, and what names the keys.
type matrixFixture struct {
	dir string
	// States: "import" (initialized for 2 DKEK shares, none imported),
	// "base" (DKEK complete, key alpha at 1, beta at 2), "target" (same
	// DKEK, key gamma at 1).
	states map[string][]byte
	// names maps a key's public key (sim.Device.PublicKey) to its name,
	// and certs a key's name to its file CExx as generated.
	names map[string]string
	certs map[string][]byte
	kcv   string
}

func buildMatrixFixture(t *testing.T) *matrixFixture {
	t.Helper()
	dir := faultTempDir(t)
	fx := &matrixFixture{dir: dir, states: map[string][]byte{}, names: map[string]string{}, certs: map[string][]byte{}}
	sh := func(name string, args ...string) string {
		t.Helper()
		return faultMustTool(t, dir, append([]string{"--reader", "sim:" + filepath.Join(dir, name+".json")}, args...)...)
	}
	faultMustTool(t, dir, "create-dkek-share", "s1.pbe", "--password", "fault-matrix-1")
	faultMustTool(t, dir, "create-dkek-share", "s2.pbe", "--password", "fault-matrix-2")
	for _, n := range []string{"base", "target", "import"} {
		sh(n, "initialize", "--so-pin", matrixSOPIN, "--pin", matrixPIN, "--dkek-shares", "2")
	}
	fx.save(t, "import")
	for _, n := range []string{"base", "target"} {
		out := sh(n, "import-dkek-share", "s1.pbe", "s2.pbe", "--password", "fault-matrix-1", "--password", "fault-matrix-2", "--pin", matrixPIN)
		fx.kcv = lastKCVIn(out)
	}
	sh("base", "generate-key", "--type", "rsa:1024", "--label", "alpha", "--pin", matrixPIN)
	sh("base", "generate-key", "--type", "ec:secp256r1", "--label", "beta", "--pin", matrixPIN)
	sh("target", "generate-key", "--type", "rsa:1024", "--label", "gamma", "--pin", matrixPIN)
	sh("base", "wrap-key", "beta.bin", "--key-reference", "2", "--pin", matrixPIN)
	sh("base", "backup", "--out-dir", "bk", "--pin", matrixPIN)
	if fx.kcv == "" {
		t.Fatal("import-dkek-share printed no DKEK key check value")
	}
	fx.save(t, "base")
	fx.save(t, "target")
	for _, k := range []struct {
		state string
		ref   byte
		name  string
	}{{"base", 1, "alpha"}, {"base", 2, "beta"}, {"target", 1, "gamma"}} {
		conn, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(dir, k.state+".json")})
		if err != nil {
			t.Fatal(err)
		}
		fx.names[hex.EncodeToString(conn.Sim.PublicKey(k.ref))] = k.name
		key, err := keystore.Read(conn.Device, k.ref)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		fx.certs[k.name] = key.Cert
	}
	return fx
}

func lastKCVIn(out string) string {
	m := kcvRE.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

func (fx *matrixFixture) save(t *testing.T, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fx.dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	fx.states[name] = b
}

// devState is what the matrix checks on the device after a run.
type devState struct {
	// DKEK: "none", "1/2" (shares imported of total), "2/2" (complete,
	// with the check value the fixture's shares make), or "2/2 WRONG KCV
	// X". The shares are made afresh by each run, so their check value is
	// left out of the document.
	DKEK string
	// Keys by reference (0, the device key, left out): the key's name
	// from its public key, plus "(no label)" when its description is not
	// the one the tool writes and "(no certificate)" when its file CExx is
	// not the key's own (the firmware writes a new CV request at UNWRAP
	// KEY; the tool then writes the backup's).
	Keys map[int]string
}

func (s devState) String() string {
	refs := make([]int, 0, len(s.Keys))
	for r := range s.Keys {
		refs = append(refs, r)
	}
	sort.Ints(refs)
	parts := []string{"DKEK " + s.DKEK}
	for _, r := range refs {
		parts = append(parts, fmt.Sprintf("%d=%s", r, s.Keys[r]))
	}
	if len(refs) == 0 {
		parts = append(parts, "no keys")
	}
	return strings.Join(parts, ", ")
}

// readState opens the simulated device in path (after the tool exited)
// and describes it.
func (fx *matrixFixture) readState(t testing.TB, path string) devState {
	t.Helper()
	conn, err := device.Open(device.Options{Reader: "sim:" + path})
	if err != nil {
		t.Fatalf("opening the device after the run: %v", err)
	}
	defer conn.Close()
	st := devState{DKEK: "none", Keys: map[int]string{}}
	if err := conn.VerifyPIN(hsm.UserPIN, []byte(matrixPIN)); err != nil {
		t.Fatalf("device after the run: %v", err)
	}
	ds, err := conn.DKEKStatus()
	if err != nil {
		t.Fatalf("device after the run: %v", err)
	}
	if ds.Shares > 0 {
		st.DKEK = fmt.Sprintf("%d/%d", ds.Shares-ds.Outstanding, ds.Shares)
		if ds.Complete() && ds.KCVHex() != fx.kcv {
			st.DKEK += " WRONG KCV " + ds.KCVHex()
		}
	}
	keys, err := keystore.List(conn.Device)
	if err != nil {
		t.Fatalf("device after the run: %v", err)
	}
	for _, k := range keys {
		name, ok := fx.names[hex.EncodeToString(conn.Sim.PublicKey(byte(k.Ref)))]
		if !ok {
			name = "unknown key"
		}
		var flags []string
		if k.Label != name {
			flags = append(flags, "no label")
		}
		if !bytes.Equal(k.Cert, fx.certs[name]) {
			flags = append(flags, "no certificate")
		}
		if len(flags) > 0 {
			name += " (" + strings.Join(flags, ", ") + ")"
		}
		st.Keys[k.Ref] = name
	}
	return st
}

// faultSnapshot is every file under dir with a hash of its content.
func faultSnapshot(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:8])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func faultDiff(before, after map[string]string) []string {
	var d []string
	for p, h := range before {
		switch a, ok := after[p]; {
		case !ok:
			d = append(d, p+" was removed")
		case a != h:
			d = append(d, p+" was changed")
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			d = append(d, p+" was created")
		}
	}
	sort.Strings(d)
	return d
}

func faultCopyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func faultCopyDir(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		faultCopyFile(t, filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
	}
}

// matrixOp is one command of the matrix.
type matrixOp struct {
	name  string
	state string // the fixture state the device starts in
	// prepare puts the files the command reads or would replace into work.
	prepare func(t *testing.T, fx *matrixFixture, work string)
	args    []string
	// allowed says whether a device state is the old or the new one.
	allowed func(fx *matrixFixture, st devState) bool
	// claims are what a failed run may say about the device; see judge.
	claims []claim
	// cover lists the key references whose state every failed run must
	// state (restore: each key of the backup).
	cover []int
	// initial is the device's state before the command, read from a copy
	// of the fixture.
	initial string
}

// claim is one statement a failed run can make about the device, and the
// device states in which it is true.
type claim struct {
	re *regexp.Regexp
	// says is the claim in a few words, for the document.
	says string
	// refs are the key references it covers (nil: all).
	refs []int
	ok   func(st devState) bool
}

// actions are the phrases that tell the person what to do next.
var actions = regexp.MustCompile(`retry|run |start it with|finish with|plug`)

// judge checks (a): the output makes at least one of op's claims, every
// claim it makes is true of the device, every reference in op.cover is
// spoken for, and it says what to do. It returns the claims made.
func judge(op *matrixOp, out, msg string, st devState) (string, error) {
	all := out + "\n" + msg
	var says []string
	covered := map[int]bool{}
	global := false
	// Any command can fail at its first APDU, which device.Open sends.
	notStarted := claim{re: lit("the command did not start, the device is unchanged"), says: "device unchanged",
		ok: func(st devState) bool { return st.String() == op.initial }}
	for _, c := range append([]claim{notStarted}, op.claims...) {
		if !c.re.MatchString(all) {
			continue
		}
		if !c.ok(st) {
			return "", fmt.Errorf("it says %q, which is false", c.says)
		}
		says = append(says, c.says)
		if c.refs == nil {
			global = true
		}
		for _, r := range c.refs {
			covered[r] = true
		}
	}
	if len(says) == 0 {
		return "", errors.New("it does not say what state the device is in")
	}
	if !global {
		for _, r := range op.cover {
			if !covered[r] {
				return "", fmt.Errorf("it does not say what became of key reference %d", r)
			}
		}
	}
	if !actions.MatchString(all) {
		return "", errors.New("it does not say what to do")
	}
	return strings.Join(says, "; "), nil
}

// matrixRow is one run of the matrix, for the document.
type matrixRow struct {
	op, cmd, fault, outcome, test string
	n                             int
}

// setupRow makes a row's directories: the work directory with the files
// the command uses, and the device's state file in a directory of its own.
func setupRow(t *testing.T, fx *matrixFixture, op *matrixOp) (work, devPath string) {
	t.Helper()
	root := faultTempDir(t)
	work = filepath.Join(root, "work")
	devPath = filepath.Join(root, "dev", "dev.json")
	for _, d := range []string{work, filepath.Dir(devPath)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(devPath, fx.states[op.state], 0o600); err != nil {
		t.Fatal(err)
	}
	if op.prepare != nil {
		op.prepare(t, fx, work)
	}
	return work, devPath
}

// apduNames runs the command cleanly with -v and returns the names of its
// APDUs in order, as the trace shows them.
func apduNames(t *testing.T, fx *matrixFixture, op *matrixOp) []string {
	t.Helper()
	work, devPath := setupRow(t, fx, op)
	code, out, errs := faultRunTool(t, work, nil, append([]string{"-v", "--reader", "sim:" + devPath}, op.args...)...)
	if code != 0 {
		t.Fatalf("clean run of %s: exit %d\n%s%s", op.name, code, out, errs)
	}
	var names []string
	for _, l := range strings.Split(errs, "\n") {
		if rest, ok := strings.CutPrefix(l, "> "); ok {
			name, _, _ := strings.Cut(rest, ":")
			names = append(names, name)
		}
	}
	if st := fx.readState(t, devPath); !op.allowed(fx, st) {
		t.Fatalf("clean run of %s leaves %s, which the matrix does not allow", op.name, st)
	}
	return names
}

func TestFaultMatrix(t *testing.T) {
	fx := buildMatrixFixture(t)
	var mu sync.Mutex
	var rows []matrixRow
	planned := 0
	t.Run("ops", func(t *testing.T) {
		for i := range matrixOps {
			op := &matrixOps[i]
			_, devPath := setupRow(t, fx, op)
			op.initial = fx.readState(t, devPath).String()
			names := apduNames(t, fx, op)
			planned += len(names) * len(faultKinds)
			t.Run(op.name, func(t *testing.T) {
				for n, cmdName := range names {
					for _, kind := range faultKinds {
						spec := fmt.Sprintf("%s:%d", kind, n+1)
						sub := fmt.Sprintf("%02d-%s", n+1, strings.NewReplacer(":", "-", "=", "").Replace(kind))
						t.Run(sub, func(t *testing.T) {
							t.Parallel()
							outcome := runMatrixRow(t, fx, op, spec)
							mu.Lock()
							rows = append(rows, matrixRow{op: op.name, n: n + 1, cmd: cmdName, fault: strings.Replace(kind, ":", " ", 1), outcome: outcome, test: t.Name()})
							mu.Unlock()
						})
					}
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	if len(rows) < planned {
		t.Logf("%d of %d rows ran (-run picked some): docs/reliability.md not checked", len(rows), planned)
		return
	}
	checkReliabilityDoc(t, rows)
}

// runMatrixRow runs one command with one fault and checks (a), (b) and
// (c). It returns the outcome for the document.
func runMatrixRow(t *testing.T, fx *matrixFixture, op *matrixOp, spec string) string {
	work, devPath := setupRow(t, fx, op)
	before := faultSnapshot(t, work)
	code, out, errs := faultRunTool(t, work, []string{envTestFault + "=" + spec}, append([]string{"--reader", "sim:" + devPath}, op.args...)...)
	msg := strings.TrimSpace(errs)
	st := fx.readState(t, devPath)
	// (b) the disk, and no temporary file of the device's state.
	if d := faultDiff(before, faultSnapshot(t, work)); len(d) > 0 {
		t.Errorf("files: %s", strings.Join(d, "; "))
	}
	if d := faultDiff(map[string]string{"dev.json": "", "dev.json.lock": ""}, faultSnapshot(t, filepath.Dir(devPath))); slices.ContainsFunc(d, func(s string) bool { return strings.HasSuffix(s, "created") }) {
		t.Errorf("the simulated device's directory: %s", strings.Join(d, "; "))
	}
	// (c) the device.
	if !op.allowed(fx, st) {
		t.Errorf("device left in %s: neither the old state nor the new one", st)
	}
	// (a) the exit code and the message.
	if code == 0 {
		t.Errorf("exit 0 with a fault; stdout:\n%s", out)
		return "exit 0 (fault not reported)"
	}
	said, err := judge(op, out, msg, st)
	if err != nil {
		t.Errorf("message: %v\nstdout: %s\nstderr: %s\ndevice: %s", err, out, msg, st)
	}
	return fmt.Sprintf("exit %d: %s; says %s; device: %s", code, faultCause(out+"\n"+msg), said, st)
}

// faultCause names the fault as the message reports it.
func faultCause(msg string) string {
	for _, c := range []struct{ phrase, name string }{
		{"the card was removed or reset during the operation", "card removed or reset"},
		{"pcscd is not running", "pcscd gone"},
		{"device memory failure", "memory failure"},
		{"SW 6F00", "unknown error"},
		{"has no status word", "malformed answer"},
	} {
		if strings.Contains(msg, c.phrase) {
			return c.name
		}
	}
	return "other error"
}

// checkReliabilityDoc writes the matrix into docs/reliability.md with
// -update-reliability, and otherwise checks that the document is current.
func checkReliabilityDoc(t *testing.T, rows []matrixRow) {
	order := map[string]int{}
	for i, op := range matrixOps {
		order[op.name] = i
	}
	kindOrder := map[string]int{}
	for i, k := range faultKinds {
		kindOrder[strings.Replace(k, ":", " ", 1)] = i
	}
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.op != b.op {
			return order[a.op] < order[b.op]
		}
		if a.n != b.n {
			return a.n < b.n
		}
		return kindOrder[a.fault] < kindOrder[b.fault]
	})
	var tb strings.Builder
	fmt.Fprintf(&tb, "%d rows.\n\n", len(rows))
	tb.WriteString("| Operation | APDU | Command | Fault | Expected outcome | Test |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&tb, "| %s | %d | %s | %s | %s | `%s` |\n", r.op, r.n, r.cmd, r.fault, r.outcome, r.test)
	}
	table := tb.String()
	doc, err := os.ReadFile(reliabilityDoc)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- fault matrix begin: generated by TestFaultMatrix -update-reliability -->\n", "<!-- fault matrix end -->\n"
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q and %q", reliabilityDoc, begin, end)
	}
	want := s[:i+len(begin)] + table + s[j:]
	if want == s {
		return
	}
	if *updateReliability {
		if err := os.WriteFile(reliabilityDoc, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is not current: run go test ./cmd/pico-hsm-tool -run TestFaultMatrix -update-reliability", reliabilityDoc)
}
