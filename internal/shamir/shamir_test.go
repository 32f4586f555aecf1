package shamir

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// seeded returns a deterministic random stream.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// subsets calls fn with every subset of {0..n-1} of size k, or, when there
// are more than limit of them, with 200 random ones (20 when k > 50).
func subsets(n, k, limit int, fn func([]int)) {
	if binomialAtMost(n, k, limit) {
		var rec func(start int, cur []int)
		rec = func(start int, cur []int) {
			if len(cur) == k {
				fn(slices.Clone(cur))
				return
			}
			if len(cur)+n-start < k {
				return
			}
			for i := start; i < n; i++ {
				rec(i+1, append(cur, i))
			}
		}
		rec(0, nil)
		return
	}
	r := mrand.New(mrand.NewPCG(uint64(n), uint64(k)))
	samples := 200
	if k > 50 {
		samples = 20
	}
	for range samples {
		idx := r.Perm(n)[:k]
		slices.Sort(idx)
		fn(idx)
	}
}

func pick(set *Set, idx []int) *Set {
	sub := &Set{Prime: set.Prime}
	for _, i := range idx {
		sub.Shares = append(sub.Shares, set.Shares[i])
	}
	return sub
}

func TestCheckParams(t *testing.T) {
	tests := []struct {
		threshold, total int
		want             string // error substring; "" = valid
	}{
		{2, 3, ""},
		{3, 3, ""},
		{3, 5, ""},
		{2, 255, ""},
		{255, 255, ""},
		{2, 2, "--pwd-shares-total is 2: use 3 or more"},
		{1, 0, "--pwd-shares-total is 0: use 3 or more"},
		{2, 256, "--pwd-shares-total is 256: use at most 255"},
		{1, 3, "--pwd-shares-threshold is 1: use 2 or more"},
		{0, 3, "--pwd-shares-threshold is 0: use 2 or more"},
		{-1, 3, "--pwd-shares-threshold is -1"},
		{4, 3, "--pwd-shares-threshold 4 is larger than --pwd-shares-total 3: use a threshold of at most 3"},
	}
	for _, tt := range tests {
		err := CheckParams(tt.threshold, tt.total)
		if tt.want == "" {
			if err != nil {
				t.Errorf("CheckParams(%d, %d) = %v, want nil", tt.threshold, tt.total, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("CheckParams(%d, %d) = %v, want error containing %q", tt.threshold, tt.total, err, tt.want)
		}
		if _, _, err2 := Split(seeded(1), tt.threshold, tt.total); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("Split(%d, %d) error = %v, want %v", tt.threshold, tt.total, err2, err)
		}
	}
}

func checkPrime(t *testing.T, p *big.Int, total int) {
	t.Helper()
	q := new(big.Int).Rsh(p, 1)
	if p.BitLen() != PrimeBits || p.Bit(62) != 1 {
		t.Errorf("prime %s: want %d bits with the two top bits set", FormatHex(p), PrimeBits)
	}
	if !p.ProbablyPrime(20) || !q.ProbablyPrime(20) {
		t.Errorf("prime %s is not a safe prime", FormatHex(p))
	}
	if p.Cmp(big.NewInt(int64(total))) <= 0 {
		t.Errorf("prime %s not above total %d", FormatHex(p), total)
	}
}

func TestSplitRecombinesEverySubset(t *testing.T) {
	tests := []struct {
		threshold, total int
		rand             io.Reader
	}{
		{2, 3, seeded(1)},
		{2, 3, rand.Reader},
		{3, 3, seeded(2)},
		{3, 5, seeded(3)},
		{3, 5, rand.Reader},
		{5, 9, seeded(4)},
		{3, 12, seeded(5)},
		{7, 13, seeded(6)},  // 1716 subsets: checked one by one in Split
		{2, 255, seeded(7)}, // 32385 subsets: Split's reduced check
		{10, 40, seeded(8)},
		{255, 255, seeded(9)},
	}
	for _, tt := range tests {
		if testing.Short() && tt.threshold > 10 {
			continue
		}
		secret, set, err := Split(tt.rand, tt.threshold, tt.total)
		if err != nil {
			t.Fatalf("Split(%d, %d): %v", tt.threshold, tt.total, err)
		}
		if len(secret) != SecretSize || secret[0] == 0 || secret[0] > 0x7f {
			t.Errorf("Split(%d, %d) secret %x: want 8 bytes, first byte 01..7f", tt.threshold, tt.total, secret)
		}
		checkPrime(t, set.Prime, tt.total)
		if len(set.Shares) != tt.total {
			t.Fatalf("Split(%d, %d): %d shares", tt.threshold, tt.total, len(set.Shares))
		}
		for i, sh := range set.Shares {
			if sh.ID != i+1 || sh.Value.Sign() < 0 || sh.Value.Cmp(set.Prime) >= 0 {
				t.Fatalf("share %d: ID %d value %v", i, sh.ID, sh.Value)
			}
		}
		// Every threshold-sized subset (or a sample), and some larger ones,
		// give the secret; threshold-1 shares do not.
		for _, k := range []int{tt.threshold, min(tt.threshold+1, tt.total), tt.total} {
			subsets(tt.total, k, 5000, func(idx []int) {
				got, err := Combine(pick(set, idx))
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("Split(%d, %d): shares %v give %x, %v; want %x", tt.threshold, tt.total, idx, got, err, secret)
				}
			})
		}
		if tt.threshold > 2 {
			subsets(tt.total, tt.threshold-1, 50, func(idx []int) {
				got, err := Combine(pick(set, idx))
				if err != nil || bytes.Equal(got, secret) {
					t.Fatalf("Split(%d, %d): %d shares %v give %x, %v", tt.threshold, tt.total, len(idx), idx, got, err)
				}
			})
		}
		// What custodians are given reads back to the same set.
		var buf bytes.Buffer
		if err := set.Format(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ParseSet(&buf)
		if err != nil {
			t.Fatalf("Split(%d, %d): ParseSet(Format): %v", tt.threshold, tt.total, err)
		}
		if !setsEqual(back, set) {
			t.Errorf("Split(%d, %d): Format/ParseSet round trip differs", tt.threshold, tt.total)
		}
	}
}

func TestSplitDeterministic(t *testing.T) {
	s1, set1, err1 := Split(seeded(42), 3, 5)
	s2, set2, err2 := Split(seeded(42), 3, 5)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !bytes.Equal(s1, s2) || !setsEqual(set1, set2) {
		t.Error("Split is not a function of its random stream")
	}
}

func setsEqual(a, b *Set) bool {
	if a.Prime.Cmp(b.Prime) != 0 || len(a.Shares) != len(b.Shares) {
		return false
	}
	for i := range a.Shares {
		if a.Shares[i].ID != b.Shares[i].ID || a.Shares[i].Value.Cmp(b.Shares[i].Value) != 0 {
			return false
		}
	}
	return true
}

func TestNewSecret(t *testing.T) {
	tests := []struct {
		name   string
		stream string // hex of the random bytes
		want   string // hex secret, or "" for an error
	}{
		{"first draw", "7102030405060708", "7102030405060708"},
		{"top bit cleared", "8102030405060708", "0102030405060708"},
		{"zero first byte redrawn", "00aaaaaaaaaaaaaa" + "1102030405060708", "1102030405060708"},
		// 0x80 becomes 0x00 once the top bit is cleared: redraw.
		{"0x80 first byte redrawn", "80aaaaaaaaaaaaaa" + "80bbbbbbbbbbbbbb" + "ff02030405060708", "7f02030405060708"},
		{"short stream", "71020304", ""},
		{"only zero first bytes", strings.Repeat("00", 8*maxSecretDraws), ""},
	}
	for _, tt := range tests {
		got, err := NewSecret(bytes.NewReader(mustHex(t, tt.stream)))
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: NewSecret = %x, want an error", tt.name, got)
			}
			continue
		}
		if err != nil || hex.EncodeToString(got) != tt.want {
			t.Errorf("%s: NewSecret = %x, %v; want %s", tt.name, got, err, tt.want)
		}
	}
}

// TestSplitNeverLeadingZero checks Split redraws a secret whose first byte
// is zero (sc-hsm-tool defect 1): the first draw 80 xx... becomes 00 xx...
func TestSplitNeverLeadingZero(t *testing.T) {
	first := mustHex(t, "80c0ffeec0ffeec0")
	second := mustHex(t, "8123456789abcdef")
	secret, set, err := Split(io.MultiReader(bytes.NewReader(first), bytes.NewReader(second), seeded(3)), 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0123456789abcdef"; hex.EncodeToString(secret) != want {
		t.Errorf("secret %x, want %s (the second draw, top bit cleared)", secret, want)
	}
	if got, err := Combine(set); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("Combine = %x, %v", got, err)
	}
	for seed := range byte(200) {
		secret, _, err := Split(seeded(seed), 2, 3)
		if err != nil || secret[0] == 0 || secret[0]&0x80 != 0 {
			t.Fatalf("seed %d: secret %x, %v", seed, secret, err)
		}
	}
}

func TestSplitBrokenRandom(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		want string
	}{
		{"empty", bytes.NewReader(nil), "reading random bytes for the password"},
		{"secret only", bytes.NewReader(mustHex(t, "1122334455667788")), "reading random bytes for the prime"},
		{"zeros", zeros{}, "zero first byte"},
		{"failing", errReader{}, "reading random bytes for the password: broken"},
	}
	for _, tt := range tests {
		_, _, err := Split(tt.r, 2, 3)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Split error %v, want %q", tt.name, err, tt.want)
		}
	}
	// A constant stream never yields a safe prime.
	if _, err := safePrime(ones{}); err == nil {
		t.Error("safePrime(all ff) succeeded")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type ones struct{}

func (ones) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xff
	}
	return len(p), nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken") }

func TestSplitSecretRejects(t *testing.T) {
	tests := []struct {
		secret           string
		threshold, total int
		want             string
	}{
		{"01020304050607", 2, 3, "the secret is 7 bytes: it must be 8"},
		{"010203040506070809", 2, 3, "the secret is 9 bytes"},
		{"0002030405060708", 2, 3, "starts with a zero byte"},
		{"8102030405060708", 2, 3, "top bit set"},
		{"0102030405060708", 2, 2, "--pwd-shares-total is 2"},
	}
	for _, tt := range tests {
		_, err := SplitSecret(seeded(1), mustHex(t, tt.secret), tt.threshold, tt.total)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SplitSecret(%s, %d, %d) = %v, want %q", tt.secret, tt.threshold, tt.total, err, tt.want)
		}
	}
	set, err := SplitSecret(seeded(1), mustHex(t, "7fffffffffffffff"), 4, 6)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Combine(set); err != nil || hex.EncodeToString(got) != "7fffffffffffffff" {
		t.Errorf("Combine = %x, %v", got, err)
	}
}

// TestCombineLeadingZero builds a set as sc-hsm-tool could (a secret with a
// zero first byte) and checks Combine keeps the zero byte that sc-hsm-tool's
// BN_bn2bin drops (defect 1).
func TestCombineLeadingZero(t *testing.T) {
	for _, secret := range []string{"00c0ffeec0ffee01", "0000000000000001", "0000000000000000", "007fffffffffffff"} {
		s := new(big.Int).SetBytes(mustHex(t, secret))
		set, err := split(seeded(9), s, 3, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(mustHex(t, secret), set, 3); err != nil {
			t.Fatal(err)
		}
		got, err := Combine(pick(set, []int{0, 2, 3}))
		if err != nil || hex.EncodeToString(got) != secret {
			t.Errorf("Combine = %x, %v; want %s (8 bytes, left-padded)", got, err, secret)
		}
		if n := len(s.Bytes()); n >= SecretSize {
			t.Errorf("%s: minimal encoding has %d bytes; the defect needs fewer than 8", secret, n)
		}
	}
}

// recordedSet reads a testdata/sets file and its "# secret:" comment.
func recordedSet(t *testing.T, path string) (*Set, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var secret []byte
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# secret:"); ok {
			secret = mustHex(t, strings.TrimSpace(v))
		}
	}
	if len(secret) != SecretSize {
		t.Fatalf("%s: no 8-byte # secret: comment", path)
	}
	set, err := ParseSet(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return set, secret
}

// TestVectors checks the sets of testdata/sets, among them the two recorded
// from sc-hsm-tool (VECTORS.txt section 2): every subset of two or more
// shares recombines to the secret.
func TestVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/sets/*.txt")
	if err != nil || len(files) < 4 {
		t.Fatalf("vectors: %v, %v", files, err)
	}
	for _, f := range files {
		set, secret := recordedSet(t, f)
		checked := 0
		for k := 2; k <= len(set.Shares); k++ {
			subsets(len(set.Shares), k, 1000, func(idx []int) {
				checked++
				got, err := Combine(pick(set, idx))
				if err != nil || !bytes.Equal(got, secret) {
					t.Errorf("%s: shares %v give %x, %v; want %x", f, idx, got, err, secret)
				}
			})
		}
		if checked < 4 {
			t.Errorf("%s: only %d subsets", f, checked)
		}
	}
}

// TestIDsFromTen checks that IDs 10 and up are read in decimal, and that
// reading them as hex as sc-hsm-tool's BN_hex2bn does gives a wrong secret
// (defect 2).
func TestIDsFromTen(t *testing.T) {
	set, secret := recordedSet(t, "testdata/sets/ids-10-plus.txt")
	ids := []int{}
	for _, sh := range set.Shares {
		ids = append(ids, sh.ID)
	}
	if want := []int{9, 10, 11, 12, 23, 255}; !slices.Equal(ids, want) {
		t.Fatalf("IDs %v, want %v", ids, want)
	}
	for _, sh := range set.Shares[1:] {
		// What sc-hsm-tool does with the ID it printed: BN_bn2dec, then
		// BN_hex2bn.
		hexID, _ := new(big.Int).SetString(FormatID(sh.ID), 16)
		misread := &Set{Prime: set.Prime, Shares: []Share{set.Shares[0], {ID: int(hexID.Int64()), Value: sh.Value}}}
		// 255 reads as 0x255, beyond the IDs Validate accepts.
		if got, err := Combine(misread); err == nil && bytes.Equal(got, secret) {
			t.Errorf("ID %d read as %d: Combine = %x; want a wrong secret", sh.ID, hexID, got)
		}
		// Read in decimal, the ID works.
		id, err := ParseID(FormatID(sh.ID))
		if err != nil || id != sh.ID {
			t.Errorf("ParseID(%q) = %d, %v", FormatID(sh.ID), id, err)
		}
	}
	// The value of share 23 is printed with 7 bytes, as BN_bn2bin gives it.
	if got := FormatHex(set.Shares[4].Value); got != "3f:54:a4:02:90:e7:d6" {
		t.Errorf("share 23 prints as %s", got)
	}
}

// FormatID formats an ID as sc-hsm-tool prints it (BN_bn2dec).
func FormatID(id int) string { return big.NewInt(int64(id)).String() }

// TestWrongShares checks that wrong shares give a wrong secret, not an
// error or a panic, as sc-hsm-tool (which then fails to decrypt the file).
func TestWrongShares(t *testing.T) {
	set, secret := recordedSet(t, "testdata/sets/recorded-nofm.txt")
	v := func(i int) *big.Int { return set.Shares[i].Value }
	flipped := new(big.Int).Xor(v(1), big.NewInt(1))
	tests := []struct {
		name   string
		shares []Share
	}{
		// screens/screens-import-wrong.txt: share 3's value entered as ID 2.
		{"value of share 3 as ID 2", []Share{{1, v(0)}, {2, v(2)}}},
		{"IDs swapped", []Share{{1, v(1)}, {2, v(0)}}},
		{"one bit flipped", []Share{{1, v(0)}, {2, flipped}}},
		{"zero value", []Share{{1, v(0)}, {3, new(big.Int)}}},
		{"one good share of three", []Share{{1, v(0)}, {2, v(1)}, {3, flipped}}},
	}
	for _, tt := range tests {
		got, err := Combine(&Set{Prime: set.Prime, Shares: tt.shares})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if len(got) != SecretSize || bytes.Equal(got, secret) {
			t.Errorf("%s: Combine = %x", tt.name, got)
		}
	}
}

// TestVerifyDetectsBadShares checks the self-check of SplitSecret on sets
// that do not recombine, on both of its paths.
func TestVerifyDetectsBadShares(t *testing.T) {
	tests := []struct {
		threshold, total, bad int
	}{
		{2, 3, 2},
		{3, 5, 0},
		{3, 5, 4},
		{2, 255, 0},   // reduced check, a base share
		{2, 255, 254}, // reduced check, the last share
		{10, 40, 20},
	}
	for _, tt := range tests {
		secret := mustHex(t, "1234567890abcdef")
		set, err := split(seeded(byte(tt.total)), new(big.Int).SetBytes(secret), tt.threshold, tt.total)
		if err != nil {
			t.Fatal(err)
		}
		if err := verify(secret, set, tt.threshold); err != nil {
			t.Fatalf("%d-of-%d: good set rejected: %v", tt.threshold, tt.total, err)
		}
		sh := &set.Shares[tt.bad]
		sh.Value = new(big.Int).Add(sh.Value, big.NewInt(1))
		sh.Value.Mod(sh.Value, set.Prime)
		err = verify(secret, set, tt.threshold)
		if err == nil || !strings.Contains(err.Error(), "self-check of the new shares failed") {
			t.Errorf("%d-of-%d, share %d changed: verify = %v", tt.threshold, tt.total, tt.bad+1, err)
		}
	}
}

func TestValidate(t *testing.T) {
	p := new(big.Int).SetUint64(0xe165e9720d51951f)
	v := big.NewInt(5)
	tests := []struct {
		name string
		set  Set
		want string
	}{
		{"ok", Set{p, []Share{{1, v}, {255, v}}}, ""},
		{"nil prime", Set{nil, []Share{{1, v}, {2, v}}}, "no prime given"},
		{"not prime", Set{new(big.Int).SetUint64(0xe165e9720d51951d), []Share{{1, v}, {2, v}}}, "is not a prime number"},
		{"zero prime", Set{big.NewInt(0), []Share{{1, v}, {2, v}}}, "00 is not a prime number"},
		{"prime too big", Set{new(big.Int).Lsh(p, 8), []Share{{1, v}, {2, v}}}, "has 72 bits"},
		{"one share", Set{p, []Share{{1, v}}}, "1 share(s) given"},
		{"no shares", Set{p, nil}, "0 share(s) given"},
		{"ID 0", Set{p, []Share{{0, v}, {2, v}}}, "share ID 0 is out of range"},
		{"ID 256", Set{p, []Share{{1, v}, {256, v}}}, "share ID 256 is out of range"},
		{"duplicate", Set{p, []Share{{2, v}, {2, big.NewInt(6)}}}, "share ID 2 is given twice"},
		{"nil value", Set{p, []Share{{1, v}, {2, nil}}}, "share ID 2 has no value"},
		{"negative value", Set{p, []Share{{1, v}, {2, big.NewInt(-1)}}}, "is not below the prime"},
		{"value = prime", Set{p, []Share{{1, v}, {2, p}}}, "value e1:65:e9:72:0d:51:95:1f of share ID 2 is not below the prime"},
		{"ID >= small prime", Set{big.NewInt(7), []Share{{1, v}, {7, v}}}, "share ID 7 is not below the prime 07"},
		{"small prime", Set{big.NewInt(257), []Share{{1, v}, {2, v}}}, ""},
	}
	for _, tt := range tests {
		err := tt.set.Validate()
		_, cerr := Combine(&tt.set)
		if tt.want == "" {
			if err != nil || cerr != nil {
				t.Errorf("%s: Validate = %v, Combine error %v", tt.name, err, cerr)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate = %v, want %q", tt.name, err, tt.want)
		}
		if cerr == nil {
			t.Errorf("%s: Combine accepted the set", tt.name)
		}
	}
}

func TestBinomialAtMost(t *testing.T) {
	tests := []struct {
		n, k, limit int
		want        bool
	}{
		{3, 2, 3, true},
		{3, 2, 2, false},
		{9, 5, 126, true},
		{9, 5, 125, false},
		{13, 7, 4096, true},   // 1716
		{255, 2, 4096, false}, // 32385
		{255, 255, 1, true},
		{255, 254, 255, true},
		{255, 254, 254, false},
		{255, 128, 4096, false},
		{40, 10, 4096, false},
	}
	for _, tt := range tests {
		if got := binomialAtMost(tt.n, tt.k, tt.limit); got != tt.want {
			t.Errorf("binomialAtMost(%d, %d, %d) = %v", tt.n, tt.k, tt.limit, got)
		}
	}
}

// TestSplitRefusesFailedSelfCheck injects a faulty split (one share off by
// one) into SplitSecret and Split: both must return the self-check's error
// and no share, so that the CLI, which shows or writes shares only when
// Split returns no error, never shows or writes one. Guards against
// SplitSecret ignoring the result of its own subset verification, and
// against returning the shares alongside the error. Both of verify's paths
// are covered: every subset (3-of-5) and the reduced check (2-of-255).
func TestSplitRefusesFailedSelfCheck(t *testing.T) {
	defer func(h func(io.Reader, *big.Int, int, int) (*Set, error)) { splitHook = h }(splitHook)
	for _, tt := range []struct{ threshold, total, bad int }{{3, 5, 4}, {2, 255, 254}} {
		calls := 0
		splitHook = func(rand io.Reader, s *big.Int, threshold, total int) (*Set, error) {
			calls++
			set, err := split(rand, s, threshold, total)
			if err != nil {
				return nil, err
			}
			sh := &set.Shares[tt.bad]
			sh.Value = new(big.Int).Add(sh.Value, big.NewInt(1))
			sh.Value.Mod(sh.Value, set.Prime)
			return set, nil
		}
		secret := mustHex(t, "1234567890abcdef")
		set, err := SplitSecret(seeded(1), secret, tt.threshold, tt.total)
		if err == nil || !strings.Contains(err.Error(), "self-check of the new shares failed") || set != nil {
			t.Errorf("%d-of-%d: SplitSecret with a faulty split: set returned %v, error %v; want no set and the self-check error", tt.threshold, tt.total, set != nil, err)
		}
		pw, set, err := Split(seeded(2), tt.threshold, tt.total)
		if err == nil || !strings.Contains(err.Error(), "self-check of the new shares failed") || set != nil || pw != nil {
			t.Errorf("%d-of-%d: Split with a faulty split: password returned %v, set returned %v, error %v; want no password, no set and the self-check error", tt.threshold, tt.total, pw != nil, set != nil, err)
		}
		if calls != 2 {
			t.Fatalf("the faulty split ran %d times, want 2", calls)
		}
	}
}
