package bench

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/bench/bareloop"
	"github.com/pico-hsm-tool/pico-hsm-tool/bench/opensslkdf"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

// The password and salt of testdata/pico-hsm/vectors/dkek-share-1.pbe and the
// key and IV OpenSSL derives from them with 10,000,000 iterations.
var (
	benchPassword = []byte("seed-share-1-Pw")
	benchSalt     = mustHex("d514eec56284360f")
	wantKey       = mustHex("9cbf09557ae234d0e455ab593cc15f495e08f3c3bf6631e9f0df088b253f81d3")
	wantIV        = mustHex("aeca90edcebb7eabe21b67f38b51f21d")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// TestBareLoopIsMD5 makes sure the baseline does the real work: n chained
// MD5 digests of 16 bytes, as crypto/md5 computes them.
func TestBareLoopIsMD5(t *testing.T) {
	for _, n := range []int{0, 1, 2, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			seed := md5.Sum([]byte("seed"))
			want := seed
			for range n {
				want = md5.Sum(want[:])
			}
			if got := bareloop.Chain(seed, n); got != want {
				t.Fatalf("got %x, want %x", got, want)
			}
		})
	}
}

// BenchmarkKDF compares one full derivation by dkekshare with OpenSSL's
// EVP_BytesToKey and with the bare loop; see the package documentation.
func BenchmarkKDF(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.Logf("timing in %s; %s %s/%s", cpuClock, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if opensslkdf.Available {
		b.Logf("OpenSSL: %s", opensslkdf.Version())
	} else {
		b.Log("no OpenSSL baseline: build with -tags openssl (bench/kdf.sh)")
	}

	type contender struct {
		name      string
		run       func()
		cpu, wall time.Duration
	}
	ours := &contender{name: "ours", run: func() {
		key, iv := dkekshare.DeriveKeyIV(benchPassword, benchSalt, func(done, total int) {})
		if !bytes.Equal(key[:], wantKey) || !bytes.Equal(iv[:], wantIV) {
			b.Fatalf("dkekshare: wrong key %x iv %x", key, iv)
		}
	}}
	openssl := &contender{name: "openssl", run: func() {
		key, iv, err := opensslkdf.BytesToKey(benchPassword, benchSalt, dkekshare.Iterations)
		if err != nil || !bytes.Equal(key[:], wantKey) || !bytes.Equal(iv[:], wantIV) {
			b.Fatalf("openssl: key %x iv %x, %v", key, iv, err)
		}
	}}
	seed := md5.Sum(benchPassword)
	bare := &contender{name: "bareloop", run: func() {
		if got := bareloop.Chain(seed, 3*dkekshare.Iterations); got == seed {
			b.Fatal("bare loop did nothing")
		}
	}}
	all := []*contender{ours, bare}
	if opensslkdf.Available {
		all = append(all, openssl)
	}

	round := 0
	for b.Loop() {
		for i := range all {
			c := all[(i+round)%len(all)]
			wall0, cpu0 := time.Now(), threadCPU()
			c.run()
			c.cpu += threadCPU() - cpu0
			c.wall += time.Since(wall0)
		}
		round++
	}

	rounds := float64(round)
	for _, c := range all {
		b.ReportMetric(c.cpu.Seconds()/rounds, c.name+"-s")
	}
	b.ReportMetric(float64(ours.cpu)/float64(bare.cpu), "ours/bareloop")
	b.ReportMetric(float64(ours.wall)/float64(bare.wall), "wall-ours/bareloop")
	if opensslkdf.Available {
		b.ReportMetric(float64(ours.cpu)/float64(openssl.cpu), "ours/openssl")
		b.ReportMetric(float64(ours.wall)/float64(openssl.wall), "wall-ours/openssl")
	}
}
