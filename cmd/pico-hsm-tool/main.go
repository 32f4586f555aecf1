// Command pico-hsm-tool manages a Pico HSM (or any SmartCard-HSM) over
// PC/SC: initialization, DKEK shares, key backup and restore. It does what
// OpenSC's sc-hsm-tool does and more, and its files interoperate with it.
//
// Output rules (after filippo.io/age cmd/age/tui.go): results go to stdout;
// errors and warnings go to stderr with a "pico-hsm-tool: " prefix, lower
// case, with no trailing period; prompts go to the terminal.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// run executes the command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "pico-hsm-tool: %s\n", trimPeriod(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func trimPeriod(s string) string {
	for len(s) > 0 && s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// globals are the flags every command shares.
type globals struct {
	// readers are the --reader options in order; allReaders is
	// --all-readers. Commands that act on one device take at most one
	// (g.open); status takes several (g.openAll).
	readers    []string
	allReaders bool
	wait       bool
	verbose    bool
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	src        *secret.Source
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "pico-hsm-tool",
		Short: "Manage a Pico HSM or SmartCard-HSM: initialize, DKEK shares, key backup and restore",
		Long: `pico-hsm-tool manages a Pico HSM (or any SmartCard-HSM) over PC/SC.

With no command it prints the device status, like sc-hsm-tool with no action.
Use --reader sim:PATH to rehearse on a simulated device whose state lives in PATH.

sc-hsm-tool's options are accepted too, so that scripts can call pico-hsm-tool
in its place (they are listed below, under "sc-hsm-tool options").`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringArrayVarP(&g.readers, "reader", "r", nil, "reader `N` (index), a piece of its name, or sim:PATH for the simulated device (default: the first reader with a SmartCard-HSM); status, initialize and import-dkek-share take it more than once")
	pf.BoolVar(&g.allReaders, "all-readers", false, "status, initialize and import-dkek-share: every reader that holds a SmartCard-HSM")
	pf.BoolVarP(&g.wait, "wait", "w", false, "wait for a card to be inserted")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "print the APDU trace to stderr (secrets masked)")

	status := newStatusCmd(g)
	legacy := &legacyFlags{}
	legacy.register(root)
	root.RunE = func(cmd *cobra.Command, args []string) error {
		if ok, err := legacy.run(g, cmd); ok {
			return err
		}
		return runStatus(g, legacy.json, cmd.Flags().Changed("pin"), pinFlags{pin: legacy.pin, lastTry: legacy.init.lastTry})
	}
	root.AddCommand(status, newListReadersCmd(g), newInitializeCmd(g), newCreateShareCmd(g), newImportShareCmd(g), newShareToolsCmd(g),
		newGenerateKeyCmd(g), newListKeysCmd(g), newWrapKeyCmd(g), newUnwrapKeyCmd(g), newBackupCmd(g), newRestoreCmd(g), newInspectCmd(g), newSimCmd(g))
	root.AddCommand(newSealKeyCmd(g))
	root.AddCommand(newDeleteKeyCmd(g))
	root.AddCommand(newImportKeyCmd(g))
	root.AddCommand(newVersionCmd(g))
	root.AddCommand(newKeyDomainCmd(g))
	root.AddCommand(newAttestCmd(g))
	root.AddCommand(newGendocsCmd(g))
	root.AddCommand(newChangePINCmd(g), newChangeSOPINCmd(g), newUnblockPINCmd(g))
	// --version: the same line as the version command.
	root.Version = version.Get().String()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		msg := strconvErr.ReplaceAllString(err.Error(), ": not a whole number")
		return fmt.Errorf("%s: see '%s --help'", msg, c.CommandPath())
	})
	withUsage(root)
	root.Long += legacy.help(root)
	return root
}

// strconvErr is the part of a flag error that only a Go programmer reads.
var strconvErr = regexp.MustCompile(`: strconv\.Parse\w+: parsing "[^"]*": (invalid syntax|value out of range)`)

// groupCmd is a command that only groups subcommands: without one it is
// an error, not a help text with exit status 0.
func groupCmd(use, short string, hidden bool) *cobra.Command {
	return &cobra.Command{
		Use:    use,
		Short:  short,
		Hidden: hidden,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			return fmt.Errorf("%s needs a command: %s; see '%s --help'", cmd.Name(), strings.Join(names, ", "), cmd.CommandPath())
		},
	}
}

// withUsage makes the argument errors of cmd and its subcommands say what
// the command takes: cobra's "accepts 1 arg(s), received 0" alone does not.
func withUsage(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := check(c, args)
			switch {
			case err == nil:
				return nil
			case c.HasAvailableSubCommands():
				return fmt.Errorf("%w: see '%s --help' for the commands", err, c.CommandPath())
			}
			return fmt.Errorf("%w: usage: %s", err, c.UseLine())
		}
	}
	for _, sub := range cmd.Commands() {
		withUsage(sub)
	}
}
