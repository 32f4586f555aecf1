package ceremony

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

// MinPasswordLength is sc-hsm-tool's minimum for a share password
// (sc-hsm-tool.c ask_for_password: "Password way to short").
const MinPasswordLength = 6

// ReadShareFile reads a .pbe file and checks its format, so that a foreign
// or truncated file is refused before anyone types a password.
func ReadShareFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := dkekshare.Check(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
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
