package ceremony

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
// with overwrite.
func CreateShare(path string, password []byte, overwrite bool, progress func(done, total int)) error {
	if !overwrite {
		if err := atomicfile.CheckAbsent(path); err != nil {
			return err
		}
	}
	share := make([]byte, dkekshare.ShareSize)
	defer clear(share)
	if _, err := io.ReadFull(rand.Reader, share); err != nil {
		return fmt.Errorf("generating the DKEK share: %w", err)
	}
	file, err := dkekshare.Seal(share, password, rand.Reader, progress)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, file, 0o600, overwrite)
}

// OpenShare decrypts a share file read by ReadShareFile.
func OpenShare(path string, file, password []byte, progress func(done, total int)) ([]byte, error) {
	share, err := dkekshare.Open(file, password, progress)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return share, nil
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
