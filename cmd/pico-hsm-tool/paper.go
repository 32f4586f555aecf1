package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ceremony"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/paper"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

// pageFormats are the page files dkek-share print writes, by extension.
var pageFormats = map[string]func(p *paper.Page, size paper.Paper) []byte{
	".txt": func(p *paper.Page, _ paper.Paper) []byte { return p.Text() },
	".svg": (*paper.Page).SVG,
	".pdf": (*paper.Page).PDF,
}

func newSharePrintCmd(g *globals) *cobra.Command {
	var out, paperName, password string
	var force bool
	n := &nofmFlags{}
	cmd := &cobra.Command{
		Use:   "print FILE",
		Short: "Print a paper copy of a share file: numbered lines with check characters and a QR code (no device)",
		Long: `Print a page a custodian keeps to make the share file again with
'dkek-share from-paper': the file's name, its check value, its 64 bytes in 7
numbered lines of Crockford base32 (each line ends with 2 check characters, so a
typo is found on its line), and a QR code of the whole file.

The file's check value (SHA-256 of the 64 bytes, first 8) needs no password.
With --password the page also shows the share's own check value, the one
create-dkek-share printed; without it, the page says it is not printed. For a
share whose password is n-of-m shared (create-dkek-share
--pwd-shares-threshold), give the password shares instead, as
import-dkek-share takes them: --pwd-shares-file (repeat for each custodian's
file), --pwd-share, or --pwd-shares-total N alone for N custodians to type
theirs at the terminal.

Without --out the page goes to standard output as text. --out PAGE.txt, .svg or
.pdf writes it with mode 0600; the printed pages fit A4 and US Letter (--paper
sets the page's own size). The share stays encrypted under its password: keep
the page as safe as the file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			withPassword := cmd.Flags().Changed("password")
			if withPassword && n.sharesGiven() {
				return errors.New("--password and --pwd-shares-* exclude each other: give the file's password, or the password shares of an n-of-m share")
			}
			size, err := paper.PaperNamed(paperName)
			if err != nil {
				return err
			}
			file, err := ceremony.ReadShareFile(path)
			if err != nil {
				return err
			}
			render := func(p *paper.Page, _ paper.Paper) []byte { return p.Text() }
			if out != "" {
				ext := strings.ToLower(filepath.Ext(out))
				if render = pageFormats[ext]; render == nil {
					return fmt.Errorf("--out %s: give a name ending in .txt, .svg or .pdf", out)
				}
				if err := ceremony.CheckOutput(out, force); err != nil {
					return err
				}
			}
			page := &paper.Page{Name: filepath.Base(path), File: file}
			if withPassword || n.sharesGiven() {
				var pw []byte
				if withPassword {
					pw, err = g.secrets().Get("password", password, "Enter password to decrypt DKEK share "+path+" : ")
				} else {
					pw, err = g.combinePassword(n, path)
				}
				if err != nil {
					return err
				}
				share, err := ceremony.OpenShare(path, file, pw, g.progress())
				secret.Wipe(pw)
				if err != nil {
					return nofmErr(!withPassword, path, err)
				}
				page.ShareKCV = ceremony.ShareKCV(share)
				secret.Wipe(share)
			}
			data := render(page, size)
			if out == "" {
				_, err := g.stdout.Write(data)
				return err
			}
			if err := atomicfile.Write(out, data, 0o600, force); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "Paper copy of %s written to %s\nFile check value     : %s\n", path, out, paper.FileCheck(file))
			if page.ShareKCV != "" {
				fmt.Fprintf(g.stdout, "Share check value    : %s\n", page.ShareKCV)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "write the page to PAGE.txt, PAGE.svg or PAGE.pdf (mode 0600) instead of standard output")
	fl.StringVar(&paperName, "paper", "a4", "page size of --out .svg or .pdf: a4 or letter (the content fits both)")
	fl.StringVar(&password, "password", "", "password (or env:VAR, file:PATH, -): also print the share's own check value")
	decimalVar(fl, &n.total, "pwd-shares-total", "", 0, "the password is n-of-m shared: number of custodians who present theirs (alone: they type them at the terminal)")
	fl.StringArrayVar(&n.files, "pwd-shares-file", nil, "password shares, in sc-hsm-tool's Prime/Share ID/Share value lines or PRIME/ID/VALUE lines; repeat for each custodian's file")
	fl.StringArrayVar(&n.shares, "pwd-share", nil, "one password share PRIME/ID/VALUE (ID in decimal); repeat for each custodian")
	fl.BoolVarP(&force, "force", "f", false, "replace --out if it exists")
	return cmd
}

// errNoPaperTerminal is from-paper without --in and without a terminal.
var errNoPaperTerminal = errors.New("no terminal to type the paper copy on: give --in PAGE (the text page dkek-share print wrote, a file of the numbered lines with the file check value, or the QR code's text), or --in - to read standard input")

func newShareFromPaperCmd(g *globals) *cobra.Command {
	var out, in string
	var force bool
	cmd := &cobra.Command{
		Use:   "from-paper --out FILE [--in PAGE]",
		Short: "Make a share file again from its paper copy: typed lines, a text page or a scanned QR code's text (no device)",
		Long: `Read a paper copy made by 'dkek-share print' and write the share file again.

Without --in, the lines are typed on the terminal one by one: a line with a typo
is named and asked for again; at line 1 the QR code's text may be pasted
instead. Then the file check value on the page is asked for.

--in PAGE reads the text page print wrote, a file of the numbered lines
("1: ABCD EFGH JKMN PQRS - XY" ... and "File check value : HEX"), or the text a
QR code scanner gave (PICOHSM-DKEK-SHARE:V1:...); --in - reads standard input.
Lower case, spaces and dashes are fine; I and L are read as 1, O as 0.

The file is written, atomically and with mode 0600, only when every line checks
and the whole file has the check value on the page. An existing file is never
replaced without --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required: the share file to write (for example --out share.pbe)")
			}
			if err := ceremony.CheckOutput(out, force); err != nil {
				return err
			}
			var file []byte
			var err error
			switch in {
			case "":
				src := g.secrets()
				if src.TTY == nil {
					return errNoPaperTerminal
				}
				t, terr := src.TTY()
				if terr != nil {
					return errNoPaperTerminal
				}
				file, err = paper.Ask(t)
				t.Close()
			case "-":
				file, err = paper.Parse(g.stdin, "standard input")
			default:
				file, err = readPage(in)
			}
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, file, 0o600, force); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "DKEK share file written to %s\nFile check value     : %s\n", out, paper.FileCheck(file))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "the share file to write (mode 0600)")
	fl.StringVar(&in, "in", "", "read the paper copy from PAGE (text page, typed lines or QR code text), or - for standard input; default: type it on the terminal")
	fl.BoolVarP(&force, "force", "f", false, "replace --out if it exists")
	return cmd
}

// readPage reads a paper copy's text from path.
func readPage(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--in %s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	return paper.Parse(io.Reader(f), path)
}
