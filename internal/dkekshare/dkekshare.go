// Package dkekshare reads and writes the password-encrypted DKEK share files
// (.pbe) of OpenSC's sc-hsm-tool, byte for byte as sc-hsm-tool does.
//
// A share file is 64 bytes (OpenSC src/tools/sc-hsm-tool.c,
// create_dkek_share writes and import_dkek_share reads the u8 filebuff[64]):
//
//	offset  0, 8 bytes: the magic "Salted__" (the header of OpenSSL's enc)
//	offset  8, 8 bytes: the salt (random bytes from the card)
//	offset 16, 48 bytes: AES-256-CBC of the 32-byte share with PKCS#7 padding
//	                     (32 bytes of share, then 16 bytes of value 0x10)
//
// The AES key and IV come from EVP_BytesToKey with MD5 and 10,000,000
// iterations over the password and the salt (see DeriveKeyIV).
//
// Secrets (derived key and IV, the intermediate digests, the plain share and
// the hash buffers that saw the password) are cleared after use where this
// package holds them. This is best effort: the AES key schedule inside
// crypto/aes cannot be cleared, and the password and the returned share
// belong to the caller.
package dkekshare

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

const (
	// FileSize is the size of a DKEK share file in bytes.
	FileSize = 64
	// ShareSize is the size of a plain DKEK share in bytes.
	ShareSize = 32
)

// magic starts every share file (sc-hsm-tool.c: static const char magic[] =
// "Salted__", written without its NUL).
const magic = "Salted__"

// Offsets in a share file, see the package documentation.
const (
	saltOffset       = len(magic)
	ciphertextOffset = saltOffset + SaltSize
	ciphertextSize   = FileSize - ciphertextOffset
	padSize          = ciphertextSize - ShareSize // PKCS#7 pad of a full block
)

var (
	// ErrNotShare means the data does not start with the "Salted__" magic.
	ErrNotShare = errors.New("not a DKEK share file: it does not start with Salted__")
	// ErrTruncated means the data is not FileSize bytes long; the error
	// returned wraps it with the actual size.
	ErrTruncated = errors.New("wrong size for a DKEK share file")
	// ErrWrongPassword means the decrypted data is not a share with the
	// expected padding: the password is wrong or the file is not a DKEK share
	// (or is damaged). A wrong password cannot be told apart from a damaged
	// file.
	ErrWrongPassword = errors.New("wrong password or not a DKEK share")
)

// Check checks the format of a share file without a password: it must be
// FileSize bytes and start with "Salted__". It returns a copy of the salt.
// A short file that is a prefix of the magic counts as truncated, any other
// file without the magic as not a share. Check is stricter than sc-hsm-tool,
// which freads the first 64 bytes and ignores anything after them: a longer
// file is rejected here too.
func Check(file []byte) (salt []byte, err error) {
	if !bytes.HasPrefix(file, []byte(magic)) && !bytes.HasPrefix([]byte(magic), file) {
		return nil, ErrNotShare
	}
	if len(file) != FileSize {
		return nil, fmt.Errorf("%w: it is %d bytes, a share file is %d bytes", ErrTruncated, len(file), FileSize)
	}
	return bytes.Clone(file[saltOffset : saltOffset+SaltSize]), nil
}

// Seal encrypts a 32-byte DKEK share under password the way sc-hsm-tool's
// create_dkek_share does (OpenSC src/tools/sc-hsm-tool.c): 8 salt bytes are
// read from rand, key and IV are derived with DeriveKeyIV, and the share is
// encrypted with AES-256-CBC and PKCS#7 padding (EVP_EncryptUpdate and
// EVP_EncryptFinal_ex, which add one full block of 0x10 bytes). It returns
// the FileSize bytes of the file. progress is passed on to DeriveKeyIV.
func Seal(share, password []byte, rand io.Reader, progress func(done, total int)) ([]byte, error) {
	if len(share) != ShareSize {
		return nil, fmt.Errorf("a DKEK share is %d bytes, not %d", ShareSize, len(share))
	}
	file := make([]byte, FileSize)
	copy(file, magic)
	salt := file[saltOffset : saltOffset+SaltSize]
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, fmt.Errorf("generating salt: %w", err)
	}

	key, iv := DeriveKeyIV(password, salt, progress)
	defer wipe(key[:])
	defer wipe(iv[:])
	if err := encrypt(file, share, &key, &iv); err != nil {
		return nil, err
	}
	return file, nil
}

// Open decrypts a share file with password the way sc-hsm-tool's
// import_dkek_share does (OpenSC src/tools/sc-hsm-tool.c): key and IV from
// DeriveKeyIV with the salt at bytes 8-15, AES-256-CBC decryption of bytes
// 16-63. It returns the 32-byte share. The padding must be the full block of
// 0x10 bytes that sc-hsm-tool writes; it is checked in constant time, and
// any mismatch is ErrWrongPassword. Format errors are those of Check.
// progress is passed on to DeriveKeyIV.
//
// Unlike EVP_DecryptFinal_ex, which accepts any valid PKCS#7 padding (about
// 1 wrong password in 256 passes it, and sc-hsm-tool then imports 32 bytes of
// garbage), Open accepts only the padding a 32-byte share has.
func Open(file, password []byte, progress func(done, total int)) (share []byte, err error) {
	salt, err := Check(file)
	if err != nil {
		return nil, err
	}

	key, iv := DeriveKeyIV(password, salt, progress)
	defer wipe(key[:])
	defer wipe(iv[:])
	return decrypt(file, &key, &iv)
}

// OpenContext is Open that gives up when ctx is done, within a few
// milliseconds, and then returns ctx's error (DeriveKeyIVContext). It lets
// the shares of one run be derived at the same time and the others be
// stopped as soon as one password is wrong.
func OpenContext(ctx context.Context, file, password []byte, progress func(done, total int)) (share []byte, err error) {
	salt, err := Check(file)
	if err != nil {
		return nil, err
	}
	key, iv, err := DeriveKeyIVContext(ctx, password, salt, progress)
	defer wipe(key[:])
	defer wipe(iv[:])
	if err != nil {
		return nil, err
	}
	return decrypt(file, &key, &iv)
}

// encrypt fills bytes 16-63 of file with AES-256-CBC (NIST SP 800-38A
// section 6.2: C_j = AES(P_j XOR C_(j-1)), C_0 = IV) of the 32-byte share
// followed by the PKCS#7 padding block of 16 bytes 0x10, which is what
// EVP_EncryptUpdate and EVP_EncryptFinal_ex produce for a 32-byte input.
func encrypt(file, share []byte, key *[32]byte, iv *[16]byte) error {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return err
	}
	var plain [ciphertextSize]byte
	defer wipe(plain[:])
	copy(plain[:], share)
	for i := ShareSize; i < len(plain); i++ {
		plain[i] = byte(padSize)
	}
	prev := iv[:]
	for off := 0; off < ciphertextSize; off += aes.BlockSize {
		p := plain[off : off+aes.BlockSize]
		subtle.XORBytes(p, p, prev)
		c := file[ciphertextOffset+off : ciphertextOffset+off+aes.BlockSize]
		block.Encrypt(c, p)
		prev = c
	}
	return nil
}

// decrypt is the AES-256-CBC decryption of bytes 16-63 of file (NIST
// SP 800-38A section 6.2: P_j = AES^-1(C_j) XOR C_(j-1), C_0 = IV) followed
// by the constant-time check that the last 16 bytes are the padding of a
// 32-byte share.
func decrypt(file []byte, key *[32]byte, iv *[16]byte) ([]byte, error) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	var plain [ciphertextSize]byte
	defer wipe(plain[:])
	prev := iv[:]
	for off := 0; off < ciphertextSize; off += aes.BlockSize {
		c := file[ciphertextOffset+off : ciphertextOffset+off+aes.BlockSize]
		p := plain[off : off+aes.BlockSize]
		block.Decrypt(p, c)
		subtle.XORBytes(p, p, prev)
		prev = c
	}

	var wantPad [padSize]byte
	for i := range wantPad {
		wantPad[i] = byte(padSize)
	}
	if subtle.ConstantTimeCompare(plain[ShareSize:], wantPad[:]) != 1 {
		return nil, ErrWrongPassword
	}
	return bytes.Clone(plain[:ShareSize]), nil
}
