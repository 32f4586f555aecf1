package hsm

import (
	"errors"
	"fmt"
	"io"
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
	dk, err := d.DKEKStatus()
	switch {
	case errors.Is(err, ErrNoDKEK):
	case err != nil:
		return nil, err
	default:
		s.DKEK = &dk
		s.DKEKShares, s.DKEKOutstanding = dk.Shares, dk.Outstanding
		if dk.Shares > 0 && dk.Outstanding == 0 {
			s.KCV = dk.KCVHex()
			if s.KCVVerified || s.KCV != "0000000000000000" {
				kcv := s.KCV
				s.KnownKCV = &kcv
			}
		}
	}
	return s, nil
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
	if s.DKEK == nil {
		return
	}
	if s.DKEKOutstanding > 0 {
		fmt.Fprintf(w, "DKEK import pending, %d share(s) still missing\n", s.DKEKOutstanding)
	} else if s.DKEKShares > 0 {
		fmt.Fprintf(w, "DKEK key check value : %s\n", s.KCV)
	}
}
