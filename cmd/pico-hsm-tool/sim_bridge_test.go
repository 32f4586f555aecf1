//go:build unix

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestSimBridgeFirmwareHangs runs "sim bridge" against a stand-in for
// vpcd's side of the socket (internal/vpcd documents the wire format), with
// and without --firmware-hangs. CHANGE PIN on a factory-new device hangs
// the firmware (issue 9 section 6): with the switch the bridge answers
// nothing, as the firmware does, until SIGHUP power-cycles the device and
// takes it out of the reader and back; without it the simulator answers
// with a status word instead (6A88, referenced data not found). The
// other hazard, a 1-byte APDU, cannot reach a card through vpcd: a 1-byte
// message is one of vpcd's control codes.
func TestSimBridgeFirmwareHangs(t *testing.T) {
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	selectApp := []byte{0x00, 0xA4, 0x04, 0x00, 0x0B, 0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01, 0x00}
	changePIN := []byte{0x00, 0x24, 0x00, 0x81, 0x0C, '6', '4', '8', '2', '1', '9', '1', '2', '3', '4', '5', '6'}

	for _, hangs := range []bool{false, true} {
		name := "switch off"
		if hangs {
			name = "switch on"
		}
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			args := []string{"sim", "bridge", "--addr", ln.Addr().String()}
			if hangs {
				args = append(args, "--firmware-hangs")
			}
			bridge := exec.Command(bin, append(args, filepath.Join(t.TempDir(), "dev.json"))...)
			var stderr bytes.Buffer
			bridge.Stderr = &stderr
			if err := bridge.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				bridge.Process.Signal(os.Interrupt)
				if err := bridge.Wait(); err != nil {
					t.Errorf("bridge: %v\n%s", err, stderr.String())
				}
			}()

			conn := acceptVPCD(t, ln)
			exchangeVPCD(t, conn, selectApp, wantSW(0x9000))
			if !hangs {
				exchangeVPCD(t, conn, changePIN, wantSW(0x6A88))
				return
			}
			writeVPCD(t, conn, changePIN)
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var b [1]byte
			if n, err := conn.Read(b[:]); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("CHANGE PIN on a factory-new device: vpcd read %d bytes (%v), want no answer", n, err)
			}
			// The device still powers up and tells its ATR, but answers
			// no APDU.
			exchangeVPCD(t, conn, []byte{0x04}, func(r []byte) bool { return len(r) > 2 && r[0] == 0x3B })
			writeVPCD(t, conn, selectApp)
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			if n, err := conn.Read(b[:]); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("SELECT after the hang: vpcd read %d bytes (%v), want no answer", n, err)
			}

			// SIGHUP: unplugged and plugged in again. vpcd sees the card
			// leave, then a new card that answers.
			if err := bridge.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := conn.Read(b[:]); n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("after SIGHUP vpcd read %d bytes (%v), want the connection closed", n, err)
			}
			conn = acceptVPCD(t, ln)
			exchangeVPCD(t, conn, selectApp, wantSW(0x9000))
		})
	}
}

func acceptVPCD(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("the bridge did not connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeVPCD(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)); err != nil {
		t.Fatal(err)
	}
}

// exchangeVPCD sends msg and checks the answer with ok.
func exchangeVPCD(t *testing.T, c net.Conn, msg []byte, ok func([]byte) bool) {
	t.Helper()
	writeVPCD(t, c, msg)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatalf("answer to % X: %v", msg, err)
	}
	r := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	if _, err := io.ReadFull(c, r); err != nil {
		t.Fatalf("answer to % X: %v", msg, err)
	}
	if !ok(r) {
		t.Fatalf("answer to % X: % X", msg, r)
	}
}

func wantSW(sw uint16) func([]byte) bool {
	return func(r []byte) bool {
		return len(r) >= 2 && binary.BigEndian.Uint16(r[len(r)-2:]) == sw
	}
}
