package wrap

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// recordedFiles returns the wrapped-key files sc-hsm-tool wrote
// (testdata/pico-hsm/vectors/wrap-key-*.bin) and the key blobs inside.
func recordedFiles(f *testing.F) (files, blobs [][]byte) {
	f.Helper()
	names, err := filepath.Glob(vectors + "wrap-key-*.bin")
	if err != nil || len(names) == 0 {
		f.Fatalf("no wrap-key vectors: %v", err)
	}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		file, err := ParseFile(b)
		if err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		files = append(files, b)
		blobs = append(blobs, file.Blob)
	}
	return files, blobs
}

// checkRejection fails unless err wraps want and has a message.
func checkRejection(t *testing.T, err, want error) {
	t.Helper()
	if err == nil || err.Error() == "" {
		t.Fatalf("rejection without a message: %#v", err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("rejection %q does not wrap %q", err, want)
	}
}

// FuzzParseFile checks that ParseFile never panics or changes its input,
// rejects with ErrFile and a message, and that an accepted file marshals to
// bytes that parse to the same blob, PRKD and certificate. Seeds: the
// recorded wrap-key files, each TLV's length at, one past and two past
// what is left (fileBoundaries) and testdata/fuzz/FuzzParseFile.
func FuzzParseFile(f *testing.F) {
	files, _ := recordedFiles(f)
	for _, b := range files {
		f.Add(b)
	}
	for _, bd := range fileBoundaries() {
		f.Add(bd.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		file, err := ParseFile(b)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseFile modified its input")
		}
		if err != nil {
			checkRejection(t, err, ErrFile)
			if file != nil {
				t.Fatal("file returned with an error")
			}
			return
		}
		m := file.Marshal()
		back, err := ParseFile(m)
		if err != nil {
			t.Fatalf("re-parse of % X: %v", m, err)
		}
		if !bytes.Equal(back.Blob, file.Blob) || !bytes.Equal(back.PRKD, file.PRKD) || !bytes.Equal(back.Cert, file.Cert) {
			t.Fatalf("round trip differs:\n%+v\n%+v", back, file)
		}
		if m2 := back.Marshal(); !bytes.Equal(m2, m) {
			t.Fatalf("marshal not stable\n% X\n% X", m2, m)
		}
	})
}

// marshalBlob encodes bl's fields in the blob layout (see Blob).
func marshalBlob(bl *Blob) []byte {
	b := append(bl.KCV[:0:0], bl.KCV[:]...)
	b = append(b, byte(bl.Type))
	for _, v := range [][]byte{bl.AlgorithmOID, bl.Allowed, bl.AccessConditions, bl.KeyOID} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	b = append(b, bl.Encrypted...)
	return append(b, bl.MAC[:]...)
}

// FuzzParseBlob checks that ParseBlob never panics or changes its input,
// rejects with ErrBlob and a message, and that an accepted blob is exactly
// its fields in the blob layout. Seeds: the blobs of the recorded wrap-key
// files, each field length at, one past and two past what is left
// (blobBoundaries) and testdata/fuzz/FuzzParseBlob.
func FuzzParseBlob(f *testing.F) {
	_, blobs := recordedFiles(f)
	for _, b := range blobs {
		f.Add(b)
	}
	for _, bd := range blobBoundaries() {
		f.Add(bd.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		bl, err := ParseBlob(b)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseBlob modified its input")
		}
		if err != nil {
			checkRejection(t, err, ErrBlob)
			if bl != nil {
				t.Fatal("blob returned with an error")
			}
			return
		}
		if m := marshalBlob(bl); !bytes.Equal(m, b) || !bytes.Equal(bl.Raw, b) {
			t.Fatalf("fields do not re-encode to the input:\n% X\n% X", m, b)
		}
		if len(bl.Encrypted) == 0 || len(bl.Encrypted)%aes.BlockSize != 0 {
			t.Fatalf("encrypted part of %d bytes", len(bl.Encrypted))
		}
	})
}

// FuzzParsePlain checks parsePlain, the key field reader behind Open's
// CMAC check, directly: the first byte picks the key type, the rest is the
// decrypted part of a blob, of any length (FuzzOpen reaches parsePlain only
// with whole AES blocks). It never panics or changes its input, rejects
// with ErrBlob and a message, and an accepted key is exactly its fields in
// the blob layout followed by the firmware's padding. Seeds: the recorded
// blobs decrypted, and each field length at, one past and two past what is
// left (plainBoundaries).
func FuzzParsePlain(f *testing.F) {
	_, blobs := recordedFiles(f)
	k := Derive(dkekA)
	blk, _ := aes.NewCipher(k.Enc[:])
	for _, b := range blobs {
		bl, err := ParseBlob(b)
		if err != nil {
			f.Fatal(err)
		}
		plain := make([]byte, len(bl.Encrypted))
		cipher.NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(plain, bl.Encrypted)
		f.Add(append([]byte{byte(bl.Type)}, plain...))
	}
	for _, bd := range plainBoundaries() {
		f.Add(bd.in)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		in := bytes.Clone(data)
		// ParseBlob refuses other types before Open decrypts, so the
		// first byte picks one of the four; their own values map to
		// themselves (5%4, 6%4, 12%4, 15%4).
		typ := [4]KeyType{TypeEC, TypeRSA, TypeRSACRT, TypeAES}[data[0]%4]
		p := data[1:len(data):len(data)]
		key, err := parsePlain(typ, p)
		if !bytes.Equal(in, data) {
			t.Fatal("parsePlain modified its input")
		}
		if err != nil {
			checkRejection(t, err, ErrBlob)
			if key != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		var fields [][]byte
		switch typ {
		case TypeRSA:
			fields = [][]byte{key.D, key.N, key.E}
		case TypeRSACRT:
			fields = [][]byte{key.DP, key.DQ, key.P, key.PQ, key.Q, key.N, key.E}
		case TypeEC:
			fields = [][]byte{key.A, key.B, key.ECP, key.ECN, key.G, key.D, key.ECQ}
		case TypeAES:
			if key.Bits != 8*len(key.Secret) || !bytes.Equal(key.Secret, p[10:10+len(key.Secret)]) {
				t.Fatalf("AES key of %d bits, %d bytes, not the bytes after the size", key.Bits, len(key.Secret))
			}
			if !validPadding(p[10+len(key.Secret):]) {
				t.Fatal("accepted with bad padding")
			}
			return
		}
		if key.Bits != int(binary.BigEndian.Uint16(p[8:10])) {
			t.Fatalf("bits %d, size field % X", key.Bits, p[8:10])
		}
		enc := bytes.Clone(p[:10])
		for _, v := range fields {
			enc = binary.BigEndian.AppendUint16(enc, uint16(len(v)))
			enc = append(enc, v...)
		}
		if !bytes.HasPrefix(p, enc) || !validPadding(p[len(enc):]) {
			t.Fatalf("fields do not re-encode to the input:\n% X\n% X", enc, p)
		}
	})
}

// reseal turns a parsed blob into one that verifies under dkek: the KCV is
// dkek's, the encrypted part is taken as plain text and encrypted with
// Kenc, and the CMAC is computed with Kmac. It lets the fuzzer reach the
// key field parser behind the CMAC check.
func reseal(t *testing.T, bl *Blob, dkek []byte) []byte {
	t.Helper()
	k := Derive(dkek)
	out := *bl
	out.KCV = k.KCV
	blk, err := aes.NewCipher(k.Enc[:])
	if err != nil {
		t.Fatal(err)
	}
	out.Encrypted = make([]byte, len(bl.Encrypted))
	cipher.NewCBCEncrypter(blk, make([]byte, 16)).CryptBlocks(out.Encrypted, bl.Encrypted)
	raw := marshalBlob(&out)
	mac, err := cmac(k.MAC[:], raw[:len(raw)-16])
	if err != nil {
		t.Fatal(err)
	}
	copy(raw[len(raw)-16:], mac[:])
	return raw
}

// FuzzOpen checks Blob.Open with the recorded DKEK A. The first byte of
// the input chooses the mode: even, the rest is a blob opened as it is
// (only the recorded blobs pass the CMAC); odd, the rest is a blob whose
// encrypted part is taken as the plain text and which is re-sealed under
// DKEK A (reseal), so that the fuzzer drives the key field parser. Open
// never panics, rejects with one of its errors and a message, and a key it
// accepts round-trips: Seal under the same DKEK, then ParseBlob and Open,
// give the same key. Seeds: the recorded blobs in both modes and
// testdata/fuzz/FuzzOpen.
func FuzzOpen(f *testing.F) {
	_, blobs := recordedFiles(f)
	for _, b := range blobs {
		f.Add(append([]byte{0}, b...))
		// The recorded blobs decrypted: mode 1 turns them back into
		// themselves, but for the random bytes of the first block.
		bl, err := ParseBlob(b)
		if err != nil {
			f.Fatal(err)
		}
		k := Derive(dkekA)
		blk, _ := aes.NewCipher(k.Enc[:])
		plain := make([]byte, len(bl.Encrypted))
		cipher.NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(plain, bl.Encrypted)
		bl.Encrypted = plain
		f.Add(append([]byte{1}, marshalBlob(bl)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		bl, err := ParseBlob(data[1:])
		if err != nil {
			return // FuzzParseBlob covers the rejections
		}
		if data[0]&1 == 1 {
			if bl, err = ParseBlob(reseal(t, bl, dkekA)); err != nil {
				t.Fatalf("re-sealed blob rejected: %v", err)
			}
		}
		key, err := bl.Open(dkekA)
		if err != nil {
			if err.Error() == "" || !(errors.Is(err, ErrBlob) || errors.Is(err, ErrBadMAC) || errors.Is(err, ErrWrongDKEK)) {
				t.Fatalf("unexpected rejection %#v", err)
			}
			if key != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		if key.Type != bl.Type {
			t.Fatalf("key type %v from a blob of type %v", key.Type, bl.Type)
		}
		sealed, err := Seal(dkekA, key, bl.Allowed, rand.Reader)
		if err != nil {
			if key.Type == TypeRSACRT && err.Error() != "" {
				return // Seal writes what the firmware writes: never RSA-CRT
			}
			t.Fatalf("Seal of an opened %v key: %v", key.Type, err)
		}
		bl2, err := ParseBlob(sealed)
		if err != nil {
			t.Fatalf("ParseBlob(Seal(key)): %v", err)
		}
		if !bytes.Equal(bl2.Allowed, bl.Allowed) || bl2.Type != bl.Type || bl2.KCV != bl.KCV {
			t.Fatalf("sealed header differs: %+v, want %+v", bl2, bl)
		}
		key2, err := bl2.Open(dkekA)
		if err != nil {
			t.Fatalf("Open(Seal(key)): %v", err)
		}
		if !reflect.DeepEqual(key2, key) {
			t.Fatalf("round trip differs:\n%+v\n%+v", key2, key)
		}
	})
}
