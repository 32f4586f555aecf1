//go:build linux

package secret

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the controlling and the terminal side of a new
// pseudo-terminal.
func openPTY(t *testing.T) (ctrl, tty *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	ctrl = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close(); ctrl.Close() })
	return ctrl, tty
}

// readPassword reads the line typed without echoing it, and gives the
// terminal its echo back.
func TestReadPasswordNoEcho(t *testing.T) {
	ctrl, tty := openPTY(t)
	const typed = "typed-Secret-4711"
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result)
	go func() {
		b, err := readPassword(tty, "")
		done <- result{b, err}
	}()
	// Type only once echo is off, as a person would at the prompt.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err == nil && st.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("echo never turned off")
		}
	}
	if _, err := ctrl.Write([]byte(typed + "\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || string(r.b) != typed {
		t.Fatalf("%q %v", r.b, r.err)
	}
	st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil || st.Lflag&unix.ECHO == 0 {
		t.Fatalf("echo not restored: %v", err)
	}
	// What the terminal showed up to a marker written after the read.
	tty.Write([]byte("MARKER\n"))
	shown, err := bufio.NewReader(ctrl).ReadString('R')
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(shown, typed) {
		t.Errorf("the secret was echoed: %q", shown)
	}
}

// TestPromptAfterEchoOff: the prompt shows only once echo is off, so a
// secret typed (or pasted) the moment the prompt appears is never echoed.
// A prompt printed before echo was turned off left a window in which it
// was.
func TestPromptAfterEchoOff(t *testing.T) {
	ctrl, tty := openPTY(t)
	const prompt, typed = "Enter user PIN: ", "typed-ahead-4711"
	// The terminal's echo flag at the moment the prompt is written.
	echoAtPrompt := make(chan bool, 1)
	orig := showPrompt
	t.Cleanup(func() { showPrompt = orig })
	showPrompt = func(f *os.File, p string) error {
		st, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		echoAtPrompt <- err != nil || st.Lflag&unix.ECHO != 0
		return orig(f, p)
	}
	done := make(chan error, 1)
	go func() {
		b, err := readPassword(tty, prompt)
		if err == nil && string(b) != typed {
			err = fmt.Errorf("read %q", b)
		}
		done <- err
	}()
	// Wait for the prompt as a person would see it, then type at once.
	r := bufio.NewReader(ctrl)
	var shown strings.Builder
	for !strings.HasSuffix(shown.String(), prompt) {
		c, err := r.ReadByte()
		if err != nil {
			t.Fatal(err)
		}
		shown.WriteByte(c)
	}
	if <-echoAtPrompt {
		t.Fatal("the prompt was shown while echo was still on: a secret typed ahead would be echoed")
	}
	if _, err := ctrl.Write([]byte(typed + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	tty.Write([]byte("MARKER\n"))
	rest, err := r.ReadString('R')
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rest, typed) {
		t.Errorf("the secret was echoed: %q", rest)
	}
}
