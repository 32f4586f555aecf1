package dkekshare

import (
	"context"
	"encoding/binary"
	"sync/atomic"
)

// Iterations is the EVP_BytesToKey iteration count sc-hsm-tool uses for DKEK
// share files (OpenSC src/tools/sc-hsm-tool.c: main sets opt_iter = 10000000,
// no option changes it, and passes it as iter to create_dkek_share and
// import_dkek_share).
const Iterations = 10_000_000

// SaltSize is the length of the EVP_BytesToKey salt (PKCS5_SALT_LEN in
// OpenSSL crypto/evp/evp_key.c; bytes 8-15 of a share file).
const SaltSize = 8

// testIterations overrides Iterations when non-zero; only
// SetIterationsForTesting sets it.
var testIterations atomic.Int64

func iterations() int {
	if n := testIterations.Load(); n != 0 {
		return int(n)
	}
	return Iterations
}

// SetIterationsForTesting makes DeriveKeyIV, Seal and Open use n iterations
// instead of Iterations until the returned restore function is called. It is
// for tests only (tests that run the real command code in-process cannot
// afford 10,000,000 iterations); files sealed with any other count cannot be
// opened by sc-hsm-tool. It affects the whole process, so tests that use it
// must not run in parallel with tests that depend on the count. It panics if
// n < 1. There is deliberately no flag or environment variable for this.
func SetIterationsForTesting(n int) (restore func()) {
	if n < 1 {
		panic("dkekshare: iteration count must be at least 1")
	}
	old := testIterations.Swap(int64(n))
	return func() { testIterations.Store(old) }
}

// DeriveKeyIV derives the AES-256-CBC key and IV of a DKEK share file from
// the password bytes and the 8-byte salt, exactly as sc-hsm-tool does with
// EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), salt, password, len, iter,
// key, iv) (OpenSC src/tools/sc-hsm-tool.c create_dkek_share and
// import_dkek_share; the algorithm is OpenSSL crypto/evp/evp_key.c
// EVP_BytesToKey, documented in OpenSSL's EVP_BytesToKey(3)):
//
//	D_1 = MD5^count(password || salt)
//	D_i = MD5^count(D_(i-1) || password || salt)
//	key || iv = first 32+16 bytes of D_1 || D_2 || D_3
//
// where MD5^count hashes once and then re-hashes the 16-byte digest count-1
// more times, and count is Iterations. The password is used as the exact bytes
// given (no terminator, no normalisation) and may be empty. This is not
// PBKDF2.
//
// If progress is not nil it is called about 100 times with the number of MD5
// computations done so far and their total (3*count), the last time with
// done == total.
//
// DeriveKeyIV panics if salt is not SaltSize bytes long. The caller should
// clear the returned key and IV after use.
func DeriveKeyIV(password, salt []byte, progress func(done, total int)) (key [32]byte, iv [16]byte) {
	if len(salt) != SaltSize {
		panic("dkekshare: salt must be 8 bytes")
	}
	return deriveKeyIV(password, salt, iterations(), progress)
}

// DeriveKeyIVContext is DeriveKeyIV that stops early when ctx is done,
// and then returns ctx's error and a zero key and IV. It looks at ctx
// about every cancelStep MD5 computations (a few milliseconds), so that a
// derivation that is no longer needed (another share of the same run has
// failed) gives its core back at once.
func DeriveKeyIVContext(ctx context.Context, password, salt []byte, progress func(done, total int)) (key [32]byte, iv [16]byte, err error) {
	if len(salt) != SaltSize {
		panic("dkekshare: salt must be 8 bytes")
	}
	return deriveKeyIVContext(ctx, password, salt, iterations(), progress)
}

// cancelStep is how many chained MD5 computations run between two looks
// at the context: 2^16, about 7 ms at some 110 ns each.
const cancelStep = 1 << 16

// meter spreads about 100 progress calls over total steps.
type meter struct {
	fn               func(done, total int)
	done, total      int
	step, nextReport int
}

func newMeter(fn func(done, total int), total int) *meter {
	step := max((total+99)/100, 1)
	return &meter{fn: fn, total: total, step: step, nextReport: min(step, total)}
}

// budget is how many steps may run before the next report is due.
func (m *meter) budget() int {
	if m.fn == nil {
		return m.total - m.done
	}
	return max(m.nextReport-m.done, 1)
}

func (m *meter) add(n int) {
	m.done += n
	if m.fn != nil && m.done >= m.nextReport {
		m.fn(m.done, m.total)
		m.nextReport = min(m.done+m.step, m.total)
	}
}

// deriveKeyIV is DeriveKeyIV with an explicit count (count >= 1).
func deriveKeyIV(password, salt []byte, count int, progress func(done, total int)) (key [32]byte, iv [16]byte) {
	key, iv, _ = deriveKeyIVContext(context.Background(), password, salt, count, progress)
	return key, iv
}

// deriveKeyIVContext is DeriveKeyIVContext with an explicit count. A ctx
// that can never be done (context.Background) costs nothing: the chain
// then runs in the same steps as without one.
func deriveKeyIVContext(ctx context.Context, password, salt []byte, count int, progress func(done, total int)) (key [32]byte, iv [16]byte, err error) {
	stop := ctx.Done()
	const blocks = 3 // ceil((32 key + 16 IV bytes) / 16 bytes per MD5 digest)
	m := newMeter(progress, blocks*count)

	var out [blocks * 16]byte // D_1 || D_2 || D_3
	var x0, x1, x2, x3 uint32 // the current digest as little-endian words
	for i := range blocks {
		// First hash of D_i: MD5(D_(i-1) || password || salt), D_0 empty.
		h := newMD5()
		if i > 0 {
			h.write(out[(i-1)*16 : i*16])
		}
		h.write(password)
		h.write(salt)
		x0, x1, x2, x3 = h.sum()
		h.wipe()
		m.add(1)

		// The count-1 re-hashes of the 16-byte digest.
		for rest := count - 1; rest > 0; {
			n := min(rest, m.budget())
			if stop != nil {
				if err := ctx.Err(); err != nil {
					wipe(out[:])
					return key, iv, err
				}
				n = min(n, cancelStep)
			}
			x0, x1, x2, x3 = md5Chain(x0, x1, x2, x3, n)
			rest -= n
			m.add(n)
		}

		binary.LittleEndian.PutUint32(out[i*16:], x0)
		binary.LittleEndian.PutUint32(out[i*16+4:], x1)
		binary.LittleEndian.PutUint32(out[i*16+8:], x2)
		binary.LittleEndian.PutUint32(out[i*16+12:], x3)
	}
	copy(key[:], out[:32])
	copy(iv[:], out[32:])
	wipe(out[:])
	return key, iv, nil
}

// wipe clears b. It is not inlined so that the stores cannot be dropped as
// dead; this is best effort, as Go gives no guarantee that no other copy of a
// secret exists (the garbage collector and the stack may move values).
//
//go:noinline
func wipe(b []byte) {
	clear(b)
}
