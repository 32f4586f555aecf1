package vpcd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

var testATR = []byte{0x3B, 0xFE, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x31, 0x81, 0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0xFA}

// fakeCard records control events and echoes APDUs behind 9000.
type fakeCard struct {
	mu     sync.Mutex
	events []string
	fail   bool
	huge   bool
	// hangOn makes Transmit return ErrNoAnswer for APDUs of this INS.
	hangOn byte
}

func (c *fakeCard) record(e string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

func (c *fakeCard) Events() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.events...)
}

func (c *fakeCard) ATR() []byte { c.record("atr"); return testATR }
func (c *fakeCard) PowerOn()    { c.record("on") }
func (c *fakeCard) PowerOff()   { c.record("off") }
func (c *fakeCard) Reset()      { c.record("reset") }
func (c *fakeCard) Transmit(cmd []byte) ([]byte, error) {
	c.record("apdu")
	switch {
	case c.fail:
		return nil, errors.New("simulated failure")
	case c.hangOn != 0 && len(cmd) >= 2 && cmd[1] == c.hangOn:
		return nil, fmt.Errorf("%w: the firmware hangs", ErrNoAnswer)
	case c.huge:
		return make([]byte, maxMessage+1), nil
	}
	return append(append([]byte(nil), cmd...), 0x90, 0x00), nil
}

// fakeVPCD plays vpcd's side of the socket.
type fakeVPCD struct {
	t  *testing.T
	ln net.Listener
}

func newFakeVPCD(t *testing.T) *fakeVPCD {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &fakeVPCD{t: t, ln: ln}
}

func (f *fakeVPCD) addr() string { return f.ln.Addr().String() }

func (f *fakeVPCD) accept() net.Conn {
	f.t.Helper()
	f.ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := f.ln.Accept()
	if err != nil {
		f.t.Fatalf("accept: %v", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	f.t.Cleanup(func() { c.Close() })
	return c
}

func frame(msg []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	return append(b, msg...)
}

func send(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	if _, err := c.Write(frame(msg)); err != nil {
		t.Fatalf("send: %v", err)
	}
}

func recv(t *testing.T, c net.Conn) []byte {
	t.Helper()
	msg, err := readMessage(c)
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	return msg
}

// startServe runs Serve in the background and returns a channel with its
// result.
func startServe(ctx context.Context, addr string, card Card, t *testing.T) <-chan error {
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, addr, card, t.Logf) }()
	return done
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestServeControlAndAPDU(t *testing.T) {
	tests := []struct {
		name   string
		msg    []byte
		answer []byte // nil: no answer expected
		event  string
	}{
		{"power on", []byte{CtrlPowerOn}, nil, "on"},
		{"get atr", []byte{CtrlATR}, testATR, "atr"},
		{"reset", []byte{CtrlReset}, nil, "reset"},
		{"power off", []byte{CtrlPowerOff}, nil, "off"},
		{"unknown control", []byte{0x07}, nil, ""},
		{"select apdu", []byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0xE8, 0x2B}, []byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0xE8, 0x2B, 0x90, 0x00}, "apdu"},
		{"short message is an apdu", []byte{0x00, 0xA4}, []byte{0x00, 0xA4, 0x90, 0x00}, "apdu"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vp := newFakeVPCD(t)
			card := &fakeCard{}
			ctx, cancel := context.WithCancel(context.Background())
			done := startServe(ctx, vp.addr(), card, t)
			conn := vp.accept()

			send(t, conn, tc.msg)
			if tc.answer != nil {
				if got := recv(t, conn); !bytes.Equal(got, tc.answer) {
					t.Errorf("answer % X, want % X", got, tc.answer)
				}
			}
			// A following ATR request must get the ATR as the very
			// next message: proves no stray answer was sent.
			send(t, conn, []byte{CtrlATR})
			if got := recv(t, conn); !bytes.Equal(got, testATR) {
				t.Errorf("next answer % X, want the ATR", got)
			}
			ev := card.Events()
			if tc.event != "" && (len(ev) == 0 || ev[0] != tc.event) {
				t.Errorf("events %v, want %q first", ev, tc.event)
			}
			cancel()
			if err := waitErr(t, done); err != nil {
				t.Errorf("Serve after cancel = %v, want nil", err)
			}
			// vpcd sees the close as card removal.
			if _, err := readMessage(conn); !errors.Is(err, ErrClosed) {
				t.Errorf("vpcd side after cancel: %v, want a clean close", err)
			}
		})
	}
}

func TestServeCardErrors(t *testing.T) {
	tests := []struct {
		name string
		card *fakeCard
	}{
		{"transmit error", &fakeCard{fail: true}},
		{"response too large", &fakeCard{huge: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vp := newFakeVPCD(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := startServe(ctx, vp.addr(), tc.card, t)
			conn := vp.accept()
			send(t, conn, []byte{0x00, 0xCA, 0x01, 0x00, 0x00})
			if got := recv(t, conn); !bytes.Equal(got, []byte{0x6F, 0x00}) {
				t.Errorf("answer % X, want 6F 00", got)
			}
			cancel()
			waitErr(t, done)
		})
	}
}

// TestServeNoAnswer checks that an APDU the card hangs on gets no answer
// at all, as from the firmware (issue 9 section 6): the next message vpcd
// reads is the answer to its next request, and the card goes on answering.
func TestServeNoAnswer(t *testing.T) {
	vp := newFakeVPCD(t)
	card := &fakeCard{hangOn: 0x24}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startServe(ctx, vp.addr(), card, t)
	conn := vp.accept()

	send(t, conn, []byte{0x00, 0x24, 0x00, 0x81, 0x02, 0x31, 0x32})
	// Nothing arrives while vpcd waits for the answer.
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var b [1]byte
	if n, err := conn.Read(b[:]); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("vpcd read %d bytes (%v) after the APDU the card hangs on, want nothing", n, err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	send(t, conn, []byte{CtrlATR})
	if got := recv(t, conn); !bytes.Equal(got, testATR) {
		t.Errorf("answer to the next ATR request % X, want the ATR", got)
	}
	apdu := []byte{0x00, 0xA4, 0x04, 0x00, 0x02, 0xE8, 0x2B}
	send(t, conn, apdu)
	want := append(append([]byte(nil), apdu...), 0x90, 0x00)
	if got := recv(t, conn); !bytes.Equal(got, want) {
		t.Errorf("answer to the next APDU % X, want % X", got, want)
	}
	if ev := card.Events(); len(ev) != 3 || ev[0] != "apdu" {
		t.Errorf("events %v, want apdu, atr, apdu", ev)
	}
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// TestServePartialWrites sends vpcd's messages one byte per segment, and a
// length prefix split from its payload, as TCP may deliver them.
func TestServePartialWrites(t *testing.T) {
	vp := newFakeVPCD(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startServe(ctx, vp.addr(), &fakeCard{}, t)
	conn := vp.accept()
	conn.(*net.TCPConn).SetNoDelay(true)

	apdu := []byte{0x00, 0xA4, 0x04, 0x0C, 0x03, 0x01, 0x02, 0x03}
	raw := append(frame([]byte{CtrlATR}), frame(apdu)...)
	for _, b := range raw {
		if _, err := conn.Write([]byte{b}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if got := recv(t, conn); !bytes.Equal(got, testATR) {
		t.Errorf("first answer % X, want the ATR", got)
	}
	want := append(append([]byte(nil), apdu...), 0x90, 0x00)
	if got := recv(t, conn); !bytes.Equal(got, want) {
		t.Errorf("second answer % X, want % X", got, want)
	}
	cancel()
	waitErr(t, done)
}

func TestServeMalformed(t *testing.T) {
	tests := []struct {
		name    string
		raw     []byte // written by vpcd before it closes
		wantErr string
		clean   bool
	}{
		{"clean close", nil, "", true},
		{"close inside length", []byte{0x00}, "inside a length prefix", false},
		{"length longer than data", []byte{0x00, 0x0A, 0x00, 0xA4, 0x04}, "inside a 10-byte message", false},
		{"close after full message", append(frame([]byte{CtrlPowerOn}), 0x00), "inside a length prefix", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vp := newFakeVPCD(t)
			done := startServe(context.Background(), vp.addr(), &fakeCard{}, t)
			conn := vp.accept()
			if len(tc.raw) > 0 {
				conn.Write(tc.raw)
			}
			conn.Close()
			err := waitErr(t, done)
			switch {
			case tc.clean:
				if !errors.Is(err, ErrClosed) {
					t.Errorf("Serve = %v, want ErrClosed", err)
				}
			case err == nil || !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("Serve = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadWriteMessage(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr string
	}{
		{"control", []byte{0x00, 0x01, 0x04}, []byte{0x04}, ""},
		{"empty", []byte{0x00, 0x00}, []byte{}, ""},
		{"apdu", []byte{0x00, 0x04, 0x00, 0xA4, 0x04, 0x00}, []byte{0x00, 0xA4, 0x04, 0x00}, ""},
		{"eof", nil, nil, ErrClosed.Error()},
		{"half length", []byte{0x01}, nil, "length prefix"},
		{"truncated body", []byte{0x00, 0x03, 0xAA}, nil, "3-byte message"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per Read: the reader must not assume whole
			// messages arrive at once.
			got, err := readMessage(iotest.OneByteReader(bytes.NewReader(tc.in)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readMessage = %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("readMessage = % X, %v; want % X", got, err, tc.want)
			}
			var buf bytes.Buffer
			if err := writeMessage(&buf, got); err != nil || !bytes.Equal(buf.Bytes(), tc.in) {
				t.Fatalf("writeMessage = % X, %v; want % X", buf.Bytes(), err, tc.in)
			}
		})
	}
	if err := writeMessage(io.Discard, make([]byte, maxMessage+1)); err == nil {
		t.Error("writeMessage accepted a message longer than 65535 bytes")
	}
}

// TestServeWaitsForVPCD starts Serve before anything listens, as happens
// while pcscd is still loading the vpcd driver.
func TestServeWaitsForVPCD(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := startServe(ctx, addr, &fakeCard{}, t)
	time.Sleep(3 * retryInterval)

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", addr, err)
	}
	vp := &fakeVPCD{t: t, ln: ln}
	t.Cleanup(func() { ln.Close() })
	conn := vp.accept()
	send(t, conn, []byte{CtrlATR})
	if got := recv(t, conn); !bytes.Equal(got, testATR) {
		t.Errorf("answer % X, want the ATR", got)
	}
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestServeCancelWhileDialing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*retryInterval)
	defer cancel()
	if err := Serve(ctx, addr, &fakeCard{}, t.Logf); err != nil {
		t.Errorf("Serve = %v, want nil after ctx ends", err)
	}
}

func TestServerRemoveInsert(t *testing.T) {
	vp := newFakeVPCD(t)
	card := &fakeCard{}
	s := &Server{Addr: vp.addr(), Card: card, Logf: t.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	conn := vp.accept()
	send(t, conn, []byte{CtrlATR})
	recv(t, conn)

	s.Remove()
	if s.Inserted() {
		t.Error("Inserted after Remove")
	}
	if _, err := readMessage(conn); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Remove vpcd read %v, want a clean close", err)
	}
	// Nothing reconnects while the card is out.
	vp.ln.(*net.TCPListener).SetDeadline(time.Now().Add(4 * retryInterval))
	if c, err := vp.ln.Accept(); err == nil {
		c.Close()
		t.Fatal("the server reconnected while the card was removed")
	}

	s.Insert()
	conn = vp.accept()
	send(t, conn, []byte{CtrlATR})
	if got := recv(t, conn); !bytes.Equal(got, testATR) {
		t.Errorf("after Insert answer % X, want the ATR", got)
	}

	// A drop by vpcd (pcscd restart) is followed by a reconnect.
	conn.Close()
	conn = vp.accept()
	send(t, conn, []byte{CtrlATR})
	recv(t, conn)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}
