package main

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keyimport"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// maxKeyFile bounds a software key file: an RSA-4096 PEM is about 3.3 KB.
const maxKeyFile = 64 * 1024

func newSealKeyCmd(g *globals) *cobra.Command {
	var d dkekFlags
	var kf keyFileFlags
	var keyPath, out, label, id string
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "seal-key --key FILE --dkek-share F... --out FILE.bin",
		Short: "Seal a software key under the DKEK into a wrapped-key file, with no device",
		Long: `Seal a software private key under the DKEK that the share files make, into
the wrapped-key file sc-hsm-tool --wrap-key writes, on a machine with no
device. Any device that holds the same DKEK restores it with unwrap-key or
with OpenSC's sc-hsm-tool --unwrap-key; inspect --dkek-share proves it.

` + keyFileHelp + `

The label defaults to the PKCS#12 friendly name or the key file's name
without its extension, the ID to OpenSC's ID for the key pair (the SHA-1 of
the RSA modulus or of the EC point; 01 for AES). The key's certificate, if
any, goes into the file where sc-hsm-tool puts it, and unwrap-key writes it
back with the key; without one, the device writes a new CV request for the
key when it unwraps it. The DKEK and the key exist only in memory and are
wiped after use; the software key file is left as it was.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case keyPath == "":
				return errors.New("--key is required: give the software private key file to seal")
			case out == "":
				return errors.New("--out is required: give the wrapped-key file to write, e.g. signing.bin")
			case out == "-":
				return errors.New("--out -: '-' is not a file name here: a wrapped key is a binary file and does not go to standard output; give the file to write, e.g. signing.bin")
			case len(d.files) == 0:
				return errors.New("--dkek-share is required: the key is sealed under the DKEK that its share files make")
			}
			idBytes, err := optionalKeyID(id)
			if err != nil {
				return err
			}
			if !force {
				if err := atomicfile.CheckAbsent(out); err != nil {
					return err
				}
			}
			kf.passwordGiven = cmd.Flags().Changed("key-password")
			key, dkek, wipe, err := g.softwareKey(keyPath, &kf, &d)
			defer wipe()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("label") {
				label = keyLabel(key, keyPath)
			}
			if idBytes == nil {
				idBytes = key.DefaultID()
			}
			f, err := keyimport.Seal(key, dkek, keyimport.Options{Label: label, ID: idBytes, Rand: rand.Reader})
			if err != nil {
				return err
			}
			data := f.Marshal()
			if err := atomicfile.Write(out, data, 0o600, force); err != nil {
				return err
			}
			kcv := wrap.Derive(dkek)
			kcv.Wipe()
			if asJSON {
				r := sealResult{Key: key.String(), Format: key.Format, Label: label, ID: fmt.Sprintf("%X", idBytes),
					KCV: fmt.Sprintf("%X", kcv.KCV), Path: out, SHA256: fmt.Sprintf("%x", sha256.Sum256(data)), Size: len(data)}
				if key.Cert != nil {
					r.Certificate, r.CertificateIssuer = key.Cert.Subject, key.Cert.Issuer
				}
				return writeJSON(g, r)
			}
			fmt.Fprintf(g.stdout, "Sealed %s from %s under DKEK %X into %s; %s\n", key, keyPath, kcv.KCV, out, stillHolds(key, keyPath))
			if key.Cert != nil {
				fmt.Fprintf(g.stdout, "%s carries the key's certificate %s (issued by %s); unwrap-key stores it with the key\n", out, key.Cert.Subject, key.Cert.Issuer)
			}
			otherCerts(g, key, keyPath)
			return nil
		},
	}
	d.register(cmd)
	kf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&keyPath, "key", "", "the software private key file (PEM, DER, PKCS#12, raw or hex AES)")
	fl.StringVar(&out, "out", "", "the wrapped-key file to write")
	fl.StringVar(&label, "label", "", "the key's label (default: the PKCS#12 friendly name, else the key file's name without extension)")
	fl.StringVar(&id, "id", "", "the key's ID in hex (default: OpenSC's ID for the key pair)")
	fl.BoolVarP(&force, "force", "f", false, "replace the --out file if it exists")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// sealResult is what seal-key --json prints.
type sealResult struct {
	Key    string `json:"key"`
	Format string `json:"format"`
	Label  string `json:"label"`
	ID     string `json:"id"`
	KCV    string `json:"dkek_kcv"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int    `json:"size"`
	// Certificate and CertificateIssuer name the certificate the file
	// carries.
	Certificate       string `json:"certificate,omitempty"`
	CertificateIssuer string `json:"certificate_issuer,omitempty"`
}

// otherCerts tells that the certificates of the key file that are not the
// key's were left out.
func otherCerts(g *globals, key *keyimport.Key, keyPath string) {
	switch n := key.OtherCerts; {
	case n == 1:
		fmt.Fprintf(g.stdout, "1 other certificate in %s (a CA certificate) was not kept\n", keyPath)
	case n > 1:
		fmt.Fprintf(g.stdout, "%d other certificates in %s (CA certificates) were not kept\n", n, keyPath)
	}
}

// readKeyFile reads a software key file of at most maxKeyFile bytes.
// defaultLabel is a software key's label when --label is not given: its
// file's name without the extension.
func defaultLabel(keyPath string) string {
	return strings.TrimSuffix(filepath.Base(keyPath), filepath.Ext(keyPath))
}

// keyFileFlags are the flags of a software key file beside --key.
type keyFileFlags struct {
	password string
	cert     string
	// passwordGiven is --key-password on the command line (its value may
	// be "" for a prompt).
	passwordGiven bool
}

func (f *keyFileFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.password, "key-password", "", "password of an encrypted --key (PKCS#8 or PKCS#12), or env:VAR, file:PATH, - (default: prompt when needed)")
	fl.StringVar(&f.cert, "cert", "", "the key's X.509 certificate, PEM or DER (default: the one in a PKCS#12 or PEM --key)")
}

// keyFileHelp is the part of import-key's and seal-key's help about the
// key file, its password and its certificate.
const keyFileHelp = `  --key  RSA 1024 to 4096 bits (PKCS#1 or PKCS#8), EC on secp256r1, secp384r1,
         secp521r1, secp256k1, brainpoolP256r1, brainpoolP384r1 or
         brainpoolP512r1 (SEC 1 or PKCS#8), PEM or DER; encrypted PKCS#8
         (PBES2 with PBKDF2 and AES or 3DES, or PKCS#12's 3DES and RC2); a
         PKCS#12 file (.p12, .pfx) that holds one private key; AES-128, -192
         or -256 as a file of 16, 24 or 32 bytes or of their hex digits

The password of an encrypted key file comes from --key-password (a value,
env:VAR, file:PATH or - for a line of standard input, read before the
share passwords and the PIN), or is asked for on the terminal. The key's
X.509 certificate, from --cert or else the one for the key inside a
PKCS#12 or PEM --key, must hold the key's public key; other certificates
of the file (a CA chain) are not kept.`

// softwareKey reads and parses the key file (asking for its password if
// it is encrypted) and the --cert file, then decrypts the DKEK from the
// shares, in that order: a bad key file or certificate is found before
// any key derivation of the shares, and long before the device. wipe
// clears the key, the DKEK and the file's bytes; call it even on error.
func (g *globals) softwareKey(keyPath string, kf *keyFileFlags, d *dkekFlags) (key *keyimport.Key, dkek []byte, wipe func(), err error) {
	var raw []byte
	wipe = func() {
		secret.Wipe(raw)
		if key != nil {
			key.Wipe()
		}
		secret.Wipe(dkek)
	}
	if raw, err = readKeyFile(keyPath); err != nil {
		return nil, nil, wipe, err
	}
	password := func() ([]byte, error) {
		return g.secrets().Get("key-password", kf.password, fmt.Sprintf("Enter password of %s: ", keyPath))
	}
	if key, err = keyimport.ParseWithPassword(raw, password); err != nil {
		if errors.Is(err, keyimport.ErrWrongPassword) {
			return nil, nil, wipe, fmt.Errorf("%w for %s, or the file is damaged: give the password it was encrypted with", err, keyPath)
		}
		return nil, nil, wipe, fmt.Errorf("%s: %w", keyPath, err)
	}
	if kf.passwordGiven && !key.Encrypted {
		return nil, nil, wipe, fmt.Errorf("%s is not encrypted: drop --key-password", keyPath)
	}
	if kf.cert != "" {
		b, err := readLimited(kf.cert, maxKeyFile)
		if err != nil {
			return nil, nil, wipe, err
		}
		certs, err := keyimport.ParseCertificates(b)
		if err != nil {
			return nil, nil, wipe, fmt.Errorf("--cert %s: %w", kf.cert, err)
		}
		if err := key.SetCertificate(certs); err != nil {
			return nil, nil, wipe, fmt.Errorf("--cert %s: %w: give the certificate issued for the key in %s", kf.cert, err, keyPath)
		}
	}
	if dkek, err = g.dkek(d); err != nil {
		return nil, nil, wipe, err
	}
	return key, dkek, wipe, nil
}

// keyLabel is the label of a software key when --label is not given: its
// PKCS#12 friendlyName, else its file's name without the extension.
func keyLabel(key *keyimport.Key, keyPath string) string {
	if key.FriendlyName != "" {
		return key.FriendlyName
	}
	return defaultLabel(keyPath)
}

// stillHolds is what the command says about the key file it leaves.
func stillHolds(key *keyimport.Key, keyPath string) string {
	if key.Encrypted {
		return keyPath + " still holds the key, under its password"
	}
	return keyPath + " still holds the key in the clear"
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return b, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return b, fmt.Errorf("%s: larger than any private key (%d bytes at most): give a PEM, DER or AES key file", path, maxKeyFile)
	}
	return b, nil
}

// optionalKeyID reads --id for a software key: nil when not given (the
// key's own default ID is used), else the ID in hex, 0x allowed.
func optionalKeyID(id string) ([]byte, error) {
	if id == "" {
		return nil, nil
	}
	return parseKeyID(strings.TrimPrefix(id, "0x"), id, "give the ID in hex, e.g. --id 01")
}
