package dkekshare

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// addShareFiles adds every .pbe file that sc-hsm-tool wrote
// (testdata/pico-hsm/vectors), prefixed by prefix.
func addShareFiles(f *testing.F, prefix []byte) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(realVectors, "*.pbe"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no share files in %s: %v", realVectors, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(bytes.Clone(prefix), b...))
	}
}

// checkFormatError fails unless err is one of the package's errors and has
// a message.
func checkFormatError(t *testing.T, err error, allowed ...error) {
	t.Helper()
	if err == nil || err.Error() == "" {
		t.Fatalf("rejection without a message: %#v", err)
	}
	for _, e := range allowed {
		if errors.Is(err, e) {
			return
		}
	}
	t.Fatalf("unexpected error %v", err)
}

// FuzzCheck checks that Check never panics, rejects with ErrNotShare or
// ErrTruncated and a message, and accepts exactly the 64-byte files that
// start with the magic, returning a copy of their salt. Seeds: the share
// files of testdata/pico-hsm/vectors and testdata/fuzz/FuzzCheck.
func FuzzCheck(f *testing.F) {
	addShareFiles(f, nil)
	f.Add([]byte("Salted_"))
	f.Add([]byte("U2FsdGVkX1"))
	f.Fuzz(func(t *testing.T, file []byte) {
		in := bytes.Clone(file)
		salt, err := Check(file)
		if !bytes.Equal(in, file) {
			t.Fatal("Check modified its input")
		}
		valid := len(file) == FileSize && bytes.HasPrefix(file, []byte(magic))
		if err != nil {
			checkFormatError(t, err, ErrNotShare, ErrTruncated)
			if salt != nil || valid {
				t.Fatalf("rejected a valid file (salt %x): %v", salt, err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted %d bytes starting % X", len(file), file[:min(len(file), 8)])
		}
		if !bytes.Equal(salt, file[saltOffset:ciphertextOffset]) {
			t.Fatalf("salt %x, want %x", salt, file[saltOffset:ciphertextOffset])
		}
		salt[0] ^= 0xFF
		if !bytes.Equal(in, file) {
			t.Fatal("the salt aliases the file")
		}
	})
}

// FuzzOpen checks Open with 1 iteration instead of 10,000,000 (the count
// changes nothing in what is parsed). The first byte of the input is the
// length of the password that follows; the rest is the file. Open never
// panics, rejects with one of the package's errors and a message, and a
// file it accepts round-trips: Seal of the share with the same password and
// salt writes the file again, byte for byte. Independently, the first 40
// bytes of the file, used as a share and a salt, are sealed and must open
// to the same share, so that every run also takes the accepting path.
// Seeds: the count-1 rows of testdata/small-count.txt (which open), the
// share files of testdata/pico-hsm/vectors (10,000,000 iterations, so they
// do not open here) and testdata/fuzz/FuzzOpen.
func FuzzOpen(f *testing.F) {
	f.Cleanup(SetIterationsForTesting(1))
	rows, err := os.ReadFile(filepath.Join("testdata", "small-count.txt"))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range bytes.Split(rows, []byte("\n")) {
		fs := bytes.Fields(line)
		if len(fs) != 7 || fs[0][0] == '#' {
			continue
		}
		if n, _ := strconv.Atoi(string(fs[0])); n != 1 {
			continue
		}
		pw, file := seedHex(f, string(fs[1])), seedHex(f, string(fs[6]))
		f.Add(append(append([]byte{byte(len(pw))}, pw...), file...))
	}
	addShareFiles(f, append([]byte{15}, "seed-share-1-Pw"...))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		n := min(int(data[0]), len(data)-1)
		password, file := data[1:1+n], data[1+n:]
		in := bytes.Clone(file)
		share, err := Open(file, password, nil)
		if !bytes.Equal(in, file) {
			t.Fatal("Open modified the file")
		}
		if err != nil {
			checkFormatError(t, err, ErrNotShare, ErrTruncated, ErrWrongPassword)
			if share != nil {
				t.Fatalf("share %x returned with %v", share, err)
			}
		} else {
			if len(share) != ShareSize {
				t.Fatalf("share of %d bytes", len(share))
			}
			again, err := Seal(share, password, bytes.NewReader(file[saltOffset:ciphertextOffset]), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, file) {
				t.Fatalf("Seal(Open(file)) differs:\n% X\n% X", again, file)
			}
		}
		if len(file) < ShareSize+SaltSize {
			return
		}
		sealed, err := Seal(file[:ShareSize], password, bytes.NewReader(file[ShareSize:ShareSize+SaltSize]), nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(sealed, password, nil)
		if err != nil || !bytes.Equal(got, file[:ShareSize]) {
			t.Fatalf("Open(Seal(share)) = %x, %v; want %x", got, err, file[:ShareSize])
		}
	})
}

// seedHex decodes a field of testdata/small-count.txt ("-" is empty).
func seedHex(f *testing.F, field string) []byte {
	f.Helper()
	if field == "-" {
		return nil
	}
	b, err := hex.DecodeString(field)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
