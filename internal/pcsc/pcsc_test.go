package pcsc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebfe/scard"
)

// TestMain points libpcsclite at a socket that does not exist before
// anything establishes a context (libpcsclite reads PCSCLITE_CSOCK_NAME
// once per process), so these tests never reach a pcscd running on the
// machine, nor a real Pico HSM. End-to-end tests live in internal/testbed.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pcsc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("PCSCLITE_CSOCK_NAME", filepath.Join(dir, "no-pcscd.comm"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestEstablishWithoutPCSCD(t *testing.T) {
	ctx, err := Establish()
	if err == nil {
		ctx.Release()
		t.Fatal("Establish succeeded without pcscd")
	}
	if !errors.Is(err, ErrNoService) || !errors.Is(err, scard.ErrNoService) {
		t.Fatalf("Establish = %v, want ErrNoService wrapping SCARD_E_NO_SERVICE", err)
	}
	if !strings.Contains(err.Error(), "systemctl start pcscd") {
		t.Errorf("message %q does not say how to start pcscd", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code  scard.Error
		phase phase
		want  error
	}{
		{scard.ErrNoService, phaseContext, ErrNoService},
		{scard.ErrServiceStopped, phaseCard, ErrNoService},
		{scard.ErrNoReadersAvailable, phaseContext, ErrNoReader},
		{scard.ErrUnknownReader, phaseConnect, ErrReaderNotFound},
		{scard.ErrReaderUnavailable, phaseConnect, ErrReaderNotFound},
		{scard.ErrReaderUnavailable, phaseCard, ErrCardRemoved},
		{scard.ErrNoSmartcard, phaseConnect, ErrNoCard},
		{scard.ErrNoSmartcard, phaseCard, ErrCardRemoved},
		{scard.ErrRemovedCard, phaseConnect, ErrNoCard},
		{scard.ErrRemovedCard, phaseCard, ErrCardRemoved},
		{scard.ErrResetCard, phaseCard, ErrCardRemoved},
		{scard.ErrUnresponsiveCard, phaseConnect, ErrCardUnresponsive},
		{scard.ErrUnpoweredCard, phaseCard, ErrCardUnresponsive},
		{scard.ErrSharingViolation, phaseConnect, ErrCardBusy},
		{scard.ErrCancelled, phaseContext, ErrCancelled},
		{scard.ErrTimeout, phaseContext, nil},
		{scard.ErrNotTransacted, phaseCard, nil},
		{scard.ErrInvalidHandle, phaseCard, nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/%d", codeName(tc.code), tc.phase), func(t *testing.T) {
			if got := classify(tc.code, tc.phase); got != tc.want {
				t.Errorf("classify = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   []error
		want []string
	}{
		{
			name: "no card at connect",
			err:  wrap(scard.ErrNoSmartcard, phaseConnect, "connect", "Virtual PCD 00 00"),
			is:   []error{ErrNoCard, scard.ErrNoSmartcard},
			want: []string{"no card in the reader", `connect "Virtual PCD 00 00"`, "SCARD_E_NO_SMARTCARD"},
		},
		{
			name: "removed mid transmit",
			err:  wrap(scard.ErrRemovedCard, phaseCard, "transmit", "Pico HSM"),
			is:   []error{ErrCardRemoved, scard.ErrRemovedCard},
			want: []string{"removed or reset", "SCARD_W_REMOVED_CARD"},
		},
		{
			name: "unmapped code",
			err:  wrap(scard.ErrNotTransacted, phaseCard, "transmit", "r"),
			is:   []error{scard.ErrNotTransacted},
			want: []string{"pcsc transmit", "SCARD_E_NOT_TRANSACTED"},
		},
		{
			name: "not a pcsc error",
			err:  wrap(errors.New("boom"), phaseContext, "list readers", ""),
			want: []string{"pcsc list readers: boom"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range tc.is {
				if !errors.Is(tc.err, target) {
					t.Errorf("errors.Is(%v, %v) = false", tc.err, target)
				}
			}
			msg := tc.err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			if msg != strings.TrimRight(msg, ".") {
				t.Errorf("message %q ends with a period", msg)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	readers := []ReaderInfo{
		{Name: "Virtual PCD 00 00", CardPresent: true},
		{Name: "Virtual PCD 00 01"},
		{Name: "Pol Henarejos Pico Key HSM [CCID Interface] 00 00", CardPresent: true},
	}
	tests := []struct {
		name    string
		readers []ReaderInfo
		spec    string
		want    []string
		wantErr error
		msg     string
	}{
		{name: "empty spec is every reader", readers: readers, spec: "", want: []string{readers[0].Name, readers[1].Name, readers[2].Name}},
		{name: "index", readers: readers, spec: "2", want: []string{readers[2].Name}},
		{name: "index zero", readers: readers, spec: "0", want: []string{readers[0].Name}},
		{name: "index with spaces", readers: readers, spec: " 1 ", want: []string{readers[1].Name}},
		{name: "index out of range", readers: readers, spec: "3", wantErr: ErrReaderNotFound, msg: `there are 3 readers: 0 "Virtual PCD 00 00"`},
		{name: "substring any case", readers: readers, spec: "pico key", want: []string{readers[2].Name}},
		{name: "substring several", readers: readers, spec: "virtual", want: []string{readers[0].Name, readers[1].Name}},
		{name: "substring none", readers: readers, spec: "nitrokey", wantErr: ErrReaderNotFound, msg: `"nitrokey": the readers are 0 "Virtual PCD 00 00", 1 "Virtual PCD 00 01", 2`},
		{name: "digits inside a name are a substring", readers: readers, spec: "00 01", want: []string{readers[1].Name}},
		{name: "index with a leading zero is decimal", readers: readers, spec: "01", want: []string{readers[1].Name}},
		{name: "no readers", readers: nil, spec: "", wantErr: ErrNoReader},
		{name: "no readers with a spec", readers: []ReaderInfo{}, spec: "0", wantErr: ErrNoReader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := candidates(tc.readers, tc.spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("candidates = %v, %v; want %v", got, err, tc.wantErr)
				}
				if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("message %q lacks %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range got {
				names = append(names, r.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tc.want) {
				t.Errorf("candidates = %q, want %q", names, tc.want)
			}
		})
	}
}

func TestIsIndex(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0", true}, {"12", true}, {"", false}, {"1a", false}, {"-1", false}, {"99999", false}, {"Pico", false},
	}
	for _, tc := range tests {
		if got := isIndex(tc.in); got != tc.want {
			t.Errorf("isIndex(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		kind error
		want bool
	}{
		{ErrNoReader, true}, {ErrNoCard, true}, {ErrReaderNotFound, true}, {ErrNotSmartCardHSM, true},
		{ErrCardBusy, true}, {ErrNoService, false}, {ErrCancelled, false}, {nil, false},
	}
	for _, tc := range tests {
		if got := retryable(tc.kind); got != tc.want {
			t.Errorf("retryable(%v) = %v, want %v", tc.kind, got, tc.want)
		}
	}
}
