package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGendocs writes the man pages and completions as `make man` does and
// checks that every visible command has its page, that the pages carry the
// SOURCE_DATE_EPOCH date (reproducible), and that the completion scripts
// name the tool.
func TestGendocs(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1796302210") // 2026-12-02
	var out, errb bytes.Buffer
	args := []string{"__gendocs", "--man", filepath.Join(dir, "man"), "--completions", filepath.Join(dir, "compl")}
	if code := runGendocs(t, args, &out, &errb); code != 0 {
		t.Fatalf("__gendocs: exit %d: %s", code, errb.String())
	}
	for _, name := range []string{"pico-hsm-tool.1", "pico-hsm-tool-initialize.1", "pico-hsm-tool-dkek-share-kcv.1", "pico-hsm-tool-version.1", "pico-hsm-tool-key-domain-create.1"} {
		b, err := os.ReadFile(filepath.Join(dir, "man", name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Contains(b, []byte(`"1" "Dec 2026"`)) {
			t.Errorf("%s: no section 1 header dated from SOURCE_DATE_EPOCH: %.200s", name, b)
		}
		if bytes.Contains(b, []byte("Auto generated")) {
			t.Errorf("%s: carries cobra's generation date line", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "man", "pico-hsm-tool-__gendocs.1")); err == nil {
		t.Errorf("the hidden __gendocs command has a man page")
	}
	for name, want := range map[string]string{
		"pico-hsm-tool.bash": "complete -o default -F __start_pico-hsm-tool pico-hsm-tool",
		"_pico-hsm-tool":     "#compdef pico-hsm-tool",
		"pico-hsm-tool.fish": "complete -c pico-hsm-tool",
	} {
		b, err := os.ReadFile(filepath.Join(dir, "compl", name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %v, want it to contain %q", name, err, want)
		}
	}
	if code := runGendocs(t, []string{"__gendocs"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "nothing to do") {
		t.Errorf("__gendocs with no directory: exit %d, %q", code, errb.String())
	}
}

// runGendocs runs the tool with the hidden command registered, whether or
// not main.go registers it yet.
func runGendocs(t *testing.T, args []string, stdout, stderr *bytes.Buffer) int {
	t.Helper()
	stderr.Reset()
	root := newRoot(strings.NewReader(""), stdout, stderr)
	if c, _, err := root.Find([]string{"__gendocs"}); err != nil || c == root {
		root.AddCommand(newGendocsCmd(&globals{stdout: stdout, stderr: stderr}))
	}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		stderr.WriteString(err.Error())
		return 1
	}
	return 0
}
