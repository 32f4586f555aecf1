package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// state is everything the simulated device remembers between invocations:
// its flash, plus the firmware's RAM (see ram). It is stored as JSON in the
// state file.
type state struct {
	Version int `json:"version"`

	// Flash.
	Initialized bool   `json:"initialized"`
	Options     uint16 `json:"options"`
	PIN         []byte `json:"pin,omitempty"`
	SOPIN       []byte `json:"so_pin,omitempty"`
	PINRetryMax int    `json:"pin_retry_max"`
	PINTries    int    `json:"pin_tries"`
	SOPINTries  int    `json:"so_pin_tries"`
	// KeyDomains is EF 10A0: a pair [total shares, imported shares] per key
	// domain (pico-hsm cmd_key_domain.c). Empty on a factory device, which
	// is why the DKEK status query answers 6B00 there.
	KeyDomains []byte `json:"key_domains"`
	// DKEK is EF_DKEK of domain 0 (FID 1090): the plain XOR accumulator of
	// the shares while they are imported, then the DKEK encrypted under the
	// MKEK once committed (kek.c save_dkek_key). Reading always decrypts, so
	// a plain accumulator that was never committed reads as a wrong DKEK.
	DKEK []byte `json:"dkek,omitempty"`
	// DomainDKEK holds EF_DKEK+n (FIDs 1091 to 109F) of key domains 1 to
	// 15 the way DKEK holds domain 0's (kek.c load_dkek(id), cmd_key_domain.c
	// file_new(EF_DKEK + p2)). A domain without an entry has no DKEK file.
	DomainDKEK map[int][]byte `json:"domain_dkek,omitempty"`
	// MKEKIV and MKEK are the master key encryption key record (kek.c).
	MKEKIV     []byte `json:"mkek_iv"`
	MKEK       []byte `json:"mkek"`
	PubKeyAuth []byte `json:"pub_key_auth,omitempty"`
	// Files are the transparent files by FID in upper-case hex.
	Files map[string][]byte `json:"files"`
	// Keys are the key files CCxx by key reference; 0 is the device key.
	Keys map[byte]*key `json:"keys"`
	// Flash is the layout of the data pool (flash.go): for every file in
	// it, from the top, its address (4 bytes), FID (2) and length (2). Nil
	// in a state written before the pool was modelled; the pool is then
	// rebuilt from the files.
	Flash []byte `json:"flash,omitempty"`
	// Order lists the dynamic files (keys included) in creation order,
	// which is the order LIST KEYS answers in (cmd_list_keys.c walks the
	// dynamic file list).
	Order []uint16 `json:"order"`

	// RAM is the firmware's RAM. The emulator keeps it across card
	// connections and ignores the reader's power-off and reset (pico-keys-sdk
	// emulation.c), so it outlives tool invocations; only a power cycle
	// (restarting the device) loses it.
	RAM ram `json:"ram"`
}

type ram struct {
	// PendingSaveDKEK is pico-hsm's pending_save_dkek: the last share was
	// imported without a PIN session and the plain DKEK waits for the next
	// successful VERIFY to be encrypted under the MKEK.
	PendingSaveDKEK bool    `json:"pending_save_dkek"`
	Session         session `json:"session"`
}

// session is the firmware's per-session RAM: the selected application, the
// authentication flags, the current file and the answer still to be fetched
// with GET RESPONSE. SELECT of the application resets it.
type session struct {
	Selected bool `json:"selected"`
	// UserAuth is isUserAuthenticated: set by a successful VERIFY of either
	// PIN and by INITIALIZE; needed for key and file operations.
	UserAuth bool `json:"user_auth"`
	// PINSession and SOSession are has_session_pin and has_session_sopin:
	// the MKEK (and so the DKEK) can be loaded only with one of them.
	PINSession bool   `json:"pin_session"`
	SOSession  bool   `json:"so_session"`
	CurFID     uint16 `json:"cur_fid"`
	HasCur     bool   `json:"has_cur"`
	// Pending holds answer bytes not yet fetched with GET RESPONSE.
	Pending []byte `json:"pending,omitempty"`
	// Chain collects command-chaining data (CLA bit 10).
	Chain []byte `json:"chain,omitempty"`
}

const stateVersion = 1

// store is the state file with its advisory lock.
type store struct {
	path string
	lock *os.File
}

// ErrBusy is returned when another process holds the state file.
var ErrBusy = errors.New("the simulated device is in use by another process")

// lockPath is the lock file of the state file path. The lock cannot be on
// the state file itself: every write replaces that file (rename), and a
// lock on the old one would not keep a new opener off the new one.
func lockPath(path string) string { return path + ".lock" }

// openStore locks the state file at path exclusively, waiting up to wait
// for another holder. The lock makes a whole tool invocation one card
// session: two processes never interleave their commands on one state
// file. The directory must exist: a mistyped --reader sim:PATH is an
// error, not a new factory-new device somewhere else.
//
// The lock is an flock on path+".lock", which close removes, so that no
// lock file is left behind. A process that was waiting on the removed
// file then holds a lock on a file no longer there, so after locking it
// checks that the file it locked is still the one at that name, and if
// not tries again (the usual pattern for lock files that are removed).
// After a crash the lock file stays, unlocked, until the next opener
// locks and removes it.
func openStore(path string, wait time.Duration) (*store, error) {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("simulated device: directory %s does not exist: create it first (mkdir -p %s), or check the path after sim:", dir, dir)
		}
		return nil, fmt.Errorf("simulated device: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("simulated device: %s is not a directory: check the path after sim:", dir)
	}
	deadline := time.Now().Add(wait)
	for {
		lf, err := os.OpenFile(lockPath(path), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("simulated device: %w", err)
		}
		busy, err := tryLock(lf)
		if err == nil && !busy {
			if stillThere(lf, lockPath(path)) {
				return &store{path: path, lock: lf}, nil
			}
			lf.Close() // removed by the holder before: lock the new one
			continue
		}
		lf.Close()
		if err != nil {
			return nil, fmt.Errorf("simulated device: lock %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w (%s): wait for it to finish, or stop the bridge that serves it", ErrBusy, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stillThere reports whether f is the file at name.
func stillThere(f *os.File, name string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(name)
	return err == nil && os.SameFile(a, b)
}

// close removes the lock file and releases the lock, in that order: a
// process that takes the lock in between takes it on a new lock file,
// once this one's writes are all done.
func (s *store) close() error {
	if s.lock == nil {
		return nil
	}
	os.Remove(lockPath(s.path)) // fails on Windows while open: the file stays
	err := s.lock.Close()       // closing releases the lock
	s.lock = nil
	return err
}

// load reads the state, or returns nil when the file does not exist yet.
func (s *store) load() (*state, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("simulated device: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("simulated device: %s is not a state file: %v", s.path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("simulated device: %s has state version %d, this tool reads %d", s.path, st.Version, stateVersion)
	}
	st.upgrade()
	return &st, nil
}

// legacyFlashKey is where states written by an earlier build kept the
// data pool's layout: among the files, under a name that is no FID.
const legacyFlashKey = "flash"

// upgrade fills what a state read from JSON may lack: the maps when empty,
// and the pool's layout from where an earlier build kept it.
func (st *state) upgrade() {
	if st.Files == nil {
		st.Files = map[string][]byte{}
	}
	if st.Keys == nil {
		st.Keys = map[byte]*key{}
	}
	if raw, ok := st.Files[legacyFlashKey]; ok {
		if st.Flash == nil {
			st.Flash = raw
		}
		delete(st.Files, legacyFlashKey)
	}
}

func marshalState(st *state) ([]byte, error) { return json.MarshalIndent(st, "", " ") }

// write replaces the state file atomically: temp file, optional fsync,
// rename. RAM-only changes skip the fsync: losing them in a host crash is
// what a power cut does to the device too.
func (s *store) write(b []byte, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(s.path), filepath.Base(s.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("simulated device: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("simulated device: %w", err)
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return fmt.Errorf("simulated device: %w", err)
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}
