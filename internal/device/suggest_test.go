package device

import "testing"

// TestSuggest: a follow-up command names the same device, quoted for a
// shell where the reader name needs it.
func TestSuggest(t *testing.T) {
	tests := []struct{ reader, want string }{
		{"sim:/tmp/dev.json", `pico-hsm-tool --reader sim:/tmp/dev.json status --pin`},
		{"Virtual PCD 00 00", `pico-hsm-tool --reader "Virtual PCD 00 00" status --pin`},
		{`Odd "name" $HOME`, `pico-hsm-tool --reader "Odd \"name\" \$HOME" status --pin`},
		{"", `pico-hsm-tool --reader "" status --pin`},
	}
	for _, tc := range tests {
		c := &Conn{Reader: tc.reader}
		if got := c.Suggest("status --pin"); got != tc.want {
			t.Errorf("Suggest on %q = %s, want %s", tc.reader, got, tc.want)
		}
	}
}
