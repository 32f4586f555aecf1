package device

import "testing"

// TestShellQuote: a suggested command's words survive a POSIX shell, and
// an interactive bash's history expansion ("!").
func TestShellQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"custodian-1.pbe", "custodian-1.pbe"},
		{"sim:/tmp/a.json", "sim:/tmp/a.json"},
		{"Virtual PCD 00 01", `"Virtual PCD 00 01"`},
		{`my $hare "1".pbe`, `"my \$hare \"1\".pbe"`},
		{"a`b`\\c", "\"a\\`b\\`\\\\c\""},
		{"share!.pbe", "'share!.pbe'"},
		{"it's!", `'it'\''s!'`},
		{"", `""`},
	} {
		if got := ShellQuote(c.in); got != c.want {
			t.Errorf("ShellQuote(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}
