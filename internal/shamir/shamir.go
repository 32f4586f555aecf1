package shamir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
)

const (
	// SecretSize is the length in bytes of the password protecting an n-of-m
	// DKEK share file (sc-hsm-tool generate_pwd_shares: 8 random bytes).
	SecretSize = 8
	// PrimeBits is the size of the prime sc-hsm-tool generates
	// (generatePrime is called with 64 bits).
	PrimeBits = 64
	// MinThreshold is the smallest threshold sc-hsm-tool accepts.
	MinThreshold = 2
	// MinTotal is the smallest number of shares sc-hsm-tool accepts.
	MinTotal = 3
	// MaxTotal is the largest number of shares (and the largest share ID):
	// sc-hsm-tool's createShares keeps the counts in an unsigned char.
	MaxTotal = 255
)

// Limits on redraws, so that a broken random source is an error, not a hang.
const (
	maxSecretDraws  = 64
	maxFieldDraws   = 64
	maxPrimeDraws   = 1 << 17 // about 1 in 700 candidates is a safe prime
	maxExhaustive   = 4096    // threshold-sized subsets checked one by one
	secretTopBitClr = 0x7f
)

// Share is one custodian's share: the point (ID, Value) of the polynomial.
type Share struct {
	// ID is the x coordinate, 1 to 255; sc-hsm-tool's "Share ID".
	ID int
	// Value is the y coordinate, below the prime; sc-hsm-tool's
	// "Share value".
	Value *big.Int
}

// Set is a prime and shares of one secret. The threshold is not part of it:
// sc-hsm-tool shows custodians only the prime, the ID and the value.
type Set struct {
	Prime  *big.Int
	Shares []Share
}

// CheckParams validates a threshold and a total as sc-hsm-tool's
// generate_pwd_shares does (total >= 3, threshold >= 2,
// threshold <= total), and also total <= 255. The messages name
// sc-hsm-tool's options.
func CheckParams(threshold, total int) error {
	switch {
	case total < MinTotal:
		return fmt.Errorf("--pwd-shares-total is %d: use %d or more shares", total, MinTotal)
	case total > MaxTotal:
		return fmt.Errorf("--pwd-shares-total is %d: use at most %d shares (share IDs are one byte)", total, MaxTotal)
	case threshold < MinThreshold:
		return fmt.Errorf("--pwd-shares-threshold is %d: use %d or more", threshold, MinThreshold)
	case threshold > total:
		return fmt.Errorf("--pwd-shares-threshold %d is larger than --pwd-shares-total %d: use a threshold of at most %d", threshold, total, total)
	}
	return nil
}

// Split draws a new secret with [NewSecret] and splits it with
// [SplitSecret]. All randomness comes from rand (normally crypto/rand.Reader).
// It returns the SecretSize-byte secret, which is the password for the DKEK
// share file, and the total shares, IDs 1 to total in order.
func Split(rand io.Reader, threshold, total int) (secret []byte, set *Set, err error) {
	if err := CheckParams(threshold, total); err != nil {
		return nil, nil, err
	}
	secret, err = NewSecret(rand)
	if err != nil {
		return nil, nil, err
	}
	set, err = SplitSecret(rand, secret, threshold, total)
	if err != nil {
		return nil, nil, err
	}
	return secret, set, nil
}

// NewSecret draws a password as sc-hsm-tool's generate_pwd_shares does: 8
// random bytes with the top bit of the first byte cleared. Unlike
// sc-hsm-tool it draws again when the first byte is then 0x00, because
// sc-hsm-tool would import such a secret as a 7-byte password (defect 1 in
// the package documentation).
func NewSecret(rand io.Reader) ([]byte, error) {
	secret := make([]byte, SecretSize)
	for range maxSecretDraws {
		if _, err := io.ReadFull(rand, secret); err != nil {
			return nil, fmt.Errorf("reading random bytes for the password: %w", err)
		}
		secret[0] &= secretTopBitClr
		if secret[0] != 0 {
			return secret, nil
		}
	}
	return nil, errors.New("the random source keeps producing a zero first byte: check the random source")
}

// SplitSecret splits secret into total shares of which threshold recombine
// it, following sc-hsm-tool's generate_pwd_shares, generatePrime, createShares
// and calculatePolynomialValue: a 64-bit safe prime with the two top bits
// set, threshold-1 coefficients uniform in [0, prime), and share i = (i, a(i)
// mod prime) for i = 1..total.
//
// secret must be SecretSize bytes with a first byte from 0x01 to 0x7f, as
// [NewSecret] makes it (top bit clear as in sc-hsm-tool; not zero because of
// defect 1).
//
// Before returning, SplitSecret checks that every threshold-sized subset of
// the shares recombines to secret with [Combine] (OpenSC PR #670 once made
// shares unrecoverable). When there are more than 4096 such subsets it checks
// the equivalent condition that the first threshold-1 shares together with
// each other share recombine to secret: then every share lies on the one
// polynomial of degree < threshold through (0, secret) and those shares, so
// any threshold of them determine it.
func SplitSecret(rand io.Reader, secret []byte, threshold, total int) (*Set, error) {
	if err := CheckParams(threshold, total); err != nil {
		return nil, err
	}
	if len(secret) != SecretSize {
		return nil, fmt.Errorf("the secret is %d bytes: it must be %d", len(secret), SecretSize)
	}
	if secret[0] == 0 {
		return nil, errors.New("the secret starts with a zero byte, which sc-hsm-tool would drop on import: draw another secret")
	}
	if secret[0]&^secretTopBitClr != 0 {
		return nil, errors.New("the secret has its top bit set: clear it as sc-hsm-tool does, so the secret stays below the prime")
	}
	s := new(big.Int).SetBytes(secret)
	set, err := splitHook(rand, s, threshold, total)
	if err != nil {
		return nil, err
	}
	if err := verify(secret, set, threshold); err != nil {
		return nil, err
	}
	return set, nil
}

// splitHook is the split SplitSecret uses. Tests replace it with a faulty
// split to check that SplitSecret refuses shares its self-check rejects,
// which the real split never produces.
var splitHook = split

// split does the arithmetic of SplitSecret for any secret below 2^63,
// without the checks (tests use it to build sets sc-hsm-tool could produce
// but SplitSecret refuses).
func split(rand io.Reader, s *big.Int, threshold, total int) (*Set, error) {
	p, err := safePrime(rand)
	if err != nil {
		return nil, err
	}
	if s.Cmp(p) >= 0 {
		return nil, errors.New("the secret is not below the prime: use a secret with the top bit clear")
	}
	// coef[0] = s, coef[k] = a_k (createShares).
	coef := make([]*big.Int, threshold)
	coef[0] = s
	for k := 1; k < threshold; k++ {
		if coef[k], err = randomBelow(rand, p); err != nil {
			return nil, err
		}
	}
	set := &Set{Prime: p, Shares: make([]Share, total)}
	for i := range total {
		x := big.NewInt(int64(i + 1))
		set.Shares[i] = Share{ID: i + 1, Value: evalPoly(coef, x, p)}
	}
	return set, nil
}

// evalPoly returns coef[0] + coef[1]·x + … mod p, by Horner's rule; the
// value is the one of sc-hsm-tool's calculatePolynomialValue.
func evalPoly(coef []*big.Int, x, p *big.Int) *big.Int {
	y := new(big.Int)
	for k := len(coef) - 1; k >= 0; k-- {
		y.Mul(y, x)
		y.Add(y, coef[k])
		y.Mod(y, p)
	}
	return y
}

// smallPrimes are the odd primes used to sieve prime candidates before the
// primality tests.
var smallPrimes = []uint64{
	3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71,
	73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151,
	157, 163, 167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227, 229, 233,
	239, 241, 251,
}

func hasSmallFactor(n uint64) bool {
	for _, q := range smallPrimes {
		if n%q == 0 {
			return n != q
		}
	}
	return false
}

// safePrime draws a PrimeBits-bit safe prime p (p and (p-1)/2 prime) with
// the two top bits set, as OpenSSL's BN_generate_prime_ex(bits=64, safe=1)
// called by sc-hsm-tool's generatePrime does. Such a prime is above 2^63, so
// above any secret with the top bit clear and any share ID.
func safePrime(rand io.Reader) (*big.Int, error) {
	var buf [8]byte
	p, q := new(big.Int), new(big.Int)
	for range maxPrimeDraws {
		if _, err := io.ReadFull(rand, buf[:]); err != nil {
			return nil, fmt.Errorf("reading random bytes for the prime: %w", err)
		}
		// Top two bits set; p ≡ 3 (mod 4) so that (p-1)/2 is odd.
		c := binary.BigEndian.Uint64(buf[:]) | 3<<62 | 3
		if hasSmallFactor(c) || hasSmallFactor(c>>1) {
			continue
		}
		// ProbablyPrime(0) is Baillie-PSW, exact below 2^64.
		q.SetUint64(c >> 1)
		if !q.ProbablyPrime(0) {
			continue
		}
		if p.SetUint64(c); p.ProbablyPrime(0) {
			return p, nil
		}
	}
	return nil, errors.New("no safe prime found in the random bytes read: check the random source")
}

// randomBelow returns a uniform integer in [0, p), as BN_rand_range in
// sc-hsm-tool's createShares, by rejection sampling.
func randomBelow(rand io.Reader, p *big.Int) (*big.Int, error) {
	bits := p.BitLen()
	buf := make([]byte, (bits+7)/8)
	v := new(big.Int)
	for range maxFieldDraws {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("reading random bytes for a coefficient: %w", err)
		}
		if r := bits % 8; r != 0 {
			buf[0] &= byte(1<<r - 1)
		}
		if v.SetBytes(buf).Cmp(p) < 0 {
			return v, nil
		}
	}
	return nil, errors.New("the random source keeps producing values above the prime: check the random source")
}

// Combine recombines the secret from the shares of set by Lagrange
// interpolation at x = 0 modulo the prime, as sc-hsm-tool's reconstructSecret
// does with the shares recreate_password_from_shares reads. It uses every
// share given; with fewer shares than the threshold, or a wrong share, the
// result is a wrong secret (detected only when the DKEK share file does not
// decrypt), as with sc-hsm-tool.
//
// The secret is returned as SecretSize bytes, left-padded with zeros: the
// password the share file was enciphered with, even where sc-hsm-tool's
// BN_bn2bin would drop a leading zero byte (defect 1 in the package
// documentation).
//
// Combine first checks the set with [Set.Validate].
func Combine(set *Set) ([]byte, error) {
	if err := set.Validate(); err != nil {
		return nil, err
	}
	s, err := interpolateZero(set.Prime, set.Shares)
	if err != nil {
		return nil, err
	}
	if s.BitLen() > 8*SecretSize {
		return nil, fmt.Errorf("the recombined secret has %d bits, more than a %d-byte password: check the prime", s.BitLen(), SecretSize)
	}
	return s.FillBytes(make([]byte, SecretSize)), nil
}

// interpolateZero returns f(0) mod p for the polynomial f of lowest degree
// through the shares: the sum of y_i · Π_{j≠i} x_j / (x_j − x_i).
func interpolateZero(p *big.Int, shares []Share) (*big.Int, error) {
	s := new(big.Int)
	num, den, t := new(big.Int), new(big.Int), new(big.Int)
	for i, si := range shares {
		num.SetInt64(1)
		den.SetInt64(1)
		xi := int64(si.ID)
		for j, sj := range shares {
			if i == j {
				continue
			}
			xj := int64(sj.ID)
			num.Mul(num, t.SetInt64(xj))
			num.Mod(num, p)
			den.Mul(den, t.SetInt64(xj-xi))
			den.Mod(den, p)
		}
		if den.ModInverse(den, p) == nil {
			return nil, fmt.Errorf("share ID %d cannot be used with this prime: check the prime and the IDs", si.ID)
		}
		t.Mul(num, den)
		t.Mod(t, p)
		t.Mul(t, si.Value)
		s.Add(s, t)
		s.Mod(s, p)
	}
	return s, nil
}

// verify checks that every threshold-sized subset of set recombines to
// secret (see SplitSecret for the equivalent check used when there are many).
func verify(secret []byte, set *Set, threshold int) error {
	n := len(set.Shares)
	check := func(idx []int) error {
		sub := &Set{Prime: set.Prime, Shares: make([]Share, len(idx))}
		for k, i := range idx {
			sub.Shares[k] = set.Shares[i]
		}
		got, err := Combine(sub)
		if err == nil && !slices.Equal(got, secret) {
			err = errors.New("they give a different secret")
		}
		if err != nil {
			ids := make([]int, len(idx))
			for k, i := range idx {
				ids[k] = set.Shares[i].ID
			}
			return fmt.Errorf("self-check of the new shares failed, shares %v do not recombine: %v; discard these shares and report a bug", ids, err)
		}
		return nil
	}
	idx := make([]int, threshold)
	for k := range idx {
		idx[k] = k
	}
	if binomialAtMost(n, threshold, maxExhaustive) {
		for {
			if err := check(idx); err != nil {
				return err
			}
			// Next combination in lexicographic order.
			k := threshold - 1
			for k >= 0 && idx[k] == n-threshold+k {
				k--
			}
			if k < 0 {
				return nil
			}
			idx[k]++
			for m := k + 1; m < threshold; m++ {
				idx[m] = idx[m-1] + 1
			}
		}
	}
	for j := threshold - 1; j < n; j++ {
		idx[threshold-1] = j
		if err := check(idx); err != nil {
			return err
		}
	}
	return nil
}

// binomialAtMost reports whether n choose k <= limit.
func binomialAtMost(n, k, limit int) bool {
	k = min(k, n-k) // C(n, 1..k) then only grows, so stopping early is right
	c := uint64(1)
	for i := range k {
		c = c * uint64(n-i) / uint64(i+1) // exact: a binomial at every step
		if c > uint64(limit) {
			return false
		}
	}
	return true
}
