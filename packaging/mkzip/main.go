// Command mkzip writes a zip archive that depends only on its input files
// and SOURCE_DATE_EPOCH: entries in sorted order under one top directory,
// every entry dated SOURCE_DATE_EPOCH (UTC), modes 0755 for directories
// and for files named *.exe, 0644 for the rest, no owner, no extra local
// fields (archive/zip writes only the extended timestamp). Info-ZIP's zip
// stores local times, owners and inode-dependent order, hence this tool.
//
// Usage: mkzip -out FILE.zip -dir DIR
// The archive holds DIR's base name and everything under it.
package main

import (
	"archive/zip"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	out := flag.String("out", "", "the zip `FILE` to write")
	dir := flag.String("dir", "", "the `DIR` to archive (its base name is the top directory)")
	flag.Parse()
	if err := run(*out, *dir); err != nil {
		fmt.Fprintf(os.Stderr, "mkzip: %v\n", err)
		os.Exit(1)
	}
}

func run(out, dir string) error {
	if out == "" || dir == "" {
		return fmt.Errorf("give -out FILE and -dir DIR")
	}
	sde, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return fmt.Errorf("SOURCE_DATE_EPOCH must be set to the commit's time (git log -1 --format=%%ct)")
	}
	mtime := time.Unix(sde, 0).UTC()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := write(f, filepath.Clean(dir), mtime); err != nil {
		f.Close()
		os.Remove(out)
		return err
	}
	return f.Close()
}

func write(w io.Writer, dir string, mtime time.Time) error {
	top := filepath.Base(dir)
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		name := path.Join(top, filepath.ToSlash(rel))
		if d.IsDir() {
			name += "/"
		}
		names = append(names, name)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	zw := zip.NewWriter(w)
	for _, name := range names {
		h := &zip.FileHeader{Name: name, Modified: mtime, Method: zip.Deflate}
		switch {
		case strings.HasSuffix(name, "/"):
			h.Method = zip.Store
			h.SetMode(fs.ModeDir | 0o755)
		case strings.HasSuffix(name, ".exe"):
			h.SetMode(0o755)
		default:
			h.SetMode(0o644)
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		if h.Method == zip.Store {
			continue
		}
		src := filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(name, top+"/")))
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if _, err := fw.Write(b); err != nil {
			return err
		}
	}
	return zw.Close()
}
