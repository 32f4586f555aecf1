// Command mkdeb builds pico-hsm-tool's Debian package from nfpm.yaml with
// nfpm's library (github.com/goreleaser/nfpm/v2 and its deb packager), the
// version pinned in packaging/go.mod, so that `make deb` needs neither
// dpkg-dev nor a downloaded nfpm binary.
//
// Usage: mkdeb -config packaging/nfpm.yaml -out FILE.deb
// ${VERSION}, ${STAGE} and SOURCE_DATE_EPOCH come from the environment.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
)

func main() {
	config := flag.String("config", "packaging/nfpm.yaml", "nfpm configuration `FILE`")
	out := flag.String("out", "", "the .deb `FILE` to write")
	flag.Parse()
	if err := run(*config, *out); err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		os.Exit(1)
	}
}

func run(config, out string) error {
	if out == "" {
		return fmt.Errorf("no -out FILE given")
	}
	if os.Getenv("VERSION") == "" || os.Getenv("SOURCE_DATE_EPOCH") == "" {
		return fmt.Errorf("VERSION and SOURCE_DATE_EPOCH must be set (make deb sets them)")
	}
	cfg, err := nfpm.ParseFile(config)
	if err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return err
	}
	// nfpm expands the environment in the package's fields, not in the
	// contents' source paths: ${STAGE} is expanded here.
	for _, c := range info.Contents {
		c.Source = os.ExpandEnv(c.Source)
	}
	if err := nfpm.PrepareForPackager(info, "deb"); err != nil {
		return fmt.Errorf("%s: %w", config, err)
	}
	// A "tree" entry's files keep their own modification times: every file
	// gets SOURCE_DATE_EPOCH, so that the package depends only on the commit.
	for _, c := range info.Contents {
		if c.FileInfo != nil {
			c.FileInfo.MTime = info.MTime
		}
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(out)
		return fmt.Errorf("%s: %w", out, err)
	}
	return f.Close()
}
