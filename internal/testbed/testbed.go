// Package testbed runs the real PC/SC stack for end-to-end tests: a private
// pcscd with the vsmartcard vpcd driver, and a bridge process that plugs a
// virtual card into vpcd's reader "Virtual PCD 00 00".
//
// Isolation. pcscd runs under unshare(1) in its own network namespace
// (only loopback, brought up with ip(8)) and mount namespace:
//
//   - vpcd listens on 0.0.0.0:35963 (INADDR_ANY in opensock, vsmartcard
//     virtualsmartcard/src/vpcd/vpcd.c); in a private network namespace
//     two beds, or a bed and the machine's own vpcd, do not collide, and
//     nothing outside can plug a card into the bed.
//   - pcscd 1.9.9 always creates its socket at the compiled-in
//     /run/pcscd/pcscd.comm: unlike libpcsclite it does not read
//     PCSCLITE_CSOCK_NAME (the variable is only consulted by getSocketName,
//     compiled for the client side of pcsc-lite src/winscard_msg.c; the
//     string does not even occur in Debian's /usr/sbin/pcscd). So the bed
//     bind-mounts a directory of its own over /run inside the namespace, and
//     clients reach the socket through that directory's host path.
//   - The USB driver directory (/usr/lib/pcsc/drivers) is hidden under an
//     empty tmpfs, and vpcd is loaded from a copy of its .so, so a real Pico
//     HSM plugged into the machine never shows up in the bed: a test cannot
//     wipe a real device by accident.
//
// The bridge runs under nsenter(1) in pcscd's network namespace, where it
// reaches vpcd at 127.0.0.1:35963 (also passed as PICO_HSM_VPCD_ADDR).
// To support Bed.RemoveCard and Bed.InsertCard without losing the card's
// state, the bridge should run a vpcd.Server with HandleSignals (SIGUSR1
// removes the card, SIGUSR2 inserts it); a bridge that dies on SIGUSR1 is
// restarted by InsertCard instead. StopPCSCD, RestartPCSCD and StopBridge
// let a test kill pcscd in the middle of an operation and look at the
// simulated device's state file afterwards.
//
// libpcsclite reads PCSCLITE_CSOCK_NAME only once per process, at the first
// SCardEstablishContext (pthread_once in getSocketName). This package
// therefore sets it in init, to a path fixed for the life of the test
// process, so that in-process internal/pcsc calls reach whichever bed is
// running, and never the machine's pcscd or a real device. Beds in one
// process run one at a time.
package testbed

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pcsc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/vpcd"
)

// Reader names of vpcd's two slots: FRIENDLYNAME from the reader.conf,
// then the reader and slot numbers pcscd appends (RFAddReader in pcsc-lite
// src/readerfactory.c). The bridge serves the first one.
const (
	ReaderName  = "Virtual PCD 00 00"
	Reader2Name = "Virtual PCD 00 01"
)

// Environment variables.
const (
	// EnvE2E set to "require" turns a missing prerequisite into a test
	// failure instead of a skip. CI sets it.
	EnvE2E = "PICO_HSM_E2E"
	// EnvVPCDAddr tells the bridge where vpcd listens, as seen from
	// inside the bed's network namespace.
	EnvVPCDAddr = "PICO_HSM_VPCD_ADDR"
	// envSocket is libpcsclite's override of pcscd's socket path.
	envSocket = "PCSCLITE_CSOCK_NAME"
)

// Timeouts. pcscd is ready within tens of milliseconds; vpcd notices a
// connected or dropped card at its next presence poll, which pcscd runs
// every 400 ms (PCSCLITE_STATUS_POLL_RATE in pcsc-lite src/pcscd.h).
const (
	readyTimeout = 10 * time.Second
	cardTimeout  = 5 * time.Second
	stopTimeout  = 3 * time.Second
)

// procDir holds the bed's files for the life of the test process; its path
// must not change once libpcsclite has read PCSCLITE_CSOCK_NAME.
var procDir = func() string {
	base := os.TempDir()
	// A unix socket path is limited to 108 bytes (sun_path).
	if len(base) > 60 {
		base = "/tmp"
	}
	return filepath.Join(base, fmt.Sprintf("pico-hsm-testbed-%d", os.Getpid()))
}()

func socketPath() string { return filepath.Join(procDir, "run", "pcscd", "pcscd.comm") }

func init() {
	// A child process (the test binary run as pico-hsm-tool by a script)
	// keeps the socket its parent gave it.
	if _, ok := os.LookupEnv(envSocket); !ok {
		os.Setenv(envSocket, socketPath())
	}
}

// active serialises beds within the process: they share procDir, and
// in-process PC/SC calls can only reach one socket path.
var (
	active   sync.Mutex
	holderMu sync.Mutex
	holder   testing.TB // the test holding active
)

// Bed is a running pcscd with vpcd and, optionally, a bridge.
type Bed struct {
	t         testing.TB
	dir       string
	tools     tools
	bridgeCmd []string
	pcscd     *proc
	bridge    *proc
	second    *proc // the bridge of the second reader, if any
	bridgeN   int   // number of bridge starts, for log file names
	noReaders bool  // pcscd runs without the vpcd driver
}

// tools are the absolute paths of the programs the bed runs; /usr/sbin is
// often missing from a normal user's PATH.
type tools struct {
	unshare, nsenter, ip, pcscd, vpcdLib, usbDropDir string
}

// Start starts pcscd with the vpcd driver in private namespaces and, when
// bridgeCmd is not empty, the bridge command inside pcscd's network
// namespace, then waits until ReaderName lists a card (or, without a
// bridge, until the reader exists). Everything is stopped by t.Cleanup.
//
// When a prerequisite is missing Start skips the test with a message that
// starts with "E2E SKIPPED:", or fails it when PICO_HSM_E2E=require.
func Start(t testing.TB, bridgeCmd []string) *Bed {
	t.Helper()
	return start(t, bridgeCmd, true)
}

// StartNoReaders starts pcscd without any reader driver, so that clients
// see a running pcscd with no reader at all.
func StartNoReaders(t testing.TB) *Bed {
	t.Helper()
	return start(t, nil, false)
}

func start(t testing.TB, bridgeCmd []string, withReader bool) *Bed {
	t.Helper()
	SkipShort(t)
	tl, err := findTools()
	if err != nil {
		unavailable(t, "%v", err)
	}
	if err := namespacesWork(tl); err != nil {
		unavailable(t, "cannot create network and mount namespaces: %v", err)
	}

	holderMu.Lock()
	// A bed held by this test or one of its parents would deadlock.
	same := holder != nil && (holder == t || strings.HasPrefix(t.Name(), holder.Name()+"/"))
	holderMu.Unlock()
	if same {
		t.Fatal("testbed: Start called twice in one test; a process runs one bed at a time")
	}
	active.Lock()
	holderMu.Lock()
	holder = t
	holderMu.Unlock()
	t.Cleanup(func() {
		holderMu.Lock()
		holder = nil
		holderMu.Unlock()
		active.Unlock()
	})

	b := &Bed{t: t, dir: procDir, tools: tl, bridgeCmd: bridgeCmd, noReaders: !withReader}
	if err := b.prepare(); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	t.Cleanup(b.cleanup)
	// PCSCLITE_CSOCK_NAME is already set, by init: libpcsclite reads it
	// once per process, so setting it here (t.Setenv) would be too late
	// for a process that talked to PC/SC before, and would forbid
	// t.Parallel in every e2e test.
	if got := os.Getenv(envSocket); got != socketPath() {
		t.Fatalf("testbed: %s is %q, not the bed's socket %q: do not change it in tests", envSocket, got, socketPath())
	}

	if err := b.startPCSCD(); err != nil {
		t.Fatalf("testbed: %v", err)
	}
	switch {
	case b.noReaders:
	case len(bridgeCmd) > 0:
		if err := b.startBridge(); err != nil {
			t.Fatalf("testbed: %v", err)
		}
		b.waitReader("a card in "+ReaderName, func(r pcsc.ReaderInfo) bool { return r.CardPresent })
	default:
		b.waitReader(ReaderName, func(pcsc.ReaderInfo) bool { return true })
	}
	return b
}

// SkipShort skips an end-to-end test under go test -short (make unit):
// they take minutes, and make test runs them. A test whose subtests
// depend on each other calls it first, so that it is skipped whole rather
// than failing at its second step.
func SkipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short (make unit); make test runs it")
	}
}

// unavailable skips, loudly, or fails under PICO_HSM_E2E=require.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if os.Getenv(EnvE2E) == "require" {
		t.Fatalf("E2E REQUIRED (%s=require) but unavailable: %s", EnvE2E, reason)
	}
	msg := fmt.Sprintf("E2E SKIPPED: %s; install pcscd, vsmartcard-vpcd and opensc, and run as root or with unprivileged user namespaces enabled (set %s=require to make this a failure)", reason, EnvE2E)
	fmt.Fprintf(os.Stderr, "\n*** %s: %s ***\n\n", t.Name(), msg)
	t.Skip(msg)
}

func findTools() (tools, error) {
	var tl tools
	var missing []string
	look := func(name string, dirs ...string) string {
		if p, err := exec.LookPath(name); err == nil {
			if abs, err := filepath.Abs(p); err == nil {
				return abs
			}
			return p
		}
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
				return p
			}
		}
		missing = append(missing, name)
		return ""
	}
	if runtime.GOOS != "linux" {
		return tl, fmt.Errorf("needs Linux namespaces, this is %s", runtime.GOOS)
	}
	sbin := []string{"/usr/sbin", "/sbin", "/usr/local/sbin"}
	bin := []string{"/usr/bin", "/bin"}
	tl.unshare = look("unshare", bin...)
	tl.nsenter = look("nsenter", bin...)
	tl.ip = look("ip", append(sbin, bin...)...)
	tl.pcscd = look("pcscd", sbin...)
	tl.vpcdLib = findVPCDLib()
	if tl.vpcdLib == "" {
		missing = append(missing, "libifdvpcd.so (package vsmartcard-vpcd)")
	}
	if len(missing) > 0 {
		return tl, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	tl.usbDropDir = "/usr/lib/pcsc/drivers" // pcscd --version: usbdropdir
	return tl, nil
}

// findVPCDLib finds the vpcd driver: the LIBPATH of /etc/reader.conf.d/vpcd
// as installed by vsmartcard-vpcd, or a usual location.
func findVPCDLib() string {
	var cands []string
	if f, err := os.Open("/etc/reader.conf.d/vpcd"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 2 && fields[0] == "LIBPATH" {
				cands = append(cands, fields[1])
			}
		}
		f.Close()
	}
	for _, d := range []string{"/usr/lib/pcsc/drivers/serial", "/usr/lib64/pcsc/drivers/serial", "/usr/local/lib/pcsc/drivers/serial"} {
		cands = append(cands, filepath.Join(d, "libifdvpcd.so"))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// unshareArgs are the namespace flags. Without root, a user namespace
// mapping the caller to root grants the right to mount in the new mount
// namespace.
func unshareArgs() []string {
	args := []string{"--net", "--mount", "--propagation", "private"}
	if os.Geteuid() != 0 {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	return args
}

func namespacesWork(tl tools) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	args := append(unshareArgs(), "--", tl.ip, "link", "set", "lo", "up")
	out, err := exec.CommandContext(ctx, tl.unshare, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", tl.unshare, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// prepare lays out procDir: run/ (bound over /run for pcscd), conf/vpcd (a
// reader.conf for vpcd alone) and drivers/ (the copied vpcd driver).
func (b *Bed) prepare() error {
	sweepStale()
	if err := os.RemoveAll(b.dir); err != nil {
		return err
	}
	for _, d := range []string{"run", "conf", "drivers"} {
		if err := os.MkdirAll(filepath.Join(b.dir, d), 0o755); err != nil {
			return err
		}
	}
	if b.noReaders {
		return nil
	}
	lib := filepath.Join(b.dir, "drivers", "libifdvpcd.so")
	if err := copyFile(b.tools.vpcdLib, lib); err != nil {
		return fmt.Errorf("copying the vpcd driver: %w", err)
	}
	// reader.conf(5) syntax as in vsmartcard's reader.conf.in; the
	// channel id is vpcd's TCP port, 0x8C7B = 35963.
	conf := fmt.Sprintf("FRIENDLYNAME \"Virtual PCD\"\nDEVICENAME   /dev/null:0x8C7B\nLIBPATH      %s\nCHANNELID    0x8C7B\n", lib)
	return os.WriteFile(filepath.Join(b.dir, "conf", "vpcd"), []byte(conf), 0o644)
}

// sweepStale removes the directories of test processes that died without
// running their cleanups (their children died with them, see
// setPdeathsig).
func sweepStale() {
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(procDir), "pico-hsm-testbed-*"))
	for _, m := range matches {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(m), "pico-hsm-testbed-%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			os.RemoveAll(m)
		}
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// pcscdScript runs inside the new namespaces, then becomes pcscd, so the
// PID unshare starts with is pcscd's.
const pcscdScript = `set -e
"$TESTBED_IP" link set lo up
mount --bind "$TESTBED_DIR/run" /run
if [ -d "$TESTBED_USBDIR" ]; then mount -t tmpfs -o size=64k,mode=0755 tmpfs "$TESTBED_USBDIR"; fi
exec "$TESTBED_PCSCD" --foreground --debug --config "$TESTBED_DIR/conf"
`

func (b *Bed) startPCSCD() error {
	args := append(unshareArgs(), "--", "/bin/sh", "-c", pcscdScript)
	cmd := exec.Command(b.tools.unshare, args...)
	cmd.Env = append(cleanEnv(os.Environ()),
		"TESTBED_IP="+b.tools.ip, "TESTBED_DIR="+b.dir,
		"TESTBED_USBDIR="+b.tools.usbDropDir, "TESTBED_PCSCD="+b.tools.pcscd)
	p, err := startProc(cmd, filepath.Join(b.dir, "pcscd.log"))
	if err != nil {
		return fmt.Errorf("starting pcscd: %w", err)
	}
	b.pcscd = p

	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, err := pcsc.Establish()
		if err == nil {
			ctx.Release()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("pcscd exited during startup: %v\n%s", p.err, tail(p.logPath, 30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pcscd not reachable at %s after %s: %v\n%s", socketPath(), readyTimeout, err, tail(p.logPath, 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanEnv drops systemd socket-activation variables: pcscd is linked with
// libsystemd and would otherwise try to take its socket from a systemd that
// did not pass it one.
func cleanEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (b *Bed) startBridge() error {
	p, err := b.spawnBridge(b.bridgeCmd, vpcd.DefaultAddr)
	if err != nil {
		return err
	}
	b.bridge = p
	return nil
}

// Reader2Addr is where vpcd listens for the card of its second slot,
// Reader2Name: the first slot's port plus one (vsmartcard's ifd-vpcd
// opens one port per slot from CHANNELID up).
const Reader2Addr = "127.0.0.1:35964"

// InsertSecondCard plugs a second simulated device into vpcd's second
// reader (Reader2Name) with bridgeCmd, and waits until pcscd sees it: two
// devices for the tests of a ceremony with a primary and a spare. The
// bed stops it at the end.
func (b *Bed) InsertSecondCard(bridgeCmd []string) {
	b.t.Helper()
	if b.second != nil {
		b.t.Fatal("testbed: the second reader holds a card already")
	}
	p, err := b.spawnBridge(bridgeCmd, Reader2Addr)
	if err != nil {
		b.t.Fatalf("testbed: %v", err)
	}
	b.second = p
	b.waitReaderNamed(Reader2Name, "a card in "+Reader2Name, func(r pcsc.ReaderInfo) bool { return r.CardPresent })
}

// SwapSecondCard takes the card out of the second reader and puts
// another one in: it stops the second bridge and starts bridgeCmd there,
// as replacing a spare device does. The old card's state file is left as
// it was.
func (b *Bed) SwapSecondCard(bridgeCmd []string) {
	b.t.Helper()
	if b.second == nil {
		b.t.Fatal("testbed: SwapSecondCard without a second card")
	}
	if err := b.second.stop(); err != nil {
		b.t.Logf("testbed: stopping the second bridge: %v", err)
	}
	b.second = nil
	b.waitReaderNamed(Reader2Name, "the card to leave "+Reader2Name, func(r pcsc.ReaderInfo) bool { return !r.CardPresent })
	b.InsertSecondCard(bridgeCmd)
}

// spawnBridge starts bridgeCmd in pcscd's network namespace, pointed at
// vpcd's slot listening on addr.
func (b *Bed) spawnBridge(bridgeCmd []string, addr string) (*proc, error) {
	b.bridgeN++
	args := []string{"--net=" + b.NetNS()}
	if os.Geteuid() != 0 {
		// The network namespace belongs to the user namespace unshare
		// created; only inside it may a normal user join the former.
		// Keep the caller's IDs, which map to root in there.
		args = append([]string{fmt.Sprintf("--user=/proc/%d/ns/user", b.pcscd.cmd.Process.Pid), "--preserve-credentials"}, args...)
	}
	args = append(append(args, "--"), bridgeCmd...)
	cmd := exec.Command(b.tools.nsenter, args...)
	cmd.Env = append(b.Env(), EnvVPCDAddr+"="+addr)
	p, err := startProc(cmd, filepath.Join(b.dir, fmt.Sprintf("bridge-%d.log", b.bridgeN)))
	if err != nil {
		return nil, fmt.Errorf("starting bridge %q: %w", bridgeCmd, err)
	}
	return p, nil
}

// NetNS is the path of pcscd's network namespace, for nsenter --net.
func (b *Bed) NetNS() string {
	return fmt.Sprintf("/proc/%d/ns/net", b.pcscd.cmd.Process.Pid)
}

// Socket is the host path of the bed's pcscd socket.
func (b *Bed) Socket() string { return socketPath() }

// Env returns the environment for programs that should talk to the bed's
// pcscd: opensc-tool, sc-hsm-tool, pkcs11-tool, pico-hsm-tool.
func (b *Bed) Env() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range cleanEnv(os.Environ()) {
		if !strings.HasPrefix(kv, envSocket+"=") {
			env = append(env, kv)
		}
	}
	return append(env, envSocket+"="+socketPath())
}

// Command is exec.Command with the bed's environment.
func (b *Bed) Command(name string, arg ...string) *exec.Cmd {
	cmd := exec.Command(name, arg...)
	cmd.Env = b.Env()
	return cmd
}

// Run runs a program with the bed's environment and returns its combined
// output. It is killed after 3 minutes: sc-hsm-tool spends 16 s of CPU on one share key derivation, more on a loaded machine.
func (b *Bed) Run(name string, arg ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, arg...)
	cmd.Env = b.Env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// StopPCSCD stops pcscd, so that clients see "pcscd is not running".
func (b *Bed) StopPCSCD() {
	b.t.Helper()
	if err := b.pcscd.stop(); err != nil {
		b.t.Logf("testbed: stopping pcscd: %v", err)
	}
}

// RestartPCSCD starts pcscd again after StopPCSCD (or stops it first), and
// the bridge with it: the bridge joined the old pcscd's network
// namespace, which went away with it. The card's state survives, as a
// Pico HSM's flash survives pcscd. It waits until the card is present.
func (b *Bed) RestartPCSCD() {
	b.t.Helper()
	b.StopBridge()
	if err := b.pcscd.stop(); err != nil {
		b.t.Logf("testbed: stopping pcscd: %v", err)
	}
	if err := b.startPCSCD(); err != nil {
		b.t.Fatalf("testbed: %v", err)
	}
	if len(b.bridgeCmd) == 0 {
		b.waitReader(ReaderName, func(pcsc.ReaderInfo) bool { return true })
		return
	}
	if err := b.startBridge(); err != nil {
		b.t.Fatalf("testbed: %v", err)
	}
	b.waitReader("a card in "+ReaderName, func(r pcsc.ReaderInfo) bool { return r.CardPresent })
}

// StopBridge stops the bridge process, so that a test can open the
// simulated device's state file itself (the bridge holds its lock).
// InsertCard or RestartPCSCD starts it again.
func (b *Bed) StopBridge() {
	b.t.Helper()
	if b.bridge == nil {
		return
	}
	if err := b.bridge.stop(); err != nil {
		b.t.Logf("testbed: stopping the bridge: %v", err)
	}
	// pcscd notices the card is gone at its next poll; until then a new
	// bridge's card would seem to be there already, and then vanish.
	if !b.pcscd.exited() {
		b.waitReader("the card to leave "+ReaderName, func(r pcsc.ReaderInfo) bool { return !r.CardPresent })
	}
}

// RemoveCard takes the card out of the reader and waits until pcscd
// reports the reader empty.
func (b *Bed) RemoveCard() {
	b.t.Helper()
	if b.bridge == nil {
		b.t.Fatal("testbed: RemoveCard without a bridge")
	}
	b.removeFrom(b.bridge, ReaderName)
}

// RemoveSecondCard takes the card out of the second reader
// (InsertSecondCard), as pulling the spare device in the middle of a
// ceremony does, and waits until pcscd reports that reader empty.
func (b *Bed) RemoveSecondCard() {
	b.t.Helper()
	if b.second == nil {
		b.t.Fatal("testbed: RemoveSecondCard without a second card")
	}
	b.removeFrom(b.second, Reader2Name)
}

// removeFrom has bridge p take its card out of reader name: the bridge
// power-cycles the simulated device, as unplugging the real one does.
func (b *Bed) removeFrom(p *proc, name string) {
	b.t.Helper()
	if !p.exited() {
		if err := p.cmd.Process.Signal(vpcd.RemoveSignal); err != nil {
			b.t.Fatalf("testbed: signalling the bridge: %v", err)
		}
	}
	b.waitReaderNamed(name, "the card to leave "+name, func(r pcsc.ReaderInfo) bool { return !r.CardPresent })
}

// InsertCard puts the card back (or restarts a bridge that exited) and
// waits until pcscd reports it present.
func (b *Bed) InsertCard() {
	b.t.Helper()
	if b.bridge == nil {
		b.t.Fatal("testbed: InsertCard without a bridge")
	}
	if b.bridge.exited() {
		if err := b.startBridge(); err != nil {
			b.t.Fatalf("testbed: %v", err)
		}
	} else if err := b.bridge.cmd.Process.Signal(vpcd.InsertSignal); err != nil {
		b.t.Fatalf("testbed: signalling the bridge: %v", err)
	}
	b.waitReader("a card in "+ReaderName, func(r pcsc.ReaderInfo) bool { return r.CardPresent })
}

// ReinsertSecondCard puts the card RemoveSecondCard took out back into
// the second reader and waits until pcscd reports it present.
func (b *Bed) ReinsertSecondCard() {
	b.t.Helper()
	if b.second == nil || b.second.exited() {
		b.t.Fatal("testbed: ReinsertSecondCard without a running second bridge")
	}
	if err := b.second.cmd.Process.Signal(vpcd.InsertSignal); err != nil {
		b.t.Fatalf("testbed: signalling the bridge: %v", err)
	}
	b.waitReaderNamed(Reader2Name, "a card in "+Reader2Name, func(r pcsc.ReaderInfo) bool { return r.CardPresent })
}

// SwapCard takes the card out of the reader and puts another one in: it
// stops the bridge and starts bridgeCmd in its place, as unplugging one
// device and plugging in another does. The old card's state file is left
// as it was.
func (b *Bed) SwapCard(bridgeCmd []string) {
	b.t.Helper()
	b.StopBridge()
	b.bridgeCmd = bridgeCmd
	if err := b.startBridge(); err != nil {
		b.t.Fatalf("testbed: %v", err)
	}
	b.waitReader("a card in "+ReaderName, func(r pcsc.ReaderInfo) bool { return r.CardPresent })
}

// waitReader polls pcscd until ReaderName satisfies ok.
func (b *Bed) waitReader(what string, ok func(pcsc.ReaderInfo) bool) {
	b.t.Helper()
	b.waitReaderNamed(ReaderName, what, ok)
}

// waitReaderNamed polls pcscd until the reader name satisfies ok.
func (b *Bed) waitReaderNamed(name, what string, ok func(pcsc.ReaderInfo) bool) {
	b.t.Helper()
	deadline := time.Now().Add(cardTimeout)
	var last string
	for {
		if ctx, err := pcsc.Establish(); err != nil {
			last = err.Error()
		} else {
			rs, err := ctx.Readers()
			ctx.Release()
			last = fmt.Sprintf("readers %+v, err %v", rs, err)
			for _, r := range rs {
				if r.Name == name && ok(r) {
					return
				}
			}
		}
		if b.pcscd.exited() {
			b.t.Fatalf("testbed: pcscd exited while waiting for %s: %v\n%s", what, b.pcscd.err, tail(b.pcscd.logPath, 30))
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("testbed: no %s after %s (%s)\npcscd log:\n%s\nbridge log:\n%s",
				what, cardTimeout, last, tail(b.pcscd.logPath, 30), b.BridgeLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PCSCDLog returns pcscd's debug output so far.
func (b *Bed) PCSCDLog() string { return readAll(b.pcscd.logPath) }

// BridgeLog returns the output of the current bridge process.
func (b *Bed) BridgeLog() string {
	if b.bridge == nil {
		return ""
	}
	return readAll(b.bridge.logPath)
}

func (b *Bed) cleanup() {
	if b.second != nil {
		if err := b.second.stop(); err != nil {
			b.t.Logf("testbed: stopping the second bridge: %v", err)
		}
	}
	if b.bridge != nil {
		if err := b.bridge.stop(); err != nil {
			b.t.Logf("testbed: stopping the bridge: %v", err)
		}
	}
	if b.pcscd != nil {
		if err := b.pcscd.stop(); err != nil {
			b.t.Logf("testbed: stopping pcscd: %v", err)
		}
	}
	if b.t.Failed() {
		if b.pcscd != nil {
			b.t.Logf("testbed: pcscd log (last lines):\n%s", tail(b.pcscd.logPath, 40))
		}
		if b.bridge != nil {
			b.t.Logf("testbed: bridge log (last lines):\n%s", tail(b.bridge.logPath, 40))
		}
		if b.second != nil {
			b.t.Logf("testbed: second bridge log (last lines):\n%s", tail(b.second.logPath, 40))
		}
	}
	os.RemoveAll(b.dir)
}

// proc is a child process started and reaped by the bed. Only processes
// the bed started are ever signalled, by PID.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, then SIGKILL if the process is still there after
// stopTimeout, and waits for it.
func (p *proc) stop() error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
	}
	p.cmd.Process.Kill()
	select {
	case <-p.done:
		return fmt.Errorf("pid %d ignored SIGTERM and was killed", p.cmd.Process.Pid)
	case <-time.After(stopTimeout):
		return fmt.Errorf("pid %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
}

func readAll(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func tail(path string, n int) string {
	lines := strings.Split(strings.TrimRight(readAll(path), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
