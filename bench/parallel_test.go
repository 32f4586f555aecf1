package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ceremony"
)

// vectors holds the share files sc-hsm-tool made, with their passwords:
// the real 10,000,000-iteration files.
const vectors = "../testdata/pico-hsm/vectors"

// parallelBound is the target of issue 12 section 5: K shares on C cores
// take at most ceil(K/C) x 1.15 single derivations of wall time.
func parallelBound(k, c int) float64 { return float64((k+c-1)/c) * 1.15 }

// benchShares reads K share files and their passwords: dkek-share-1, -2
// and -3.pbe in turn (a file used twice is derived twice, as two files).
func benchShares(b *testing.B, k int) (names []string, files, passwords [][]byte) {
	for i := range k {
		n := i%3 + 1
		name := filepath.Join(vectors, fmt.Sprintf("dkek-share-%d.pbe", n))
		f, err := ceremony.ReadShareFile(name)
		if err != nil {
			b.Fatal(err)
		}
		names = append(names, name)
		files = append(files, f)
		passwords = append(passwords, []byte(fmt.Sprintf("seed-share-%d-Pw", n)))
	}
	return names, files, passwords
}

// benchK is the list of share counts: BENCH_SHARES (e.g. "2,3,4"), or
// 2, 3 and 4.
func benchK(b *testing.B) []int {
	s := os.Getenv("BENCH_SHARES")
	if s == "" {
		return []int{2, 3, 4}
	}
	var ks []int
	for _, f := range strings.Split(s, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || k < 1 {
			b.Fatalf("BENCH_SHARES=%q: give share counts like 2,3,4", s)
		}
		ks = append(ks, k)
	}
	return ks
}

// BenchmarkParallelShares decrypts K real share files (10,000,000
// iterations each), in one run first one after the other with
// ceremony.OpenShare (what the tool did before issue 12) and then at the
// same time with ceremony.OpenShares (what every command that decrypts
// shares now does), and reports:
//
//   - seq-s: the wall time of the K sequential decryptions;
//   - single-s: seq-s / K, one derivation;
//   - par-s: the wall time of the parallel decryption;
//
// (each the fastest of the rounds, -benchtime Nx: other programs on the
// machine can only slow a round down, and the parallel one most)
//   - ratio: par-s / single-s, the parallel time in single derivations;
//   - bound: ceil(K/C) x 1.15, C = runtime.NumCPU();
//   - pass: 1 when ratio <= bound, 0 otherwise (also logged as PASS or
//     FAIL);
//   - cores: the CPU time of the parallel run over its wall time, the
//     cores it had on average (on Unix): about K / ceil(K/C), and less
//     when other programs kept the cores busy, which makes a FAIL say
//     more about the machine than about the code;
//   - par-cpu-s/share: the CPU time of the parallel run per share, to
//     compare with single-s: equal when running at the same time costs
//     each derivation nothing (no shared execution units, no locks).
//
// Run it with bench/parallel.sh, which exits 1 on a FAIL; it takes about
// (K + ceil(K/C)) derivations of some 3.3 s per K. Timing depends on what
// else the machine runs: nothing in the normal tests checks it.
func BenchmarkParallelShares(b *testing.B) {
	c := runtime.NumCPU()
	b.Logf("%d cores (runtime.NumCPU), GOMAXPROCS %d; %s %s/%s", c, runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	for _, k := range benchK(b) {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			names, files, passwords := benchShares(b, k)
			// The fastest round of each: other programs on the machine only
			// ever slow a round down.
			seq, par := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
			var parCPU time.Duration // the CPU time of the fastest parallel round
			for b.Loop() {
				t0 := time.Now()
				want := make([][]byte, k)
				for i := range files {
					s, err := ceremony.OpenShare(names[i], files[i], passwords[i], nil)
					if err != nil {
						b.Fatal(err)
					}
					want[i] = s
				}
				seq = min(seq, time.Since(t0))

				t0 = time.Now()
				cpu0, _ := processCPU()
				got, err := ceremony.OpenShares(names, files, passwords, nil)
				if d := time.Since(t0); d < par {
					cpu1, _ := processCPU()
					par, parCPU = d, cpu1-cpu0
				}
				if err != nil {
					b.Fatal(err)
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						b.Fatalf("share %d: parallel %x, sequential %x", i+1, got[i], want[i])
					}
				}
			}
			seqS, parS := seq.Seconds(), par.Seconds()
			single := seqS / float64(k)
			ratio, bound := parS/single, parallelBound(k, c)
			verdict, pass := "PASS", 1.0
			if ratio > bound {
				verdict, pass = "FAIL", 0
			}
			b.ReportMetric(seqS, "seq-s")
			b.ReportMetric(single, "single-s")
			b.ReportMetric(parS, "par-s")
			b.ReportMetric(ratio, "ratio")
			b.ReportMetric(bound, "bound")
			b.ReportMetric(pass, "pass")
			cores := ""
			if _, ok := processCPU(); ok {
				// The cores the parallel round had on average; about
				// K / ceil(K/C) on a machine with nothing else to do.
				used := parCPU.Seconds() / parS
				b.ReportMetric(used, "cores")
				b.ReportMetric(parCPU.Seconds()/float64(k), "par-cpu-s/share")
				cores = fmt.Sprintf(" (it used %.2f cores on average, ideally %.2f, and %.2f s of CPU per share)", used, float64(k)/math.Ceil(float64(k)/float64(c)), parCPU.Seconds()/float64(k))
			}
			b.Logf("K=%d shares on C=%d cores: sequential %.2f s (%.2f s per share), parallel %.2f s%s: ratio %.2f single derivations, bound ceil(K/C) x 1.15 = %.2f: %s",
				k, c, seqS, single, parS, cores, ratio, bound, verdict)
		})
	}
}

// TestParallelBound checks the bound's arithmetic.
func TestParallelBound(t *testing.T) {
	for _, tt := range []struct {
		k, c int
		want float64
	}{{1, 2, 1.15}, {2, 2, 1.15}, {3, 2, 2.30}, {4, 2, 2.30}, {5, 2, 3.45}, {4, 8, 1.15}, {3, 1, 3.45}} {
		if got := parallelBound(tt.k, tt.c); got < tt.want-1e-9 || got > tt.want+1e-9 {
			t.Errorf("bound(%d, %d) = %v, want %v", tt.k, tt.c, got, tt.want)
		}
	}
}
