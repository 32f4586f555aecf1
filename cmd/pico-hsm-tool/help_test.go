package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestHelpOneDefaultPerFlag: a flag's help line states its default once.
// pflag appends "(default X)" to a usage text that may say "(default:
// …)" already; a -1 meaning "not given" showed as "(default -1)" beside
// "(default: the lowest free one)".
func TestHelpOneDefaultPerFlag(t *testing.T) {
	root := newRoot(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	defaults := regexp.MustCompile(`\(default[ :]`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.LocalFlags(), c.InheritedFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				line := flagLine(fs, f)
				if n := len(defaults.FindAllString(line, -1)); n > 1 {
					t.Errorf("%s --%s states %d defaults: %s", c.CommandPath(), f.Name, n, line)
				}
				if strings.Contains(line, "(default -1)") {
					t.Errorf("%s --%s shows the internal -1: %s", c.CommandPath(), f.Name, line)
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// flagLine is f's line in the help of the flag set fs.
func flagLine(fs *pflag.FlagSet, f *pflag.Flag) string {
	one := pflag.NewFlagSet("", pflag.ContinueOnError)
	c := *f
	c.Hidden = false
	one.AddFlag(&c)
	return strings.TrimSpace(one.FlagUsages())
}

// TestRootHelpListsLegacyOptions: every sc-hsm-tool option the bare
// command accepts is in its help, with its short form, though hidden from
// the flag list that is about the subcommands.
func TestRootHelpListsLegacyOptions(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, strings.NewReader(""), &out, &out); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	help := out.String()
	root := newRoot(strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	n := 0
	root.LocalFlags().VisitAll(func(f *pflag.Flag) {
		n++
		want := "--" + f.Name
		if f.Shorthand != "" {
			want = "-" + f.Shorthand + ", --" + f.Name
		}
		if !strings.Contains(help, want+" ") {
			t.Errorf("the root help does not list %s", want)
		}
	})
	// sc-hsm-tool's actions and the options its scripts use.
	for _, want := range []string{"-X, --initialize", "-C, --create-dkek-share", "-I, --import-dkek-share", "-W, --wrap-key", "-U, --unwrap-key", "-i, --key-reference", "-s, --dkek-shares", "--so-pin", "--pin-retry", "--password", "--pwd-shares-threshold", "--pwd-shares-total", "-f, --force"} {
		if !strings.Contains(help, want) {
			t.Errorf("the root help does not list %s", want)
		}
	}
	if n < 20 {
		t.Errorf("only %d root options found", n)
	}
}
