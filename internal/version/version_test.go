package version

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestFromBuildInfo reads what go build stamps, and lets -ldflags win.
func TestFromBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "93dba2b0123456789abcdef0123456789abcdef0"},
		{Key: "vcs.modified", Value: "true"},
		{Key: "vcs.time", Value: "2026-12-03T10:00:00Z"},
	}}
	tests := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     Info
		line     string
	}{
		{"source tree", stamped, "", Info{Version: "devel", Commit: "93dba2b0123456789abcdef0123456789abcdef0", Modified: true, CommitAt: "2026-12-03T10:00:00Z", GoVersion: "go1.26.8"},
			"pico-hsm-tool devel (commit 93dba2b01234, modified), go1.26.8"},
		{"release", stamped, "v1.2.3", Info{Version: "1.2.3", Commit: "93dba2b0123456789abcdef0123456789abcdef0", Modified: true, CommitAt: "2026-12-03T10:00:00Z", GoVersion: "go1.26.8"},
			"pico-hsm-tool 1.2.3 (commit"},
		{"go install of a tag", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.4.0"}}, "", Info{Version: "0.4.0", GoVersion: "go1.26.8"},
			"pico-hsm-tool 0.4.0, go1.26.8, "},
		{"no build information", nil, "", Info{Version: "devel"}, "pico-hsm-tool devel, "},
	}
	for _, tc := range tests {
		got := fromBuildInfo(tc.bi, tc.override)
		if tc.want.GoVersion == "" {
			tc.want.GoVersion = got.GoVersion // the running Go
		}
		tc.want.Platform, tc.want.PCSC = got.Platform, pcscLibrary
		if got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if s := got.String(); !strings.HasPrefix(s, tc.line) || !strings.HasSuffix(s, "PC/SC: "+pcscLibrary) {
			t.Errorf("%s: %q, want it to start with %q and name the PC/SC library", tc.name, s, tc.line)
		}
	}
}
