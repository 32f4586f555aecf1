package apdu

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncode(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 300)
	tests := []struct {
		name string
		c    Command
		want string
	}{
		// Byte strings from ../shared/pico-hsm/transcripts (SELECT, VERIFY query,
		// DKEK status, LIST KEYS) and ISO 7816-4 section 5.1 for the rest.
		{"case1", Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x88}, "00200088"},
		{"case2 short 256", Command{CLA: 0x80, INS: 0x52, Ne: 256}, "8052000000"},
		{"case3 short", Command{INS: 0x20, P2: 0x81, Data: []byte("648219")}, "002000810636343832313" + "9"},
		{"case4 short", Command{INS: 0xA4, P1: 0x04, Data: unhex(t, "E82B0601040181C31F0201"), Ne: 256}, "00A404000BE82B0601040181C31F020100"},
		{"case2 extended 65536", Command{CLA: 0x80, INS: 0x58, Ne: 65536}, "80580000000000"},
		{"case2 extended 300", Command{INS: 0xB1, Ne: 300}, "00B1000000012C"},
		{"case3 extended", Command{INS: 0xD7, Data: long}, "00D70000" + "00012C" + strings.Repeat("AB", 300)},
		{"case4 extended by Ne", Command{INS: 0x46, P1: 1, Data: []byte{1, 2}, Ne: 65536}, "00460100" + "000002" + "0102" + "0000"},
		{"case4 extended by Nc", Command{INS: 0x46, Data: long, Ne: 10}, "00460000" + "00012C" + strings.Repeat("AB", 300) + "000A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("Encode = % X\nwant     % X", got, want)
			}
			// Round trip through the parser the simulator uses.
			back, ext, err := ParseCommand(got)
			if err != nil {
				t.Fatal(err)
			}
			if ext != tt.c.Extended() || back.INS != tt.c.INS || back.P1 != tt.c.P1 || back.P2 != tt.c.P2 ||
				!bytes.Equal(back.Data, tt.c.Data) || back.Ne != tt.c.Ne {
				t.Fatalf("ParseCommand = %+v ext=%v, want %+v", back, ext, tt.c)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, c := range []Command{
		{Data: make([]byte, 65536)},
		{Ne: 65537},
		{Ne: -1},
	} {
		if _, err := c.Encode(); err == nil {
			t.Errorf("Encode(%d data, Ne %d) succeeded", len(c.Data), c.Ne)
		}
	}
}

func TestParseCommandMalformed(t *testing.T) {
	for _, s := range []string{"", "00", "00A404", "00A4040005E82B", "00A40400000005E8", "00A404000000", "00A4040000000001"} {
		if _, _, err := ParseCommand(unhex(t, s)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCommand(%s) err = %v, want ErrMalformed", s, err)
		}
	}
}

func TestStatusErrors(t *testing.T) {
	tests := []struct {
		sw      uint16
		is      error
		retries int
		msg     string
	}{
		{0x63C2, ErrWrongPIN, 2, "wrong PIN, 2 tries left (SW 63C2)"},
		{0x63C1, ErrWrongPIN, 1, "wrong PIN, 1 try left (SW 63C1)"},
		{0x63C0, ErrWrongPIN, 0, "wrong PIN, 0 tries left (SW 63C0)"},
		{0x6983, ErrPINBlocked, -1, "PIN blocked: unblock it with the SO-PIN (SW 6983)"},
		{0x6A82, ErrFileNotFound, -1, "file or key not found (SW 6A82)"},
		{0x6A88, ErrReferenceNotFound, -1, "referenced data not found (SW 6A88)"},
		{0x6986, ErrNotAllowed, -1, "command not allowed in the device's current state (SW 6986)"},
		{0x6400, ErrExecution, -1, ""},
		{0x6B00, ErrWrongParameters, -1, "wrong parameters P1-P2 (SW 6B00)"},
		{0x6982, ErrSecurityStatus, -1, "security status not satisfied: log in with the user PIN first (SW 6982)"},
		{0x6581, ErrMemoryFailure, -1, "device memory failure (SW 6581)"},
		{0x6F00, ErrUnknown, -1, "unknown error in the device (SW 6F00)"},
		{0x6D00, ErrINSNotSupported, -1, ""},
		{0x6A86, ErrWrongP1P2, -1, ""},
		{0x6A80, ErrWrongData, -1, ""},
		{0x6985, ErrConditionsNotMet, -1, ""},
		{0x6984, ErrDataInvalid, -1, ""},
		{0x6A84, ErrFileFull, -1, ""},
		{0x6A89, ErrFileExists, -1, ""},
		{0x6700, ErrWrongLength, -1, ""},
		{0x6E00, ErrCLANotSupported, -1, ""},
		{0x6A81, ErrNotSupported, -1, ""},
		{0x6600, ErrButtonTimeout, -1, ""},
	}
	for _, tt := range tests {
		err := Response{SW: tt.sw}.Err()
		if !errors.Is(err, tt.is) {
			t.Errorf("%04X: errors.Is(%v) false", tt.sw, tt.is)
		}
		if errors.Is(err, ErrFileExists) && tt.is != ErrFileExists {
			t.Errorf("%04X matches an unrelated sentinel", tt.sw)
		}
		if got := Retries(err); got != tt.retries {
			t.Errorf("%04X: Retries = %d, want %d", tt.sw, got, tt.retries)
		}
		if tt.msg != "" && err.Error() != tt.msg {
			t.Errorf("%04X: message %q, want %q", tt.sw, err.Error(), tt.msg)
		}
		if strings.Contains(Describe(tt.sw), "unexpected") {
			t.Errorf("%04X has no human message", tt.sw)
		}
	}
	if (Response{SW: 0x9000}).Err() != nil {
		t.Error("9000 is an error")
	}
}

// script is a Transport that answers from a list and records what it got.
type script struct {
	t    *testing.T
	want []string
	resp []string
}

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	if len(s.want) == 0 {
		s.t.Fatalf("unexpected command % X", cmd)
	}
	if w := unhex(s.t, s.want[0]); !bytes.Equal(cmd, w) {
		s.t.Fatalf("command % X, want % X", cmd, w)
	}
	r := unhex(s.t, s.resp[0])
	s.want, s.resp = s.want[1:], s.resp[1:]
	return r, nil
}

func TestChannelGetResponse(t *testing.T) {
	// READ BINARY of a 418-byte file with Ne=256: the firmware answers 256
	// bytes and 61A2 (transcripts/errors/p01-token-info.txt [22]); the
	// channel fetches the rest with GET RESPONSE.
	first := strings.Repeat("11", 256)
	rest := strings.Repeat("22", 162)
	s := &script{t: t,
		want: []string{"00B1CE0004540200000" + "0", "00C00000A2"},
		resp: []string{first + "61A2", rest + "9000"},
	}
	ch := &Channel{T: s}
	data, err := ch.Do(Command{INS: 0xB1, P1: 0xCE, Data: unhex(t, "54020000"), Ne: 256})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 418 || data[255] != 0x11 || data[256] != 0x22 {
		t.Fatalf("got %d bytes", len(data))
	}
}

func TestChannelWrongLe(t *testing.T) {
	s := &script{t: t,
		want: []string{"00CA010000", "00CA010005"},
		resp: []string{"6C05", "01020304059000"},
	}
	data, err := (&Channel{T: s}).Do(Command{INS: 0xCA, P1: 1, Ne: 256})
	if err != nil || len(data) != 5 {
		t.Fatalf("data %X err %v", data, err)
	}
}

// TestChannelRefusesShortCommands checks the guard against the firmware's
// hazard: bytes shorter than a command header never reach the transport
// (a 1-byte APDU hangs the Pico HSM firmware, issue 9 section 6).
func TestChannelRefusesShortCommands(t *testing.T) {
	for _, raw := range [][]byte{nil, {0x00}, {0x00, 0xA4}, {0x00, 0xA4, 0x04}} {
		s := &script{t: t} // fails on any command
		_, err := (&Channel{T: s}).roundTrip(Command{Name: "TEST"}, raw)
		if !errors.Is(err, ErrShortCommand) || !strings.HasPrefix(err.Error(), "TEST: ") {
			t.Errorf("% X: err = %v, want ErrShortCommand", raw, err)
		}
	}
	// The shortest command Encode makes, case 1, is the header itself.
	s := &script{t: t, want: []string{"00A40400"}, resp: []string{"9000"}}
	if _, err := (&Channel{T: s}).Do(Command{INS: 0xA4, P1: 0x04}); err != nil {
		t.Fatal(err)
	}
}

func TestChannelStatusIsReturned(t *testing.T) {
	s := &script{t: t, want: []string{"0020008106363438323130"}, resp: []string{"63C2"}}
	_, err := (&Channel{T: s}).Do(Command{INS: 0x20, P2: 0x81, Data: []byte("648210"), Secret: true})
	if !errors.Is(err, ErrWrongPIN) || Retries(err) != 2 {
		t.Fatalf("err = %v", err)
	}
}

func TestTraceMasksSecrets(t *testing.T) {
	var trace bytes.Buffer
	s := &script{t: t,
		want: []string{"0020008106363438323139", "8052000020" + strings.Repeat("C9", 32) + "00"},
		resp: []string{"9000", "0302" + strings.Repeat("00", 8) + "9000"},
	}
	ch := &Channel{T: s, Trace: &trace}
	if _, err := ch.Do(Command{INS: 0x20, P2: 0x81, Data: []byte("648219"), Secret: true, Name: "VERIFY"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Do(Command{CLA: 0x80, INS: 0x52, Data: bytes.Repeat([]byte{0xC9}, 32), Ne: 256, Secret: true}); err != nil {
		t.Fatal(err)
	}
	out := trace.String()
	for _, secret := range []string{"36 34 38 32 31 39", "648219", "C9 C9", "C9C9"} {
		if strings.Contains(out, secret) {
			t.Errorf("trace leaks %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "VERIFY: 00 20 00 81 [6 secret bytes masked]") {
		t.Errorf("trace lacks the masked VERIFY line:\n%s", out)
	}
}

func TestParseResponse(t *testing.T) {
	if _, err := ParseResponse([]byte{0x90}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("1-byte response: %v", err)
	}
	r, err := ParseResponse(unhex(t, "0302009000"))
	if err != nil || r.SW != 0x9000 || !bytes.Equal(r.Data, []byte{3, 2, 0}) || !bytes.Equal(r.Bytes(), unhex(t, "0302009000")) {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestTraceMasksShareImport sends IMPORT DKEK SHARE (80 52 00 00 with a
// 32-byte share) to a card that first asks for another Le (6C0A): both
// the first command and the one re-sent with Le 0A must appear in the trace
// as the header and "[32 secret bytes masked]", and no two bytes of the
// share may appear. Guards against masking that covers only the first
// sending, only commands without Le, or only short data such as a PIN
// (TestTraceMasksSecrets checks the VERIFY line alone).
func TestTraceMasksShareImport(t *testing.T) {
	share := unhex(t, "C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077")
	var trace bytes.Buffer
	s := &script{t: t,
		want: []string{"8052000020" + hex.EncodeToString(share) + "00", "8052000020" + hex.EncodeToString(share) + "0A"},
		resp: []string{"6C0A", "0302" + strings.Repeat("00", 8) + "9000"},
	}
	ch := &Channel{T: s, Trace: &trace}
	if _, err := ch.Do(Command{CLA: 0x80, INS: 0x52, Data: share, Ne: 256, Secret: true, Name: "IMPORT DKEK SHARE"}); err != nil {
		t.Fatal(err)
	}
	want := "> IMPORT DKEK SHARE: 80 52 00 00 [32 secret bytes masked] Ne=256\n" +
		"< 6C0A " + Describe(0x6C0A) + "\n" +
		"> IMPORT DKEK SHARE: 80 52 00 00 [32 secret bytes masked] Ne=10\n" +
		"< 03 02 00 00 00 00 00 00 00 00 9000\n"
	if out := trace.String(); out != want {
		t.Errorf("trace:\n%s\nwant:\n%s", out, want)
	}
	for i := 0; i+2 <= len(share); i++ {
		h := strings.ToUpper(hex.EncodeToString(share[i : i+2]))
		if strings.Contains(trace.String(), h[:2]+" "+h[2:]) || strings.Contains(strings.ToUpper(trace.String()), h) {
			t.Fatalf("trace shows share bytes %s at offset %d:\n%s", h, i, trace.String())
		}
	}
}
