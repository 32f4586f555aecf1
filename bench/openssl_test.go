//go:build openssl && cgo

package bench

import (
	"math/rand/v2"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/bench/opensslkdf"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

// TestOpenSSLAgrees compares dkekshare.DeriveKeyIV with OpenSSL's
// EVP_BytesToKey for random passwords of 0 to 130 bytes (across the MD5 block
// and padding boundaries of the first hashes) and small counts.
func TestOpenSSLAgrees(t *testing.T) {
	t.Logf("OpenSSL: %s", opensslkdf.Version())
	rng := rand.New(rand.NewPCG(1, 2))
	for _, count := range []int{1, 2, 3, 100, 1001} {
		restore := dkekshare.SetIterationsForTesting(count)
		for n := 0; n <= 130; n++ {
			password := make([]byte, n)
			for i := range password {
				password[i] = byte(rng.Uint32())
			}
			salt := make([]byte, 8)
			for i := range salt {
				salt[i] = byte(rng.Uint32())
			}
			wantKey, wantIV, err := opensslkdf.BytesToKey(password, salt, count)
			if err != nil {
				t.Fatal(err)
			}
			key, iv := dkekshare.DeriveKeyIV(password, salt, nil)
			if key != wantKey || iv != wantIV {
				t.Errorf("count %d, password %x, salt %x: got %x %x, want %x %x", count, password, salt, key, iv, wantKey, wantIV)
			}
		}
		restore()
	}
}
