package backup

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

var (
	pin = []byte("648219")
	// The three recorded shares of DKEK A (VECTORS.txt sections 1 and 3).
	sharesA = []string{
		"C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077",
		"FDC9CC9D09EBB7374E4763818ABC20E2F40C5D0BDE156D4FEBFE3333586C7434",
		"F8615DB573D128CEBC558ADD95D1E44739B9144DDAA540AE0F5CE3E7E036ACF1",
	}
	dkekA = mustHex("CCA90B3A41CC892109535829354821FFDCD666F33E9AC9C855ECF3D45A13E8B2")
)

const vectors = "../../testdata/pico-hsm/vectors/"

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// deviceA opens a simulated device holding DKEK A.
func deviceA(t *testing.T, name string) *device.Conn {
	t.Helper()
	return deviceWith(t, name, sharesA)
}

func deviceWith(t *testing.T, name string, shares []string) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := hsm.InitParams{SOPIN: mustHex("3537363231383830"), PIN: pin, Retries: 3, DKEKShares: len(shares), Options: hsm.OptResetRetryCounter}
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(&p); err != nil {
		t.Fatal(err)
	}
	for _, s := range shares {
		if _, err := c.ImportDKEKShare(mustHex(s)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(vectors + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The recorded wrap files, made by the real firmware through sc-hsm-tool,
// describe the recorded facts and verify with DKEK A
// (../shared/pico-hsm/VECTORS.txt section 4).
func TestInspectRecorded(t *testing.T) {
	tests := []struct {
		file, desc, label, id, kcv string
	}{
		{"wrap-key-rsa2048-ref1.bin", "Key                  : RSA 2048\n", "k1", "01", "440B48E7FAEBC853"},
		{"wrap-key-ec256-ref2.bin", "Key                  : EC secp256r1\n", "k2", "02", "440B48E7FAEBC853"},
	}
	for _, tt := range tests {
		r, err := Inspect(readVector(t, tt.file), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(r.Text(), tt.desc) || r.Label != tt.label || r.ID != tt.id || r.KCV != tt.kcv || r.Verified ||
			r.Certificate != "CV request, holder ESPICOHSMTR00001" || strings.Join(r.Allowed, ",") != "any" {
			t.Errorf("%s: %+v\n%s", tt.file, r, r.Text())
		}
		r, err = Inspect(readVector(t, tt.file), dkekA)
		if err != nil || !r.Verified {
			t.Errorf("%s with DKEK A: %v", tt.file, err)
		}
		if _, err := Inspect(readVector(t, tt.file), bytes.Repeat([]byte{7}, 32)); !errors.Is(err, wrap.ErrWrongDKEK) {
			t.Errorf("%s with another DKEK: %v", tt.file, err)
		}
	}
}

// The recorded RSA backup restores into a device with DKEK A and signs as
// the original key did (vectors/sig-A-k1.bin).
func TestRestoreRecordedRSA(t *testing.T) {
	c := deviceA(t, "b.json")
	res, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-rsa2048-ref1.bin"), Name: "rsa", Ref: -1, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ref != 1 || res.Label != "k1" || !res.Verified {
		t.Fatalf("%+v", res)
	}
	// SHA256-RSA-PKCS as pkcs11-tool sends it: the padded block, raw RSA.
	msg := []byte("harness test message for restore check\n")
	sig, err := c.Sign(1, hsm.AlgRSAPKCS1SHA256, msg)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, readVector(t, "sig-A-k1.bin")) {
		t.Fatal("the restored key signs differently from the original")
	}
}

func unchanged(t *testing.T, c *device.Conn, want []keystore.Key) {
	t.Helper()
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	got, err := keystore.List(c.Device)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("the device's keys changed: %+v", got)
	}
	for i := range got {
		if got[i].Ref != want[i].Ref || !bytes.Equal(got[i].PRKD, want[i].PRKD) || !bytes.Equal(got[i].Cert, want[i].Cert) {
			t.Fatalf("key %d changed", got[i].Ref)
		}
	}
}

// One byte flipped anywhere in a backup is refused, and the key already at
// the reference (restored with --force) stays as it was.
func TestRestoreTamperedAnywhere(t *testing.T) {
	c := deviceA(t, "a.json")
	good := readVector(t, "wrap-key-ec256-ref2.bin")
	if _, err := Restore(c, RestoreOptions{File: good, Name: "ec", Ref: 2, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	c.SelectApplication()
	before, _ := keystore.List(c.Device)
	f, _ := wrap.ParseFile(good)
	start := bytes.Index(good, f.Blob)
	for i := 0; i < len(good); i++ {
		bad := bytes.Clone(good)
		bad[i] ^= 0x01
		_, err := Restore(c, RestoreOptions{File: bad, Name: "ec", Ref: 2, Force: true, PIN: pin})
		inBlob := i >= start && i < start+len(f.Blob)
		if inBlob && err == nil {
			t.Fatalf("byte %d flipped in the blob: restored", i)
		}
		if err == nil {
			continue // a flip in the description or certificate is data, not key material
		}
	}
	unchangedKeys := before
	// The description and certificate flips that were restored rewrote
	// them; put the good backup back and compare only the key itself.
	if _, err := Restore(c, RestoreOptions{File: good, Name: "ec", Ref: 2, Force: true, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	unchanged(t, c, unchangedKeys)
}

// A truncated file, a foreign file and a wrong DKEK are refused before the
// device changes.
func TestRestoreRefusals(t *testing.T) {
	c := deviceA(t, "a.json")
	good := readVector(t, "wrap-key-rsa2048-ref1.bin")
	if _, err := Restore(c, RestoreOptions{File: good, Name: "rsa", Ref: 1, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	c.SelectApplication()
	before, _ := keystore.List(c.Device)
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)-10],
		"empty":     nil,
		"foreign":   readVector(t, "dkek-share-1.pbe"),
	} {
		if _, err := Restore(c, RestoreOptions{File: data, Name: name, Ref: 1, Force: true, PIN: pin}); !errors.Is(err, wrap.ErrFile) && !errors.Is(err, wrap.ErrBlob) && !errors.Is(err, ErrShareFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Restore(c, RestoreOptions{File: good, Name: "rsa", Ref: 1, PIN: pin}); !errors.Is(err, ErrOccupied) {
		t.Errorf("occupied without force: %v", err)
	}
	if _, err := Restore(c, RestoreOptions{File: good, Name: "rsa", Ref: 1, Force: true, PIN: []byte("000000")}); !errors.Is(err, apdu.ErrWrongPIN) {
		t.Errorf("wrong PIN: %v", err)
	}
	unchanged(t, c, before)

	other := deviceWith(t, "o.json", sharesA[:1])
	if _, err := Restore(other, RestoreOptions{File: good, Name: "rsa", Ref: -1, PIN: pin}); !errors.Is(err, ErrWrongDKEK) ||
		!strings.Contains(err.Error(), "backup was made under DKEK 440B48E7FAEBC853, device has 01B9858437B91648") {
		t.Errorf("wrong DKEK: %v", err)
	}
}

// The card is removed just before UNWRAP KEY: the restore fails and the
// key at the reference (replaced with --force) is still the old one.
func TestRestoreCardRemovedBeforeUnwrap(t *testing.T) {
	c := deviceA(t, "a.json")
	if _, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-rsa2048-ref1.bin"), Name: "rsa", Ref: 1, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	c.SelectApplication()
	before, _ := keystore.List(c.Device)
	removed := errors.New("the card was removed")
	c.Sim.Fault = func(cmd []byte) ([]byte, error) {
		if len(cmd) > 2 && cmd[1] == 0x74 {
			return nil, removed
		}
		return nil, nil
	}
	_, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-ec256-ref2.bin"), Name: "ec", Ref: 1, Force: true, PIN: pin})
	if !errors.Is(err, removed) {
		t.Fatalf("%v", err)
	}
	c.Sim.Fault = nil
	unchanged(t, c, before)
}

func TestBackupAllAndRestoreAll(t *testing.T) {
	a := deviceA(t, "a.json")
	for _, f := range []string{"wrap-key-rsa2048-ref1.bin", "wrap-key-ec256-ref2.bin"} {
		if _, err := Restore(a, RestoreOptions{File: readVector(t, f), Name: f, Ref: -1, PIN: pin}); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "backup")
	m, err := BackupAll(a, BackupOptions{Dir: dir, PIN: pin, DKEK: dkekA})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Keys) != 2 || m.KCV != "440B48E7FAEBC853" || m.Keys[0].File != "key-001-k1.bin" || !m.Keys[1].Verified {
		t.Fatalf("%+v", m)
	}
	if _, err := BackupAll(a, BackupOptions{Dir: dir, PIN: pin}); err == nil || !strings.Contains(err.Error(), "a backup is already in this directory") {
		t.Fatalf("second backup into the same directory: %v", err)
	}
	b := deviceA(t, "b.json")
	res, err := RestoreAll(b, RestoreAllOptions{Dir: dir, PIN: pin})
	if err != nil || len(res) != 2 || res[0].Result.Ref != 1 || res[1].Result.Ref != 2 {
		t.Fatalf("%+v %v", res, err)
	}
	// Restoring again: both keys are present, and skipped.
	res, err = RestoreAll(b, RestoreAllOptions{Dir: dir, PIN: pin})
	if err != nil || res[0].Status != StatusPresent || res[1].Status != StatusPresent {
		t.Fatalf("%+v %v", res, err)
	}
	// A changed file is caught before the device is touched.
	p := filepath.Join(dir, "key-002-k2.bin")
	data, _ := os.ReadFile(p)
	data[len(data)-1] ^= 1
	os.WriteFile(p, data, 0o600)
	c := deviceA(t, "c.json")
	if _, err := RestoreAll(c, RestoreAllOptions{Dir: dir, PIN: pin}); err == nil || !strings.Contains(err.Error(), "SHA-256 differs from the manifest") {
		t.Fatalf("changed file: %v", err)
	}
}

// deviceNoDKEK opens a simulated device initialized without DKEK shares
// (initialize without --dkek-shares), with an EC key at reference 1.
func deviceNoDKEK(t *testing.T, name string) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := hsm.InitParams{SOPIN: mustHex("3537363231383830"), PIN: pin, Retries: 3, DKEKShares: -1}
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(&p); err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.Generate(c, keystore.GenSpec{Type: "ec", Curve: "secp256r1", Ref: 1, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	return c
}

// The firmware refuses WRAP KEY with 6A88 both on a device without a DKEK
// and on one whose DKEK waits for shares (pico-hsm cmd_key_wrap.c); the
// DKEK status tells which, and the message says what it costs: a device
// without a DKEK gets one only by being re-initialized.
func TestWrapWithoutDKEK(t *testing.T) {
	none := deviceNoDKEK(t, "none.json")
	// Two shares announced, one imported.
	partial := func() *device.Conn {
		c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), "p2.json")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SelectApplication()
		if err := c.Initialize(&hsm.InitParams{SOPIN: mustHex("3537363231383830"), PIN: pin, Retries: 3, DKEKShares: 2}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ImportDKEKShare(mustHex(sharesA[0])); err != nil {
			t.Fatal(err)
		}
		if _, err := keystore.Generate(c, keystore.GenSpec{Type: "ec", Curve: "secp256r1", Ref: 1, PIN: pin}); err != nil {
			t.Fatal(err)
		}
		return c
	}()
	for _, tc := range []struct {
		name  string
		conn  *device.Conn
		want  string
		noKey bool
	}{
		{"no DKEK", none, "cannot wrap key reference 1: the device has no DKEK: it was initialized without --dkek-shares, so no key can ever leave it; only re-initializing with --dkek-shares gives it one, and that destroys every key on it (SW 6A88)", true},
		{"shares outstanding", partial, "cannot wrap key reference 1: the device's DKEK is incomplete (1 of 2 shares imported): import the remaining shares first (SW 6A88)", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.bin")
			_, err := WrapToFile(tc.conn, WrapOptions{Key: keystore.Spec{Ref: 1}, PIN: pin, Path: path})
			if err == nil || err.Error() != tc.want || errors.Is(err, ErrNoDKEK) != tc.noKey || !apdu.IsStatus(err, 0x6A88) {
				t.Fatalf("%v", err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s written", path)
			}
			tc.conn.SelectApplication()
			keys := []keystore.Key{{Ref: 1, Exportable: true}}
			if got, err := keystore.MarkUnexportable(tc.conn.Device, keys); err != nil || got != tc.noKey || keys[0].Exportable == tc.noKey {
				t.Fatalf("MarkUnexportable = %v, %v; exportable %v", got, err, keys[0].Exportable)
			}
		})
	}
	_, err := BackupAll(none, BackupOptions{Dir: filepath.Join(t.TempDir(), "b"), PIN: pin})
	if err == nil || err.Error() != "cannot back up: "+ErrNoDKEK.Error() {
		t.Fatalf("backup: %v", err)
	}
	if got, err := keystore.MarkUnexportable(deviceA(t, "a.json").Device, []keystore.Key{{Ref: 1, Exportable: true}}); err != nil || got {
		t.Fatalf("MarkUnexportable on a device with a DKEK = %v, %v", got, err)
	}
}

// A DKEK share file given where a wrapped key belongs says what it is.
func TestShareFileRefused(t *testing.T) {
	pbe := readVector(t, "dkek-share-1.pbe")
	if _, err := Inspect(pbe, nil); !errors.Is(err, ErrShareFile) {
		t.Errorf("inspect: %v", err)
	}
	_, err := Restore(deviceA(t, "a.json"), RestoreOptions{File: pbe, Name: "dkek-share-1.pbe", Ref: -1, PIN: pin})
	if err == nil || err.Error() != "dkek-share-1.pbe: this is a DKEK share file, not a wrapped key: give a file that wrap-key, backup or sc-hsm-tool --wrap-key wrote" {
		t.Errorf("restore: %v", err)
	}
}

// A blob whose KCV names the device's DKEK but that the device refuses
// (its CMAC fails) is a damaged file, not another DKEK; the message says
// so without nesting parentheses.
func TestRestoreDamagedBlob(t *testing.T) {
	good := readVector(t, "wrap-key-ec256-ref2.bin")
	f, err := wrap.ParseFile(good)
	if err != nil {
		t.Fatal(err)
	}
	f.Blob[len(f.Blob)-20] ^= 0x5A // in the encrypted key, before the CMAC
	bad := f.Marshal()
	c := deviceA(t, "a.json")
	for _, tc := range []struct {
		ref   int
		force bool
		want  string
	}{
		{-1, false, "unwrap into key reference 1: the device refused the key blob, which names this device's DKEK: the file is damaged or was changed after it was written: use another copy of the backup; nothing was restored (SW 6400)"},
		{2, true, "unwrap into key reference 2: the device refused the key blob, which names this device's DKEK: the file is damaged or was changed after it was written: use another copy of the backup; the key at reference 2 is unchanged (SW 6400)"},
	} {
		if tc.force {
			if _, err := Restore(c, RestoreOptions{File: good, Name: "ec.bin", Ref: 2, PIN: pin}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := Restore(c, RestoreOptions{File: bad, Name: "bad.bin", Ref: tc.ref, Force: tc.force, AllowDuplicate: true, PIN: pin})
		if err == nil || err.Error() != tc.want || !errors.Is(err, ErrDamagedBlob) || !errors.Is(err, hsm.ErrUnwrapRefused) {
			t.Errorf("%v", err)
		}
		if strings.Count(err.Error(), "(") != 1 {
			t.Errorf("nested parentheses: %v", err)
		}
	}
}

// Results carry the key's size or curve, as list-keys gives them, and the
// DKEK check value as dkek_kcv in every JSON result.
func TestResultsJSON(t *testing.T) {
	c := deviceA(t, "a.json")
	rsa, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-rsa2048-ref1.bin"), Name: "rsa", Ref: -1, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-ec256-ref2.bin"), Name: "ec", Ref: -1, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if rsa.Bits != 2048 || rsa.Curve != "" || ec.Curve != "secp256r1" || ec.Bits != 256 {
		t.Fatalf("%+v %+v", rsa, ec)
	}
	dir := backupOf(t, c)
	bk, err := BackupAll(c, BackupOptions{Dir: dir, PIN: pin, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	all, err := RestoreAll(c, RestoreAllOptions{Dir: dir, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	w, err := WrapToFile(c, WrapOptions{Key: keystore.Spec{Ref: 1}, PIN: pin, Path: filepath.Join(t.TempDir(), "w.bin")})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Inspect(readVector(t, "wrap-key-ec256-ref2.bin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"unwrap": rsa, "backup": bk, "restore": all, "wrap": w, "inspect": r} {
		js, _ := json.Marshal(v)
		s := string(js)
		if !strings.Contains(s, `"dkek_kcv":"440B48E7FAEBC853"`) || regexp.MustCompile(`"kcv"|"KCV"`).MatchString(s) {
			t.Errorf("%s: %s", name, s)
		}
	}
	js, _ := json.Marshal(all)
	if !strings.Contains(string(js), `"bits":2048`) || !strings.Contains(string(js), `"curve":"secp256r1"`) {
		t.Errorf("restore --json: %s", js)
	}
}
