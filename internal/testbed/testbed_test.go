package testbed

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pcsc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/vpcd"
)

// picoATR is the ATR of a real Pico HSM (the SmartCard-HSM ATR it copies).
const picoATR = "3B:FE:18:00:00:81:31:FE:45:80:31:81:54:48:53:4D:31:73:80:21:40:81:07:FA"

// otherATR belongs to no SmartCard-HSM: a generic contactless card ATR as
// PC/SC part 3 builds them.
const otherATR = "3B:8F:80:01:80:4F:0C:A0:00:00:03:06:03:00:01:00:00:00:00:6A"

// hsmAID is the SmartCard-HSM application identifier.
var hsmAID = []byte{0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01}

// fakeCardArg is the first argument that turns the test binary into a
// bridge; the second says which card it plays ("hsm" or "other").
const fakeCardArg = "testbed-fake-card"

func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == fakeCardArg {
		os.Exit(runFakeCard(os.Args[2]))
	}
	os.Exit(m.Run())
}

// fakeCard answers SELECT of the SmartCard-HSM AID with 9000 when it plays
// an HSM, and GET DATA 00 CA 01 00 with the number of APDUs it has seen,
// which shows that its state survives RemoveCard and InsertCard.
type fakeCard struct {
	mu       sync.Mutex
	atr      []byte
	hsm      bool
	count    byte
	powerUps byte
}

func (c *fakeCard) ATR() []byte { return c.atr }
func (c *fakeCard) PowerOn() {
	c.mu.Lock()
	c.powerUps++
	c.mu.Unlock()
}
func (c *fakeCard) PowerOff() {}
func (c *fakeCard) Reset()    {}

func (c *fakeCard) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count++
	cm, _, err := apdu.ParseCommand(cmd)
	if err != nil {
		return []byte{0x67, 0x00}, nil
	}
	switch {
	case cm.INS == 0xA4 && cm.P1 == 0x04:
		if c.hsm && bytes.Equal(cm.Data, hsmAID) {
			return []byte{0x90, 0x00}, nil
		}
		return []byte{0x6A, 0x82}, nil
	case cm.INS == 0xCA && cm.P1 == 0x01:
		return []byte{c.count, c.powerUps, 0x90, 0x00}, nil
	}
	return []byte{0x6D, 0x00}, nil
}

func runFakeCard(kind string) int {
	card := &fakeCard{hsm: kind == "hsm"}
	atr := otherATR
	if card.hsm {
		atr = picoATR
	}
	card.atr, _ = hex.DecodeString(strings.ReplaceAll(atr, ":", ""))
	addr := os.Getenv(EnvVPCDAddr)
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s := &vpcd.Server{Addr: addr, Card: card, Logf: logf}
	s.HandleSignals(ctx)
	if err := s.Run(ctx); err != nil {
		logf("fake card: %v", err)
		return 1
	}
	return 0
}

// bridge returns the command that runs this test binary as a fake card.
func bridge(t *testing.T, kind string) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, fakeCardArg, kind}
}

// selectHSM is the probe a caller of pcsc.Choose uses.
func selectHSM(c *pcsc.Card) bool {
	ch := apdu.Channel{T: c}
	_, err := ch.Do(apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x0C, Data: hsmAID, Name: "SELECT"})
	return err == nil
}

func establish(t *testing.T) *pcsc.Context {
	t.Helper()
	ctx, err := pcsc.Establish()
	if err != nil {
		t.Fatalf("Establish: %v", err)
	}
	t.Cleanup(func() { ctx.Release() })
	return ctx
}

// TestOpenSCSeesTheCard proves the stack end to end with OpenSC's tools:
// pcscd in its namespace, vpcd, the bridge, and the socket override.
func TestOpenSCSeesTheCard(t *testing.T) {
	b := Start(t, bridge(t, "hsm"))

	out, err := b.Run("opensc-tool", "-l")
	if err != nil {
		t.Fatalf("opensc-tool -l: %v\n%s", err, out)
	}
	t.Logf("opensc-tool -l:\n%s", out)
	if !strings.Contains(out, ReaderName) || !strings.Contains(out, Reader2Name) {
		t.Errorf("opensc-tool -l does not list the vpcd readers:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, ReaderName) && !strings.Contains(line, "Yes") {
			t.Errorf("opensc-tool -l shows no card in %s: %q", ReaderName, line)
		}
	}

	out, err = b.Run("opensc-tool", "--reader", "0", "-an")
	if err != nil {
		t.Fatalf("opensc-tool -an: %v\n%s", err, out)
	}
	t.Logf("opensc-tool -an:\n%s", out)
	if !strings.Contains(strings.ToUpper(out), picoATR) {
		t.Errorf("opensc-tool -an does not print the Pico HSM ATR %s:\n%s", picoATR, out)
	}
}

func TestPCSCThroughRealPCSCD(t *testing.T) {
	Start(t, bridge(t, "hsm"))
	ctx := establish(t)

	readers, err := ctx.Readers()
	if err != nil {
		t.Fatal(err)
	}
	if len(readers) != 2 || readers[0].Name != ReaderName || !readers[0].CardPresent || readers[1].CardPresent {
		t.Fatalf("Readers = %+v, want %s with a card and an empty %s", readers, ReaderName, Reader2Name)
	}
	if got := hexATR(readers[0].ATR); got != picoATR {
		t.Errorf("reader ATR %s, want %s", got, picoATR)
	}

	for _, spec := range []string{"", "0", "virtual pcd 00 00", "PCD"} {
		t.Run(fmt.Sprintf("spec %q", spec), func(t *testing.T) {
			card, name, err := pcsc.Choose(ctx, spec, 0, selectHSM)
			if err != nil {
				t.Fatalf("Choose: %v", err)
			}
			defer card.Close()
			if name != ReaderName {
				t.Errorf("reader %q, want %q", name, ReaderName)
			}
			if got := hexATR(card.ATR()); got != picoATR {
				t.Errorf("card ATR %s, want %s", got, picoATR)
			}
			if err := card.Begin(); err != nil {
				t.Fatalf("Begin: %v", err)
			}
			rsp, err := card.Transmit([]byte{0x00, 0xCA, 0x01, 0x00, 0x00})
			if err != nil || len(rsp) != 4 || rsp[2] != 0x90 {
				t.Errorf("GET DATA = % X, %v", rsp, err)
			}
			if err := card.End(); err != nil {
				t.Errorf("End: %v", err)
			}
			if err := card.Reconnect(true); err != nil {
				t.Errorf("Reconnect(reset): %v", err)
			}
			if !selectHSM(card) {
				t.Error("SELECT after reset failed")
			}
		})
	}
}

func TestErrorsThroughRealPCSCD(t *testing.T) {
	b := Start(t, bridge(t, "hsm"))
	ctx := establish(t)

	t.Run("unknown reader spec", func(t *testing.T) {
		for _, spec := range []string{"nitrokey", "7"} {
			_, _, err := pcsc.Choose(ctx, spec, 0, selectHSM)
			if !errors.Is(err, pcsc.ErrReaderNotFound) {
				t.Fatalf("Choose(%q) = %v, want ErrReaderNotFound", spec, err)
			}
			if !strings.Contains(err.Error(), ReaderName) {
				t.Errorf("message %q does not list the readers", err)
			}
			t.Logf("Choose(%q): %v", spec, err)
		}
	})

	t.Run("empty reader", func(t *testing.T) {
		_, _, err := pcsc.Choose(ctx, "1", 0, selectHSM)
		if !errors.Is(err, pcsc.ErrNoCard) {
			t.Fatalf("Choose(1) = %v, want ErrNoCard", err)
		}
		t.Logf("Choose(1): %v", err)
		if _, err := ctx.Connect(Reader2Name); !errors.Is(err, pcsc.ErrNoCard) {
			t.Errorf("Connect(%s) = %v, want ErrNoCard", Reader2Name, err)
		}
	})

	t.Run("card removed and inserted", func(t *testing.T) {
		card, err := ctx.Connect(ReaderName)
		if err != nil {
			t.Fatal(err)
		}
		defer card.Close()
		before, err := card.Transmit([]byte{0x00, 0xCA, 0x01, 0x00, 0x00})
		if err != nil {
			t.Fatal(err)
		}

		b.RemoveCard()
		_, err = card.Transmit([]byte{0x00, 0xCA, 0x01, 0x00, 0x00})
		if !errors.Is(err, pcsc.ErrCardRemoved) {
			t.Fatalf("Transmit after removal = %v, want ErrCardRemoved", err)
		}
		t.Logf("Transmit after removal: %v", err)
		if _, err := ctx.Connect(ReaderName); !errors.Is(err, pcsc.ErrNoCard) {
			t.Errorf("Connect after removal = %v, want ErrNoCard", err)
		}
		_, _, err = pcsc.Choose(ctx, "", 0, selectHSM)
		if !errors.Is(err, pcsc.ErrNoCard) {
			t.Errorf("Choose after removal = %v, want ErrNoCard", err)
		}
		t.Logf("Choose after removal: %v", err)

		// Choose waits for the card to come back.
		go func() {
			time.Sleep(300 * time.Millisecond)
			b.InsertCard()
		}()
		start := time.Now()
		card2, _, err := pcsc.Choose(ctx, "", 8*time.Second, selectHSM)
		if err != nil {
			t.Fatalf("Choose with wait: %v", err)
		}
		defer card2.Close()
		t.Logf("Choose waited %s for the card", time.Since(start).Round(time.Millisecond))
		after, err := card2.Transmit([]byte{0x00, 0xCA, 0x01, 0x00, 0x00})
		if err != nil {
			t.Fatal(err)
		}
		// The APDU count went on, and the card was powered up again.
		if after[0] <= before[0] || after[1] <= before[1] {
			t.Errorf("state before % X, after % X: the card did not keep its state across remove/insert", before, after)
		}
	})

	t.Run("wait times out", func(t *testing.T) {
		start := time.Now()
		_, _, err := pcsc.Choose(ctx, "1", 500*time.Millisecond, selectHSM)
		if !errors.Is(err, pcsc.ErrNoCard) || !strings.Contains(err.Error(), "gave up after waiting") {
			t.Errorf("Choose = %v, want ErrNoCard after waiting", err)
		}
		if d := time.Since(start); d < 450*time.Millisecond || d > 3*time.Second {
			t.Errorf("Choose returned after %s, want about 500ms", d)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		go func() {
			time.Sleep(200 * time.Millisecond)
			ctx.Cancel()
		}()
		_, _, err := pcsc.Choose(ctx, "1", 10*time.Second, selectHSM)
		if !errors.Is(err, pcsc.ErrCancelled) {
			t.Errorf("Choose = %v, want ErrCancelled", err)
		}
	})

	t.Run("pcscd down", func(t *testing.T) {
		card, err := ctx.Connect(ReaderName)
		if err != nil {
			t.Fatal(err)
		}
		defer card.Close()
		b.StopPCSCD()
		_, err = card.Transmit([]byte{0x00, 0xCA, 0x01, 0x00, 0x00})
		if !errors.Is(err, pcsc.ErrNoService) {
			t.Errorf("Transmit after pcscd stopped = %v, want ErrNoService", err)
		}
		t.Logf("Transmit: %v", err)
		_, err = pcsc.Establish()
		if !errors.Is(err, pcsc.ErrNoService) {
			t.Fatalf("Establish = %v, want ErrNoService", err)
		}
		t.Logf("Establish: %v", err)
		if _, err := ctx.Readers(); !errors.Is(err, pcsc.ErrNoService) {
			t.Errorf("Readers on an old context = %v, want ErrNoService", err)
		}
		out, _ := b.Run("opensc-tool", "-l")
		t.Logf("opensc-tool -l without pcscd: %s", strings.TrimSpace(out))
	})
}

// TestSharing uses two contexts, as two programs would: a transaction
// holds the other off, and a reset by the other is reported and recovered.
func TestSharing(t *testing.T) {
	Start(t, bridge(t, "hsm"))
	ctx1, ctx2 := establish(t), establish(t)
	card1, err := ctx1.Connect(ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer card1.Close()
	card2, err := ctx2.Connect(ReaderName)
	if err != nil {
		t.Fatal(err)
	}
	defer card2.Close()
	getData := []byte{0x00, 0xCA, 0x01, 0x00, 0x00}

	t.Run("transaction", func(t *testing.T) {
		if err := card1.Begin(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := card2.Transmit(getData)
			done <- err
		}()
		select {
		case err := <-done:
			t.Fatalf("the other program got through during the transaction (err %v)", err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := card1.End(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Transmit after End: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the other program is still blocked after End")
		}
	})

	t.Run("reset by another program", func(t *testing.T) {
		if err := card2.Reconnect(true); err != nil {
			t.Fatal(err)
		}
		_, err := card1.Transmit(getData)
		if !errors.Is(err, pcsc.ErrCardRemoved) {
			t.Fatalf("Transmit after a reset by another program = %v, want ErrCardRemoved", err)
		}
		t.Logf("Transmit after reset: %v", err)
		if err := card1.Reconnect(false); err != nil {
			t.Fatalf("Reconnect: %v", err)
		}
		if _, err := card1.Transmit(getData); err != nil {
			t.Fatalf("Transmit after Reconnect: %v", err)
		}
	})
}

func TestNotSmartCardHSM(t *testing.T) {
	Start(t, bridge(t, "other"))
	ctx := establish(t)
	for _, spec := range []string{"", "0"} {
		_, _, err := pcsc.Choose(ctx, spec, 0, selectHSM)
		if !errors.Is(err, pcsc.ErrNotSmartCardHSM) {
			t.Fatalf("Choose(%q) = %v, want ErrNotSmartCardHSM", spec, err)
		}
		t.Logf("Choose(%q): %v", spec, err)
	}
	// Without a probe any card will do.
	card, _, err := pcsc.Choose(ctx, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	if got := hexATR(card.ATR()); got != otherATR {
		t.Errorf("ATR %s, want %s", got, otherATR)
	}
}

func TestNoBridge(t *testing.T) {
	b := Start(t, nil)
	ctx := establish(t)
	_, _, err := pcsc.Choose(ctx, "", 0, selectHSM)
	if !errors.Is(err, pcsc.ErrNoCard) {
		t.Fatalf("Choose = %v, want ErrNoCard", err)
	}
	t.Logf("Choose: %v", err)
	if !strings.Contains(b.PCSCDLog(), "Virtual PCD") {
		t.Error("pcscd log does not mention the vpcd reader")
	}
}

// TestBedsInSequence checks that a second bed in the same process is
// reachable through the PCSCLITE_CSOCK_NAME libpcsclite cached for the
// first.
func TestBedsInSequence(t *testing.T) {
	for i := range 2 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			Start(t, nil)
			ctx := establish(t)
			rs, err := ctx.Readers()
			if err != nil || len(rs) == 0 || rs[0].Name != ReaderName {
				t.Fatalf("Readers = %+v, %v", rs, err)
			}
		})
	}
}

func TestUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		require string
		skipped bool
		failed  bool
	}{
		{"skip by default", "", true, false},
		{"fail when required", "require", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvE2E, tc.require)
			rec := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				unavailable(rec, "pcscd missing")
			}()
			<-done
			if rec.skipped != tc.skipped || rec.failed != tc.failed {
				t.Errorf("skipped=%v failed=%v, want %v %v", rec.skipped, rec.failed, tc.skipped, tc.failed)
			}
			if tc.skipped && !strings.HasPrefix(rec.msg, "E2E SKIPPED: pcscd missing") {
				t.Errorf("skip message %q", rec.msg)
			}
		})
	}
}

// recorder captures Skip and Fatal; both end the goroutine like the real
// ones do.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper()       {}
func (r *recorder) Name() string  { return "recorder" }
func (r *recorder) Skip(a ...any) { r.skipped = true; r.msg = fmt.Sprint(a...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(f, a...)
	runtime.Goexit()
}

func hexATR(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// TestRestartPCSCD stops and restarts pcscd, which brings the bridge back
// in the new pcscd's namespace, and stops and restarts the bridge alone:
// each time the card is there again and answers.
func TestRestartPCSCD(t *testing.T) {
	b := Start(t, bridge(t, "hsm"))
	answers := func(when string) {
		t.Helper()
		ctx := establish(t)
		card, err := ctx.Connect(ReaderName)
		if err != nil {
			t.Fatalf("%s: Connect: %v", when, err)
		}
		defer card.Close()
		if !selectHSM(card) {
			t.Fatalf("%s: the card does not answer SELECT", when)
		}
	}
	b.StopPCSCD()
	b.RestartPCSCD()
	answers("after RestartPCSCD")
	b.StopBridge()
	ctx := establish(t)
	if rs, err := ctx.Readers(); err != nil || len(rs) == 0 || rs[0].CardPresent {
		t.Fatalf("after StopBridge: readers %+v, %v", rs, err)
	}
	b.InsertCard()
	answers("after InsertCard")
}
