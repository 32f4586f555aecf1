// Package transcript reads the APDU transcripts recorded from the real Pico
// HSM firmware (testdata/pico-hsm/transcripts, copied from
// ../shared/pico-hsm). Tests replay them against the simulated device and
// compare the answers byte for byte.
//
// A transcript entry looks like this:
//
//	[3] SELECT by AID SmartCard-HSM / Pico HSM application   (OpenSC: ..., 51 ms)
//	    ; FCP template returned
//	  C: (17 bytes)
//	    00 A4 04 00 0B E8 2B 06 01 04 01 81 C3 1F 02 01 00
//	  R: (38 bytes) SW=9000 OK
//	    62 22 81 02 ...
package transcript

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exchange is one command APDU and the response the firmware gave. A
// Response without bytes ("R: (0 bytes) SW=none") means the firmware never
// answered: it hung (transcripts/differential/fw-p1.txt [117]).
type Exchange struct {
	N        int
	Title    string
	Command  []byte
	Response []byte
}

// ReadFile parses the transcript at path.
func ReadFile(path string) ([]Exchange, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads exchanges until the "# ---- tool stdout" trailer.
func Parse(r io.Reader) ([]Exchange, error) {
	var out []Exchange
	var cur *Exchange
	var into *[]byte
	sc := bufio.NewScanner(r)
	// Lines up to 1 MiB; the buffer grows only as far as a line needs.
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := sc.Text()
		t := strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(t, "# ----"):
			return out, nil
		case strings.HasPrefix(t, "#"), t == "", strings.HasPrefix(t, ";"):
			into = nil
		case strings.HasPrefix(t, "["):
			end := strings.Index(t, "]")
			if end < 0 {
				return nil, fmt.Errorf("line %d: bad entry header", line)
			}
			var n int
			fmt.Sscanf(t[1:end], "%d", &n)
			out = append(out, Exchange{N: n, Title: strings.TrimSpace(t[end+1:])})
			cur, into = &out[len(out)-1], nil
		case strings.HasPrefix(t, "C:"):
			if cur == nil {
				return nil, fmt.Errorf("line %d: command outside an entry", line)
			}
			into = &cur.Command
		case strings.HasPrefix(t, "R:"):
			if cur == nil {
				return nil, fmt.Errorf("line %d: response outside an entry", line)
			}
			into = &cur.Response
		case into != nil:
			b, err := hex.DecodeString(strings.ReplaceAll(t, " ", ""))
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", line, err)
			}
			*into = append(*into, b...)
		}
	}
	return out, sc.Err()
}
