package transcript

import (
	"path/filepath"
	"testing"
)

func TestParseAll(t *testing.T) {
	var files []string
	for _, pat := range []string{"[0-9][0-9]-*.txt", "other/[0-9][0-9]-*.txt", "errors/p[0-9][0-9]-*.txt", "differential/fw-p*.txt"} {
		m, _ := filepath.Glob("../../testdata/pico-hsm/transcripts/" + pat)
		files = append(files, m...)
	}
	if len(files) < 50 {
		t.Fatalf("found %d transcripts", len(files))
	}
	total, hung := 0, 0
	for _, f := range files {
		ex, err := ReadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range ex {
			// fw-p1 [61] is a 3-byte APDU; [117] got no answer.
			if len(e.Command) < 3 || len(e.Response) == 1 {
				t.Fatalf("%s [%d]: command %d bytes, response %d bytes", f, e.N, len(e.Command), len(e.Response))
			}
			if len(e.Response) == 0 {
				hung++
			}
		}
		total += len(ex)
	}
	if hung != 1 {
		t.Errorf("%d exchanges without an answer, want 1 (fw-p1 [117])", hung)
	}
	ex, err := ReadFile("../../testdata/pico-hsm/transcripts/10-kcv-query-A.txt")
	if err != nil || len(ex) != 6 || ex[5].Response[2] != 0x44 {
		t.Fatalf("10-kcv-query-A: %d exchanges, %v", len(ex), err)
	}
	t.Logf("%d transcripts, %d exchanges", len(files), total)
}
