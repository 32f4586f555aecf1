package dkekshare

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// realVectors is the directory of the share files made by sc-hsm-tool.
const realVectors = "../../testdata/pico-hsm/vectors"

// readRows reads a whitespace-separated vector file, skipping # comments.
func readRows(t *testing.T, name string, fields int) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		row := strings.Fields(line)
		if len(row) != fields {
			t.Fatalf("%s: %d fields, want %d: %q", name, len(row), fields, line)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return rows
}

// unhex decodes a vector field; "-" is the empty string.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	if s == "-" {
		return []byte{}
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallCountVector is a row of testdata/small-count.txt.
type smallCountVector struct {
	count                                int
	password, salt, key, iv, share, file []byte
}

func smallCountVectors(t *testing.T) []smallCountVector {
	var vs []smallCountVector
	for _, r := range readRows(t, "small-count.txt", 7) {
		count, err := strconv.Atoi(r[0])
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, smallCountVector{count, unhex(t, r[1]), unhex(t, r[2]), unhex(t, r[3]),
			unhex(t, r[4]), unhex(t, r[5]), unhex(t, r[6])})
	}
	return vs
}

func (v smallCountVector) name() string {
	return "count " + strconv.Itoa(v.count) + "/password " + strconv.Itoa(len(v.password)) + " bytes " + hex.EncodeToString(v.salt)
}

// TestDeriveKeyIVSmallCounts checks the key derivation against
// EVP_BytesToKey as computed by OpenSSL.
func TestDeriveKeyIVSmallCounts(t *testing.T) {
	for _, v := range smallCountVectors(t) {
		t.Run(v.name(), func(t *testing.T) {
			key, iv := deriveKeyIV(v.password, v.salt, v.count, nil)
			if !bytes.Equal(key[:], v.key) || !bytes.Equal(iv[:], v.iv) {
				t.Fatalf("got key %x iv %x, want key %x iv %x", key, iv, v.key, v.iv)
			}
		})
	}
}

// TestSealOpenSmallCounts checks that Seal writes the very bytes OpenSSL
// writes and that Open reads them, through the public API with the test
// iteration count.
func TestSealOpenSmallCounts(t *testing.T) {
	for _, v := range smallCountVectors(t) {
		t.Run(v.name(), func(t *testing.T) {
			defer SetIterationsForTesting(v.count)()
			file, err := Seal(v.share, v.password, bytes.NewReader(v.salt), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file, v.file) {
				t.Fatalf("Seal: got %x, want %x", file, v.file)
			}
			share, err := Open(v.file, v.password, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(share, v.share) {
				t.Fatalf("Open: got %x, want %x", share, v.share)
			}
			wrong := append(bytes.Clone(v.password), 'x')
			if _, err := Open(v.file, wrong, nil); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("Open with a wrong password: got %v, want ErrWrongPassword", err)
			}
		})
	}
}

// realVector is a row of testdata/real-keys.txt.
type realVector struct {
	file, password, salt, key, iv, share []byte
	name                                 string
}

func realVectorsFor(t *testing.T) []realVector {
	var vs []realVector
	for _, r := range readRows(t, "real-keys.txt", 6) {
		file, err := os.ReadFile(filepath.Join(realVectors, r[0]))
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, realVector{file, unhex(t, r[1]), unhex(t, r[2]), unhex(t, r[3]),
			unhex(t, r[4]), unhex(t, r[5]), r[0]})
	}
	return vs
}

// TestRealFilesWithOpenSSLKeys checks the file format against every share
// file made by sc-hsm-tool, with the key and IV OpenSSL derived for it (so
// without spending 10,000,000 iterations per file): the salt is where Check
// finds it, decryption gives the share, and encryption gives the file back
// byte for byte.
func TestRealFilesWithOpenSSLKeys(t *testing.T) {
	for _, v := range realVectorsFor(t) {
		t.Run(v.name, func(t *testing.T) {
			salt, err := Check(v.file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(salt, v.salt) {
				t.Fatalf("salt %x, want %x", salt, v.salt)
			}
			key, iv := [32]byte(v.key), [16]byte(v.iv)
			share, err := decrypt(v.file, &key, &iv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(share, v.share) {
				t.Fatalf("share %x, want %x", share, v.share)
			}
			file := make([]byte, FileSize)
			copy(file, v.file[:ciphertextOffset])
			if err := encrypt(file, share, &key, &iv); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(file, v.file) {
				t.Fatalf("re-encrypted %x, want %x", file, v.file)
			}
		})
	}
}

// TestOpenRealFilesFullCount opens real sc-hsm-tool files with the full
// 10,000,000 iterations: about 3 s of CPU each, so only two files (one with
// -short), chosen for their passwords: empty, and 8 binary bytes. The other
// files are covered by TestRealFilesWithOpenSSLKeys.
func TestOpenRealFilesFullCount(t *testing.T) {
	names := map[string]bool{"dkek-share-empty.pbe": true}
	if !testing.Short() {
		names["dkek-share-nofm.pbe"] = true
	}
	if iterations() != Iterations {
		t.Fatal("iteration count left changed by another test")
	}
	for _, v := range realVectorsFor(t) {
		if !names[v.name] {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			var calls, last int
			share, err := Open(v.file, v.password, func(done, total int) {
				calls++
				if total != 3*Iterations || done <= last || done > total {
					t.Errorf("progress(%d, %d) after %d", done, total, last)
				}
				last = done
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(share, v.share) {
				t.Fatalf("share %x, want %x", share, v.share)
			}
			if last != 3*Iterations || calls > 101 {
				t.Errorf("%d progress calls ending at %d, want at most 101 ending at %d", calls, last, 3*Iterations)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	valid := append([]byte(magic+"\x01\x02\x03\x04\x05\x06\x07\x08"), make([]byte, 48)...)
	tests := []struct {
		name    string
		file    []byte
		want    error
		wantMsg string
	}{
		{"valid", valid, nil, ""},
		{"empty", nil, ErrTruncated, "wrong size for a DKEK share file: it is 0 bytes, a share file is 64 bytes"},
		{"part of the magic", []byte("Salte"), ErrTruncated, "it is 5 bytes"},
		{"short", valid[:63], ErrTruncated, "wrong size for a DKEK share file: it is 63 bytes, a share file is 64 bytes"},
		{"long", append(bytes.Clone(valid), '\n'), ErrTruncated, "it is 65 bytes, a share file is 64 bytes"},
		{"short text", []byte("hello"), ErrNotShare, "not a DKEK share file: it does not start with Salted__"},
		{"wrong magic", append([]byte("salted__"), valid[8:]...), ErrNotShare, "not a DKEK share file: it does not start with Salted__"},
		{"base64 of a share", []byte("U2FsdGVkX1" + strings.Repeat("A", 76)), ErrNotShare, "does not start with Salted__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			salt, err := Check(tt.file)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not contain %q", err, tt.wantMsg)
				}
				if salt != nil {
					t.Errorf("salt %x returned with an error", salt)
				}
				// Open reports format errors before spending time on the key.
				if _, oerr := Open(tt.file, []byte("pw"), func(int, int) { t.Error("key derived for a malformed file") }); oerr.Error() != err.Error() {
					t.Errorf("Open: %v, want %v", oerr, err)
				}
				return
			}
			if !bytes.Equal(salt, valid[8:16]) {
				t.Errorf("salt %x, want %x", salt, valid[8:16])
			}
		})
	}
}

// TestOpenRejects checks that every decryption failure is ErrWrongPassword
// with its exact message, whatever the padding looks like.
func TestOpenRejects(t *testing.T) {
	defer SetIterationsForTesting(3)()
	share := bytes.Repeat([]byte{0xa5}, ShareSize)
	password := []byte("correct horse")
	file, err := Seal(share, password, bytes.NewReader([]byte("saltsalt")), nil)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		f := bytes.Clone(file)
		f[i] ^= 0x01
		return f
	}
	tests := []struct {
		name     string
		file     []byte
		password []byte
	}{
		{"wrong password", file, []byte("correct horsf")},
		{"empty password", file, nil},
		{"salt changed", flip(8), password},
		{"second block changed", flip(16 + 16), password},
		{"last block changed", flip(63), password},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Open(tt.file, tt.password, nil)
			if !errors.Is(err, ErrWrongPassword) || err.Error() != "wrong password or not a DKEK share" {
				t.Fatalf("got %x, %v; want ErrWrongPassword", got, err)
			}
		})
	}

	// A valid PKCS#7 padding other than a full block (here 0x01, as a wrong
	// password produces about once in 256 tries) is rejected too, although
	// EVP_DecryptFinal_ex would accept it.
	key, _ := deriveKeyIV(password, file[saltOffset:ciphertextOffset], 3, nil)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		t.Fatal(err)
	}
	odd := bytes.Clone(file)
	last := append(bytes.Repeat([]byte{0x10}, 15), 0x01) // P_3 with a one-byte pad
	subtle.XORBytes(last, last, file[ciphertextOffset+16:ciphertextOffset+32])
	block.Encrypt(odd[ciphertextOffset+32:], last) // C_3 = AES(P_3 XOR C_2)
	if _, err := Open(odd, password, nil); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("one-byte padding: got %v, want ErrWrongPassword", err)
	}
}

func TestSealErrors(t *testing.T) {
	defer SetIterationsForTesting(1)()
	tests := []struct {
		name    string
		share   []byte
		rand    *bytes.Reader
		wantMsg string
	}{
		{"short share", make([]byte, 31), bytes.NewReader(make([]byte, 8)), "a DKEK share is 32 bytes, not 31"},
		{"long share", make([]byte, 33), bytes.NewReader(make([]byte, 8)), "a DKEK share is 32 bytes, not 33"},
		{"short salt", make([]byte, 32), bytes.NewReader(make([]byte, 7)), "generating salt: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file, err := Seal(tt.share, nil, tt.rand, nil)
			if err == nil || err.Error() != tt.wantMsg {
				t.Fatalf("got %x, %v; want error %q", file, err, tt.wantMsg)
			}
		})
	}
	boom := errors.New("no entropy")
	if _, err := Seal(make([]byte, 32), nil, iotest.ErrReader(boom), nil); !errors.Is(err, boom) {
		t.Fatalf("got %v, want it to wrap %v", err, boom)
	}
}

func TestProgress(t *testing.T) {
	tests := []struct {
		count    int
		maxCalls int
	}{
		{1, 3}, {2, 6}, {33, 99}, {34, 101}, {1000, 101}, {12345, 101},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.count), func(t *testing.T) {
			var calls, last int
			deriveKeyIV([]byte("pw"), []byte("12345678"), tt.count, func(done, total int) {
				calls++
				if total != 3*tt.count || done <= last || done > total {
					t.Errorf("progress(%d, %d) after %d", done, total, last)
				}
				last = done
			})
			if last != 3*tt.count || calls > tt.maxCalls {
				t.Errorf("%d calls ending at %d, want at most %d ending at %d", calls, last, tt.maxCalls, 3*tt.count)
			}
		})
	}
}

func TestSetIterationsForTesting(t *testing.T) {
	restore := SetIterationsForTesting(5)
	if got := iterations(); got != 5 {
		t.Fatalf("iterations() = %d after SetIterationsForTesting(5)", got)
	}
	inner := SetIterationsForTesting(7)
	inner()
	if got := iterations(); got != 5 {
		t.Fatalf("iterations() = %d after the inner restore, want 5", got)
	}
	restore()
	if got := iterations(); got != Iterations {
		t.Fatalf("iterations() = %d after restore, want %d", got, Iterations)
	}
	for _, n := range []int{0, -1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetIterationsForTesting(%d) did not panic", n)
				}
			}()
			SetIterationsForTesting(n)
		}()
	}
}

func TestDeriveKeyIVPanicsOnBadSalt(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a 7-byte salt")
		}
	}()
	DeriveKeyIV(nil, make([]byte, 7), nil)
}

// TestOpenRejectsOneBadPadByte re-encrypts the padding block of a share
// file so that exactly one of its 16 bytes is not 0x10, with the share and
// the other pad bytes right. Open must refuse each with ErrWrongPassword and
// return no share. The first pad byte guards against a check of only the
// last byte (what the PKCS#7 length is read from) and against an unpad that
// checks the n-1 bytes before the last instead of n; the middle and the
// last guard against a check that skips them.
func TestOpenRejectsOneBadPadByte(t *testing.T) {
	defer SetIterationsForTesting(3)()
	share := bytes.Repeat([]byte{0xa5}, ShareSize)
	password := []byte("correct horse")
	file, err := Seal(share, password, bytes.NewReader([]byte("saltsalt")), nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := deriveKeyIV(password, file[saltOffset:ciphertextOffset], 3, nil)
	block, err := aes.NewCipher(key[:])
	if err != nil {
		t.Fatal(err)
	}
	// withPad returns file with the padding block (P_3, plain bytes 32-47)
	// replaced by pad: C_3 = AES(P_3 XOR C_2).
	withPad := func(pad []byte) []byte {
		f := bytes.Clone(file)
		p := bytes.Clone(pad)
		subtle.XORBytes(p, p, file[ciphertextOffset+16:ciphertextOffset+32])
		block.Encrypt(f[ciphertextOffset+32:], p)
		return f
	}
	good := bytes.Repeat([]byte{byte(padSize)}, padSize)
	if got, err := Open(withPad(good), password, nil); err != nil || !bytes.Equal(got, share) {
		t.Fatalf("re-encrypted good padding: %x, %v", got, err)
	}
	for _, tt := range []struct {
		name string
		at   int
		val  byte
	}{
		{"first pad byte 0x11", 0, 0x11},
		{"first pad byte 0x00", 0, 0x00},
		{"middle pad byte 0x0f", 7, 0x0f},
		{"last pad byte 0x01", 15, 0x01},
	} {
		pad := bytes.Clone(good)
		pad[tt.at] = tt.val
		got, err := Open(withPad(pad), password, nil)
		if !errors.Is(err, ErrWrongPassword) || got != nil {
			t.Errorf("%s (% x): got %x, %v; want no share and ErrWrongPassword", tt.name, pad, got, err)
		}
	}
}
