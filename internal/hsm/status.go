package hsm

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// Status is what sc-hsm-tool prints with no action (sc-hsm-tool.c
// print_info), gathered with the same APDUs: SELECT, VERIFY status of the
// SO-PIN and the user PIN, and the DKEK status query.
type Status struct {
	Version         string      `json:"version"`
	Options         uint16      `json:"options"`
	OptionNames     []string    `json:"option_names"`
	Initialized     bool        `json:"initialized"`
	SOPIN           *PINState   `json:"so_pin,omitempty"`
	UserPIN         *PINState   `json:"user_pin,omitempty"`
	DKEK            *DKEKStatus `json:"-"`
	DKEKShares      int         `json:"dkek_shares"`
	DKEKOutstanding int         `json:"dkek_outstanding"`
	// KCV is the DKEK key check value in hex, empty when the device has no
	// complete DKEK. It is what the device answered: zeros on a Pico HSM
	// without a verified PIN (see KnownKCV).
	KCV string `json:"-"`
	// KnownKCV is the KCV for JSON: nil (null) where it is not known, that
	// is with no complete DKEK, or when the device answered zeros because
	// the user PIN was not verified (pico-hsm cmd_key_domain.c answers the
	// KCV only to a verified session; sc-hsm-tool prints the zeros).
	KnownKCV *string `json:"dkek_kcv"`
	// KCVVerified tells whether the KCV was read with the user PIN verified
	// in the same session. The Pico HSM answers zeros otherwise.
	KCVVerified bool `json:"kcv_verified"`
	// KeyDomains lists every key domain slot of a device initialized with
	// key domains (more than one slot); nil on a device without, so that
	// its status stays sc-hsm-tool's. The lines above keep describing
	// domain 0, the default domain sc-hsm-tool knows.
	KeyDomains []DomainState `json:"key_domains,omitempty"`
	// PINResetWithSOPIN tells whether the SO-PIN can reset the user PIN
	// (option 0001, "User PIN reset with SO-PIN enabled"): without it the
	// firmware refuses RESET RETRY COUNTER (pico-hsm cmd_reset_retry.c,
	// 6986), and a blocked user PIN is lost. nil on a device never
	// initialized.
	PINResetWithSOPIN *bool `json:"user_pin_reset_with_so_pin,omitempty"`
	// UserPINUnblock says, for a blocked user PIN, what unblocks it:
	// "so-pin" (unblock-pin) where the option allows it and the SO-PIN is
	// not blocked too, otherwise "initialize" (only initializing again,
	// which destroys every key). Empty when the PIN is not blocked.
	UserPINUnblock string `json:"user_pin_unblock,omitempty"`
	// KeysCounted tells that the caller filled DomainState.Keys
	// (CountKeys in package keystore reads each key's domain).
	KeysCounted bool `json:"-"`
}

// DomainState is one key domain slot in the status (pico-hsm
// cmd_key_domain.c, the answer of 80 52 00 dom: shares, outstanding, KCV).
type DomainState struct {
	Domain int `json:"domain"`
	// SetUp is false for a free slot (FF FF in EF 10A0, 6A88 to its
	// status); the counts are then 0.
	SetUp       bool `json:"set_up"`
	Shares      int  `json:"dkek_shares"`
	Outstanding int  `json:"dkek_outstanding"`
	// KCV is the domain's DKEK check value in hex, nil when it is not
	// known: a free slot, shares still missing (the firmware then answers
	// the check value of a partial accumulator, which means nothing), or
	// the zeros a Pico HSM answers without the user PIN verified in the
	// session.
	KCV *string `json:"dkek_kcv"`
	// Keys is the number of keys whose metadata names this domain (tag 92;
	// no tag is domain 0), filled by the caller (Status.KeysCounted).
	Keys int `json:"key_count"`
}

// OptionNames lists the configuration options as sc-hsm-tool names them.
func OptionNames(opt uint16) []string {
	names := []string{}
	if opt&OptResetRetryCounter != 0 {
		names = append(names, "User PIN reset with SO-PIN enabled")
	}
	if opt&OptTransportPIN != 0 {
		names = append(names, "Transport-PIN mode enabled")
	}
	return names
}

// ReadStatus selects the application and gathers the status. If pin is not
// nil, the user PIN is verified first so that the Pico HSM reveals the real
// KCV; a wrong PIN is returned as an error before anything else is read.
func (d *Device) ReadStatus(pin []byte, allowLastTry bool) (*Status, error) {
	if pin != nil {
		if err := CheckPIN(pin, "--pin"); err != nil {
			return nil, err
		}
	}
	info, err := d.SelectApplication()
	if err != nil {
		return nil, err
	}
	s := &Status{Version: info.Version(), Options: info.Options, OptionNames: OptionNames(info.Options)}
	so, err := d.PINStatus(SOPIN)
	if err != nil {
		return nil, err
	}
	if so.NotInitialized {
		if pin != nil {
			return nil, fmt.Errorf("cannot verify the user PIN: %w", ErrNotInitialized)
		}
	} else {
		s.Initialized = true
		s.SOPIN = &so
		up, err := d.PINStatus(UserPIN)
		if err != nil {
			return nil, err
		}
		s.UserPIN = &up
		rrc := info.Options&OptResetRetryCounter != 0
		s.PINResetWithSOPIN = &rrc
		if up.Blocked {
			s.UserPINUnblock = "initialize"
			if rrc && !so.Blocked {
				s.UserPINUnblock = "so-pin"
			}
		}
		if pin != nil {
			// The same guard as Login, on the state just read.
			if err := CheckTries(up, UserPIN, allowLastTry); err != nil {
				return nil, err
			}
			if err := d.VerifyPIN(UserPIN, pin); err != nil {
				return nil, blankNote(err, pin)
			}
			// The tries left printed are those before this
			// verification, as sc-hsm-tool prints them; the PIN is
			// verified now.
			s.KCVVerified = true
			up.Verified = true // s.UserPIN points to up
		}
	}
	doms, err := d.statusDomains()
	if err != nil {
		return nil, err
	}
	if len(doms) > 0 && doms[0].SetUp {
		dk := doms[0].Status
		s.DKEK = &dk
		s.DKEKShares, s.DKEKOutstanding = dk.Shares, dk.Outstanding
		if dk.Complete() {
			s.KCV = dk.KCVHex()
			s.KnownKCV = s.knownKCV(dk)
		}
	}
	if len(doms) > 1 {
		s.KeyDomains = make([]DomainState, len(doms))
		for i, kd := range doms {
			ds := DomainState{Domain: kd.Domain, SetUp: kd.SetUp}
			if kd.SetUp {
				ds.Shares, ds.Outstanding = kd.Status.Shares, kd.Status.Outstanding
				if kd.Status.Complete() {
					ds.KCV = s.knownKCV(kd.Status)
				}
			}
			s.KeyDomains[i] = ds
		}
	}
	return s, nil
}

// BlockedHint says what unblocks a blocked user PIN on this device, or ""
// when it is not blocked. prefix is the command that names the device,
// as in "pico-hsm-tool --reader 1".
func (s *Status) BlockedHint(prefix string) string {
	switch s.UserPINUnblock {
	case "so-pin":
		return fmt.Sprintf("the user PIN is blocked: the SO-PIN unblocks it (this device allows it: User PIN reset with SO-PIN): run '%s unblock-pin --so-pin SO-PIN --new-pin NEW-PIN'", prefix)
	case "initialize":
		if s.SOPIN != nil && s.SOPIN.Blocked && s.PINResetWithSOPIN != nil && *s.PINResetWithSOPIN {
			return "the user PIN is blocked, and so is the SO-PIN that unblocks it: neither unblock-pin nor initialize (which asks for the SO-PIN) can help; the keys are usable only from a backup, restored with the DKEK shares on another device"
		}
		return "the user PIN is blocked, and this device was initialized without \"User PIN reset with SO-PIN\", so the SO-PIN cannot unblock it: only initializing it again gives it a user PIN, which destroys every key and the DKEK (restore them from a backup with the DKEK shares)"
	}
	return ""
}

// knownKCV is dk's check value, or nil where the device answered the
// zeros a Pico HSM answers without the user PIN verified in the session.
func (s *Status) knownKCV(dk DKEKStatus) *string {
	if !s.KCVVerified && !dk.KCVKnown() {
		return nil
	}
	kcv := dk.KCVHex()
	return &kcv
}

// statusDomains reads the key domain slots for the status: domain 0 with
// the query sc-hsm-tool sends (80 52 00 00), then 1, 2 ... up to the
// first the device does not have (6A86; transcripts/60-key-domains-setup.txt
// [3] to [6]). A device without key domains costs one more query, of slot
// 1. Unlike KeyDomains it never fails on a free domain 0 (6A88: the
// device was initialized with key domains and domain 0 was not set up
// again), and a slot above 0 answered with another status word, as a
// firmware that knows no key domains may answer, ends the list rather than
// the status. It returns nil for a device never initialized (6B00, as
// DKEKStatus).
func (d *Device) statusDomains() ([]KeyDomain, error) {
	var out []KeyDomain
	for dom := range MaxKeyDomains {
		st, err := d.DomainStatus(dom)
		var se *apdu.StatusError
		switch {
		case err == nil:
			out = append(out, KeyDomain{Domain: dom, SetUp: true, Status: st})
		case errors.Is(err, ErrDomainNotSetUp):
			out = append(out, KeyDomain{Domain: dom})
		case dom == 0 && errors.Is(err, ErrNoDKEK):
			return nil, nil
		case dom > 0 && (errors.Is(err, ErrNoSuchDomain) || errors.Is(err, ErrNoDKEK) || errors.As(err, &se)):
			return out, nil
		default:
			return nil, err
		}
	}
	return out, nil
}

// WriteText prints s with sc-hsm-tool's lines (sc-hsm-tool.c print_info and
// print_dkek_info), so that scripts grepping sc-hsm-tool's output work
// unchanged.
func (s *Status) WriteText(w io.Writer) {
	fmt.Fprintf(w, "Version              : %s\n", s.Version)
	if len(s.OptionNames) > 0 {
		fmt.Fprintf(w, "Config options       :\n")
		for _, n := range s.OptionNames {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	if !s.Initialized {
		fmt.Fprintf(w, "SmartCard-HSM has never been initialized. Please use --initialize to set SO-PIN and user PIN.\n")
	} else {
		if s.SOPIN.Blocked {
			fmt.Fprintf(w, "SO-PIN locked\n")
		} else {
			fmt.Fprintf(w, "SO-PIN tries left    : %d\n", s.SOPIN.TriesLeft)
		}
		switch u := s.UserPIN; {
		case u.PublicKeyAuth:
			fmt.Fprintf(w, "Public key authentication active.\n")
		case u.TransportPIN:
			fmt.Fprintf(w, "Transport-PIN active. Please change to user selected PIN first.\n")
		case u.Blocked:
			fmt.Fprintf(w, "User PIN locked\n")
		default:
			fmt.Fprintf(w, "User PIN tries left  : %d\n", u.TriesLeft)
		}
	}
	fmt.Fprintf(w, "DKEK shares          : %d\n", s.DKEKShares)
	if s.DKEK != nil {
		if s.DKEKOutstanding > 0 {
			fmt.Fprintf(w, "DKEK import pending, %d share(s) still missing\n", s.DKEKOutstanding)
		} else if s.DKEKShares > 0 {
			fmt.Fprintf(w, "DKEK key check value : %s\n", s.KCV)
		}
	}
	if len(s.KeyDomains) == 0 {
		return
	}
	fmt.Fprintf(w, "Key domains          : %d\n", len(s.KeyDomains))
	for _, kd := range s.KeyDomains {
		fmt.Fprintf(w, "%-21s: %s\n", fmt.Sprintf("Key domain %d", kd.Domain), kd.describe(s.KeysCounted))
	}
}

// describe is the domain's line in the status text, for instance
// "2 shares, 1 missing, 0 keys" or "1 share, check value unknown (give
// --pin), 3 keys".
func (kd DomainState) describe(counted bool) string {
	var parts []string
	switch {
	case !kd.SetUp:
		parts = append(parts, "not set up")
	case kd.Shares == 0:
		parts = append(parts, "no DKEK")
	default:
		parts = append(parts, plural(kd.Shares, "share"))
		switch {
		case kd.Outstanding > 0:
			parts = append(parts, fmt.Sprintf("%d missing", kd.Outstanding))
		case kd.KCV != nil:
			parts = append(parts, "check value "+*kd.KCV)
		default:
			parts = append(parts, "check value unknown (give --pin)")
		}
	}
	// A free slot can hold keys: the firmware generates into any
	// domain number (transcripts/61-key-domains-keys.txt [3]).
	if counted && (kd.SetUp || kd.Keys > 0) {
		parts = append(parts, plural(kd.Keys, "key"))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
