package backup

import (
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// ErrTampered is a backup offered as proof whose CMAC or key structure
// does not check out under the DKEK shares given.
var ErrTampered = errors.New("the backup does not verify under the DKEK shares given: it is damaged or was changed after it was written, so it proves nothing")

// ReadProof reads a wrapped-key file offered to delete-key as proof of a
// backup. It is read as Inspect reads it: with a DKEK (the XOR of the
// shares) the blob's KCV must be the DKEK's and its CMAC and key structure
// must check out. The proof's SameKey compares a public key with the
// file's as Restore does after an unwrap (samePublicKey).
func ReadProof(file []byte, name string, dkek []byte) (*keystore.Proof, error) {
	p, err := prepare(file, name)
	if err != nil {
		return nil, err
	}
	proof := &keystore.Proof{Name: name, Type: p.bl.Type.String(), KCV: p.bl.KCV}
	if pub := p.pub; pub != nil {
		proof.SameKey = func(k *cvc.PublicKey) bool { return k != nil && samePublicKey(k, pub) }
	}
	if dkek == nil {
		return proof, nil
	}
	if _, err := Inspect(file, dkek); err != nil {
		if errors.Is(err, wrap.ErrWrongDKEK) {
			return nil, fmt.Errorf("%s: %w: give the --dkek-share files (and passwords) of the DKEK %X it was made under; nothing was deleted", name, err, p.bl.KCV)
		}
		return nil, fmt.Errorf("%s: %w (%v); nothing was deleted", name, ErrTampered, err)
	}
	proof.Verified = true
	return proof, nil
}

// BlobKCV returns the DKEK check value a wrapped-key file's blob was made
// under (its first 8 bytes; pico-hsm kek.c dkek_encode_key).
func BlobKCV(file []byte) ([8]byte, error) {
	p, err := prepare(file, "")
	if err != nil {
		return [8]byte{}, err
	}
	return p.bl.KCV, nil
}
