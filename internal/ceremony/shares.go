package ceremony

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// MinPasswordLength is sc-hsm-tool's minimum for a share password
// (sc-hsm-tool.c ask_for_password: "Password way to short").
const MinPasswordLength = 6

// ReadShareFile reads a .pbe file and checks its format, so that a foreign
// or truncated file is refused before anyone types a password.
func ReadShareFile(path string) ([]byte, error) {
	b, _, err := readShareFile(path)
	return b, err
}

func readShareFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := dkekshare.Check(b); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, fi, nil
}

// ReadShareFiles reads the share files of one import (or one dkek-share
// kcv) with ReadShareFile, and refuses the same file given twice: by the
// same name, by another path or hard link to it, or as a copy (the same
// salt and ciphertext). All of this is known before any key derivation.
// Shares imported twice cancel out of the DKEK, which is the XOR of the
// shares (sc-hsm-tool.c import_dkek_share; pico-hsm kek.c
// import_dkek_share).
func ReadShareFiles(paths []string) ([][]byte, error) {
	files := make([][]byte, len(paths))
	infos := make([]os.FileInfo, len(paths))
	for i, p := range paths {
		b, fi, err := readShareFile(p)
		if err != nil {
			return nil, err
		}
		files[i], infos[i] = b, fi
		for j := 0; j < i; j++ {
			switch {
			case paths[j] == p:
				return nil, fmt.Errorf("%s is given twice: each custodian must bring their own share file", p)
			case os.SameFile(infos[j], fi):
				return nil, fmt.Errorf("%s and %s are the same file: each custodian must bring their own share file", paths[j], p)
			case bytes.Equal(files[j], b):
				return nil, sameShare(paths[j], p)
			}
		}
	}
	return files, nil
}

func sameShare(a, b string) error {
	return fmt.Errorf("%s and %s hold the same share: each custodian must bring their own share file", a, b)
}

// zeroKCV is the key check value of an all-zero DKEK.
const zeroKCV = hsm.ZeroDKEKKCV

// CheckShares refuses decrypted shares that would make a DKEK someone
// knows without the others, before any of them reaches the device: an
// all-zero share (it adds nothing), two equal shares (they cancel out),
// shares that together make an all-zero DKEK, and shares whose XOR is one
// of them (the others cancel out, so that one custodian alone knows the
// DKEK). names are the shares' files, for the messages.
func CheckShares(names []string, shares [][]byte) error {
	zero := make([]byte, dkekshare.ShareSize)
	for i, s := range shares {
		if subtle.ConstantTimeCompare(s, zero) == 1 {
			return fmt.Errorf("%s holds an all-zero share, which adds nothing to the DKEK: its custodian must create a new share with create-dkek-share", names[i])
		}
		for j := 0; j < i; j++ {
			if subtle.ConstantTimeCompare(s, shares[j]) == 1 {
				return sameShare(names[j], names[i])
			}
		}
	}
	if len(shares) < 3 {
		return nil // two shares cancel out only when equal: checked above
	}
	x := xorShares(shares)
	defer clear(x)
	if subtle.ConstantTimeCompare(x, zero) == 1 {
		return fmt.Errorf("the shares of %s cancel out: together they make an all-zero DKEK (key check value %s), which protects nothing: each custodian must create their own share with create-dkek-share", joinNames(names), zeroKCV)
	}
	for i, s := range shares {
		if subtle.ConstantTimeCompare(x, s) == 1 {
			return fmt.Errorf("the shares of the other files cancel out, so the DKEK would be the share in %s alone, which its custodian alone knows: each custodian must create their own share with create-dkek-share", names[i])
		}
	}
	return nil
}

// joinNames lists names as "a, b and c".
func joinNames(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// CheckOutput checks, before a password is asked for or a key derived,
// that CreateShare or Reshare will be able to write path: the file is
// absent (unless overwrite), its name is not a directory's, and its
// directory exists and lets a file be created in it, which is tried. The
// messages are atomicfile.Write's for the same failures. A full disk can
// only show at the write itself.
func CheckOutput(path string, overwrite bool) error {
	fi, err := os.Lstat(path)
	switch {
	case err == nil && !overwrite:
		return atomicfile.CheckAbsent(path)
	case err == nil && fi.IsDir():
		return atomicfile.WriteError(path, syscall.EISDIR)
	}
	return atomicfile.CheckWritable(path)
}

// CheckNewPassword refuses passwords shorter than sc-hsm-tool's minimum.
// sc-hsm-tool enforces it only at its prompt; a share file protected by a
// 1-character password is as weak when the password came from --password.
func CheckNewPassword(pw []byte) error {
	if len(pw) < MinPasswordLength {
		return fmt.Errorf("the share password must be at least %d characters long", MinPasswordLength)
	}
	return nil
}

// CreateShare makes a new DKEK share from the host's random source and
// writes it to path, encrypted under password, as a file sc-hsm-tool can
// import (sc-hsm-tool.c create_dkek_share). No device is needed. The file
// is written atomically with mode 0600; an existing file is replaced only
// with overwrite. It returns the share's own check value (ShareKCV), for
// its custodian to write down with the file's name and give later to
// --expect-share-kcv.
func CreateShare(path string, password []byte, overwrite bool, progress func(done, total int)) (kcv string, err error) {
	if !overwrite {
		if err := atomicfile.CheckAbsent(path); err != nil {
			return "", err
		}
	}
	share := make([]byte, dkekshare.ShareSize)
	defer clear(share)
	if _, err := io.ReadFull(rand.Reader, share); err != nil {
		return "", fmt.Errorf("generating the DKEK share: %w", err)
	}
	file, err := dkekshare.Seal(share, password, rand.Reader, progress)
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(path, file, 0o600, overwrite); err != nil {
		return "", err
	}
	return ShareKCV(share), nil
}

// OpenShare decrypts a share file read by ReadShareFile.
func OpenShare(path string, file, password []byte, progress func(done, total int)) ([]byte, error) {
	share, err := dkekshare.Open(file, password, progress)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return share, nil
}

// ShareError is the failure of one share file of OpenShares: Index is its
// place in the run (from 0), Name its file. Its message is "NAME: ERR",
// as OpenShare's.
type ShareError struct {
	Index int
	Name  string
	Err   error
}

func (e *ShareError) Error() string { return e.Name + ": " + e.Err.Error() }
func (e *ShareError) Unwrap() error { return e.Err }

// testHookOpened, when set by a test, sees every share OpenShares
// decrypts, so that the test can check that each is wiped after an error.
var testHookOpened func(share []byte)

// OpenShares decrypts the share files of one run at the same time, one key
// derivation per core (runtime.NumCPU workers): each derivation is a
// single chain of 30,000,000 MD5 computations that no core can share
// (dkekshare.DeriveKeyIV), so K shares on C cores take about ceil(K/C)
// derivations of wall time instead of K. passwords[i] opens files[i];
// names are the files, for the errors. The shares come back in the order of
// the files.
//
// progress, when set, sees one combined count: the MD5 computations done by
// all derivations and their sum, serialized, ending with done == total
// also after an error (so that a progress line is cleared).
//
// When a file fails (a wrong password), the derivations of the files after
// it still running are stopped (dkekshare.OpenContext) and the ones not
// started are skipped; the files before it are finished, as one of them
// may fail too. OpenShares waits for every worker before it returns: no
// goroutine holds a password or a share afterwards. The error is a
// *ShareError for the first failed file in the order of the files,
// whatever the timing; every share already decrypted is wiped and none is
// returned. The passwords belong to the
// caller, who wipes them once OpenShares returns.
func OpenShares(names []string, files, passwords [][]byte, progress func(done, total int)) ([][]byte, error) {
	return openShares(names, files, passwords, progress, runtime.NumCPU())
}

func openShares(names []string, files, passwords [][]byte, progress func(done, total int), workers int) ([][]byte, error) {
	k := len(files)
	if len(names) != k || len(passwords) != k {
		return nil, fmt.Errorf("%d share files, %d names and %d passwords", k, len(names), len(passwords))
	}
	workers = max(1, min(workers, k))
	// Each file has its own context. When file j fails, the files after
	// it are stopped or skipped, and the ones before it run to the end:
	// one of them may fail too, and the error named is then the first in
	// the order of the files, whatever the timing.
	ctxs, cancels := make([]context.Context, k), make([]context.CancelFunc, k)
	for i := range k {
		ctxs[i], cancels[i] = context.WithCancel(context.Background())
		defer cancels[i]()
	}
	var failMu sync.Mutex
	firstFailed := k
	fail := func(j int) {
		failMu.Lock()
		defer failMu.Unlock()
		if j < firstFailed {
			firstFailed = j
			for i := j + 1; i < k; i++ {
				cancels[i]()
			}
		}
	}

	// The combined progress: each derivation's latest count; one that has
	// not reported yet counts with the total the others report (every
	// share file has the same iteration count).
	var mu sync.Mutex
	done, totals := make([]int, k), make([]int, k)
	finished := false
	sums := func() (sd, st int) {
		known := 0
		for j := range done {
			sd += done[j]
			known = max(known, totals[j])
		}
		for j := range totals {
			st += max(totals[j], known)
		}
		return sd, st
	}
	report := func(i, d, t int) {
		mu.Lock()
		defer mu.Unlock()
		done[i], totals[i] = d, t
		sd, st := sums()
		finished = sd >= st
		progress(sd, st)
	}

	shares := make([][]byte, k)
	errs := make([]error, k)
	next := make(chan int, k)
	for i := range k {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := ctxs[i].Err(); err != nil {
					errs[i] = err
					continue
				}
				var p func(d, t int)
				if progress != nil {
					p = func(d, t int) { report(i, d, t) }
				}
				s, err := dkekshare.OpenContext(ctxs[i], files[i], passwords[i], p)
				if err != nil {
					errs[i] = err
					fail(i)
					continue
				}
				if testHookOpened != nil {
					testHookOpened(s)
				}
				shares[i] = s
			}
		}()
	}
	wg.Wait()
	if progress != nil && !finished {
		_, st := sums()
		st = max(st, 1)
		progress(st, st) // clears a progress line left short by an error
	}
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			for _, s := range shares {
				clear(s)
			}
			return nil, &ShareError{Index: i, Name: names[i], Err: err}
		}
	}
	return shares, nil
}

// ShareKCV is the check value of one share on its own: SHA-256 of the 32
// bytes, first 8, the same function as a DKEK's KCV.
func ShareKCV(share []byte) string {
	s := sha256.Sum256(share)
	return fmt.Sprintf("%X", s[:8])
}

// Reshare re-encrypts a share under a new password, without a device
// (custodian rotation): it decrypts with the old password, encrypts with
// the new one, decrypts the result again to prove it, and only then writes
// it to out, atomically and with mode 0600.
func Reshare(file, oldPassword, newPassword []byte, out string, overwrite bool, progress func(done, total int)) error {
	share, err := dkekshare.Open(file, oldPassword, progress)
	if err != nil {
		return err
	}
	defer clear(share)
	sealed, err := dkekshare.Seal(share, newPassword, rand.Reader, progress)
	if err != nil {
		return err
	}
	back, err := dkekshare.Open(sealed, newPassword, progress)
	if err != nil || !bytes.Equal(back, share) {
		return errors.New("the re-encrypted share does not decrypt to the same share: nothing was written")
	}
	clear(back)
	return atomicfile.Write(out, sealed, 0o600, overwrite)
}

// ParseKCV reads a key check value as a person copies it from paper: 16
// hex digits, in either case, with spaces anywhere between them ("1a2b
// 3c4d 5e6f 7081"). It returns the digits in upper case, as ShareKCV,
// CombinedKCV and sc-hsm-tool print them. flag names the option, for the
// message; a check value is not secret, so the message quotes it.
func ParseKCV(flag, s string) (string, error) {
	v := strings.ToUpper(strings.Join(strings.Fields(s), ""))
	ok := len(v) == 16
	for _, c := range v {
		ok = ok && (c >= '0' && c <= '9' || c >= 'A' && c <= 'F')
	}
	if !ok {
		return "", fmt.Errorf("%s %q: not a key check value: give its 16 hex digits (0-9, A-F), as create-dkek-share, dkek-share kcv or status printed them", flag, s)
	}
	return v, nil
}

// Expect holds the check values a person expects of the shares of one
// run, already read with ParseKCV. A .pbe file has no MAC: sc-hsm-tool's
// padding check lets about one wrong password in 256 through, and the
// share it gives is then 32 wrong bytes; dkekshare.Open's stricter check
// still lets one in 2^128 through, and a file can be swapped for another.
// The check value written down at create-dkek-share closes both.
type Expect struct {
	// KCV is the key check value of the DKEK all the run's shares make
	// (--expect-kcv): hsm.KCV of their XOR.
	KCV string
	// ShareKCVs are the check values of each share alone, in the order of
	// the files (--expect-share-kcv): ShareKCV, what create-dkek-share
	// printed.
	ShareKCVs []string
}

// Given reports whether any check value is expected.
func (e *Expect) Given() bool { return e.KCV != "" || len(e.ShareKCVs) > 0 }

// CheckCount refuses --expect-share-kcv values that are not one per file,
// before any password is asked for.
func (e *Expect) CheckCount(files int) error {
	if n := len(e.ShareKCVs); n > 0 && n != files {
		return fmt.Errorf("%d --expect-share-kcv given for %d share file(s): give one per share file, in the order of the files", n, files)
	}
	return nil
}

// From is the part of e that the files from index i on can be checked
// against before they reach a device, for import-dkek-share --resume:
// each file's own value, and the whole DKEK's only when those files are
// all of its shares (whole); otherwise the device holds the others, and
// CheckDevice compares the DKEK once it is complete.
func (e *Expect) From(i int, whole bool) *Expect {
	f := &Expect{}
	if len(e.ShareKCVs) > i {
		f.ShareKCVs = e.ShareKCVs[i:]
	}
	if whole {
		f.KCV = e.KCV
	}
	return f
}

// CheckDevice compares the check value of the DKEK a device completed
// (import-dkek-share --resume) with KCV. A DKEK still incomplete, or no
// value to compare with, is an error: the run was meant to finish it.
func (e *Expect) CheckDevice(st hsm.DKEKStatus) error {
	switch {
	case st.Outstanding > 0:
		return fmt.Errorf("the device still expects %d DKEK share(s) after this run: run 'status' to see its state, then give the share files it lacks", st.Outstanding)
	case e.KCV == "":
		return errors.New("no check value to compare the completed DKEK with: give every share file of the DKEK, or --expect-kcv")
	}
	if got := st.KCVHex(); got != e.KCV {
		return WrongDKEK(fmt.Sprintf("the device's DKEK key check value is %s, not the expected %s: a share went in twice, a wrong one went in, or the DKEK was lost when the device was unplugged before it was committed (or the --expect-kcv given is not the DKEK's: compare it with the value written down); do not use this device for backups: re-initialize it and import every share again", got, e.KCV))
	}
	return nil
}

// ErrWrongDKEK marks the errors that say a device's completed DKEK is not
// the one its shares should make: every share went in, and the device
// must not be used until it is initialized again and given them once.
var ErrWrongDKEK = errors.New("wrong DKEK")

// WrongDKEK is an ErrWrongDKEK error with msg.
func WrongDKEK(msg string) error { return &refusal{msg, ErrWrongDKEK} }

// Check compares the decrypted shares with the expected check values:
// each share alone first, so that a mismatch names its file, then their
// combination. It runs before any share reaches a device. The messages
// give both values; neither is secret.
func (e *Expect) Check(names []string, shares [][]byte) error {
	for i, want := range e.ShareKCVs {
		if got := ShareKCV(shares[i]); got != want {
			return fmt.Errorf("%s: the share's check value is %s, not the expected %s (--expect-share-kcv): this is not the file whose value was written down (another custodian's, or an older share file with the same password)", shareName(names, i), got, want)
		}
	}
	if e.KCV != "" {
		if got := CombinedKCV(shares); got != e.KCV {
			return fmt.Errorf("the shares of %s make a DKEK with key check value %s, not the expected %s (--expect-kcv): a share file is missing, or another was given (an older share file with the same password); check each file's own value with --expect-share-kcv", joinNames(names), got, e.KCV)
		}
	}
	return nil
}
