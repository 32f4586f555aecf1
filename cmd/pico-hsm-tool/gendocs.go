package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/version"
)

// newGendocsCmd is the hidden command `make man` and `make completions`
// run on the freshly built binary: it writes the section-1 man pages and
// the bash, zsh and fish completion scripts from the command tree itself,
// so that they cannot drift from --help. It is hidden, so it has no man
// page and no completion of its own.
func newGendocsCmd(g *globals) *cobra.Command {
	var manDir, complDir string
	cmd := &cobra.Command{
		Use:    "__gendocs",
		Short:  "Write the man pages and shell completions (for packaging)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if manDir == "" && complDir == "" {
				return fmt.Errorf("nothing to do: give --man DIR, --completions DIR or both")
			}
			root := cmd.Root()
			if manDir != "" {
				if err := writeManPages(root, manDir); err != nil {
					return err
				}
			}
			if complDir != "" {
				if err := writeCompletions(root, complDir); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&manDir, "man", "", "write the section-1 man pages into `DIR`")
	cmd.Flags().StringVar(&complDir, "completions", "", "write pico-hsm-tool.bash, _pico-hsm-tool (zsh) and pico-hsm-tool.fish into `DIR`")
	return cmd
}

// docDate is the date the man pages carry: SOURCE_DATE_EPOCH when set
// (reproducible-builds.org), else the commit time go build stamped into
// the binary, else today. A page's content then depends only on the commit.
func docDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: unset it or set it to `git log -1 --format=%%ct`", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, version.Get().CommitAt); err == nil {
		return t.UTC(), nil
	}
	return time.Now().UTC(), nil
}

// writeManPages writes pico-hsm-tool.1 and one pico-hsm-tool-CMD.1 per
// visible command (cobra's doc.GenManTree skips hidden ones and help).
func writeManPages(root *cobra.Command, dir string) error {
	date, err := docDate()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root.DisableAutoGenTag = true // no "Auto generated ... on DATE" line
	header := &doc.GenManHeader{
		Section: "1",
		Date:    &date,
		Source:  "pico-hsm-tool " + version.Get().Version,
		Manual:  "pico-hsm-tool manual",
	}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	return nil
}

// writeCompletions writes the scripts that `pico-hsm-tool completion SHELL`
// prints, under the names each shell's completion directory expects.
func writeCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		gen  func(f *os.File) error
	}{
		{"pico-hsm-tool.bash", func(f *os.File) error { return root.GenBashCompletionV2(f, true) }},
		{"_pico-hsm-tool", func(f *os.File) error { return root.GenZshCompletion(f) }},
		{"pico-hsm-tool.fish", func(f *os.File) error { return root.GenFishCompletion(f, true) }},
	} {
		f, err := os.Create(filepath.Join(dir, c.name))
		if err != nil {
			return err
		}
		err = c.gen(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s completion: %w", c.name, err)
		}
	}
	return nil
}
