package transcript

import (
	"path/filepath"
	"testing"
)

func TestParseAll(t *testing.T) {
	var files []string
	for _, pat := range []string{"[0-9][0-9]-*.txt", "other/[0-9][0-9]-*.txt", "errors/p[0-9][0-9]-*.txt"} {
		m, _ := filepath.Glob("../../testdata/pico-hsm/transcripts/" + pat)
		files = append(files, m...)
	}
	if len(files) < 50 {
		t.Fatalf("found %d transcripts", len(files))
	}
	total := 0
	for _, f := range files {
		ex, err := ReadFile(f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, e := range ex {
			if len(e.Command) < 4 || len(e.Response) < 2 {
				t.Fatalf("%s [%d]: command %d bytes, response %d bytes", f, e.N, len(e.Command), len(e.Response))
			}
		}
		total += len(ex)
	}
	ex, err := ReadFile("../../testdata/pico-hsm/transcripts/10-kcv-query-A.txt")
	if err != nil || len(ex) != 6 || ex[5].Response[2] != 0x44 {
		t.Fatalf("10-kcv-query-A: %d exchanges, %v", len(ex), err)
	}
	t.Logf("%d transcripts, %d exchanges", len(files), total)
}
