// Package version says which build of pico-hsm-tool is running, for
// `--version`, `version --json` and the ceremony record in `status --json`:
// the release version, the commit and whether its tree was modified, the
// Go version, and the PC/SC library the binary uses.
package version

import (
	"runtime"
	"runtime/debug"
	"strings"
)

// Version is the release version, set for releases with
//
//	-ldflags "-X github.com/pico-hsm-tool/pico-hsm-tool/internal/version.Version=1.2.3"
//
// Empty, the module's version from the build information is used
// ("devel" for a build from a source tree).
var Version = ""

// Info describes this build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified"`
	CommitAt  string `json:"commit_time,omitempty"`
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"`
	PCSC      string `json:"pcsc_library"`
}

// Get returns the running binary's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, Version)
}

// fromBuildInfo reads the version and the vcs.* settings go build
// stamps into a binary built from a git checkout (cmd/go, "go help
// buildvcs"); override is the -ldflags version, if any.
func fromBuildInfo(bi *debug.BuildInfo, override string) Info {
	in := Info{Version: "devel", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, PCSC: pcscLibrary}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = strings.TrimPrefix(v, "v")
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			case "vcs.time":
				in.CommitAt = s.Value
			}
		}
	}
	if override != "" {
		in.Version = strings.TrimPrefix(override, "v")
	}
	return in
}

// String is the one line of `pico-hsm-tool --version`.
func (in Info) String() string {
	var b strings.Builder
	b.WriteString("pico-hsm-tool " + in.Version)
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		b.WriteString(" (commit " + c)
		if in.Modified {
			b.WriteString(", modified")
		}
		b.WriteString(")")
	}
	b.WriteString(", " + in.GoVersion + ", " + in.Platform + ", PC/SC: " + in.PCSC)
	return b.String()
}
