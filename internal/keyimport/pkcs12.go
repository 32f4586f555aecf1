package keyimport

import (
	"crypto/hmac"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"strings"
	"unicode/utf16"
)

// PKCS#12 structures, RFC 7292 sections 4 and 4.2, with the ContentInfo
// of PKCS#7 (RFC 2315 section 7).
var (
	oidPKCS7EncryptedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 6}
	oidKeyBag             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
	oidShroudedKeyBag     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	oidCertBag            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	oidSafeContentsBag    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 6}
	oidX509Certificate    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	oidFriendlyName       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 20}
	oidLocalKeyID         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
)

type pfx struct {
	Version  int
	AuthSafe contentInfo
	MacData  macData `asn1:"optional"`
}

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type macData struct {
	Mac struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	MacSalt    []byte
	Iterations int `asn1:"optional,default:1"`
}

type encryptedData struct {
	Version int
	Content struct {
		ContentType asn1.ObjectIdentifier
		Algorithm   pkix.AlgorithmIdentifier
		Encrypted   asn1.RawValue `asn1:"tag:0,optional"`
	}
}

type safeBag struct {
	ID         asn1.ObjectIdentifier
	Value      asn1.RawValue `asn1:"explicit,tag:0"`
	Attributes []attribute   `asn1:"set,optional"`
}

type attribute struct {
	ID     asn1.ObjectIdentifier
	Values asn1.RawValue `asn1:"set"`
}

type certBag struct {
	ID    asn1.ObjectIdentifier
	Value []byte `asn1:"explicit,tag:0"`
}

// encryptedPrivateKeyInfo is RFC 5208 section 6 (PKCS#8).
type encryptedPrivateKeyInfo struct {
	Algorithm pkix.AlgorithmIdentifier
	Data      []byte
}

// p12Key is a private key found in a PKCS#12 file, as PKCS#8 DER.
type p12Key struct {
	der  []byte
	name string
	id   []byte
}

// p12Cert is a certificate found in a PKCS#12 file.
type p12Cert struct {
	der []byte
	id  []byte
}

// p12Contents are the bags of a PKCS#12 file that matter here.
type p12Contents struct {
	keys  []p12Key
	certs []p12Cert
}

func (c *p12Contents) wipe() {
	for _, k := range c.keys {
		clear(k.der)
	}
}

// openPKCS12 checks the MAC of a PFX (RFC 7292 section 4; PBMAC1 of RFC
// 9579) and decrypts its contents with password. It needs a password
// only when the file has a MAC or encrypted contents: it asks for one
// through pw only then, and first tries the empty password, with which
// many tools export "unprotected" files.
func openPKCS12(der []byte, pw passwordFunc) (*p12Contents, bool, error) {
	var p pfx
	if err := unmarshalAll(der, &p); err != nil {
		return nil, false, fmt.Errorf("%w: a PKCS#12 file that does not parse as DER (%v); re-export it with openssl pkcs12 -export", ErrUnsupported, err)
	}
	if p.Version != 3 {
		return nil, false, fmt.Errorf("%w: PKCS#12 version %d, not 3", ErrUnsupported, p.Version)
	}
	if !p.AuthSafe.ContentType.Equal(oidPKCS7Data) {
		return nil, false, fmt.Errorf("%w: a PKCS#12 file signed with a public key (only password integrity is supported)", ErrUnsupported)
	}
	var authSafe []byte
	if err := unmarshalAll(p.AuthSafe.Content.Bytes, &authSafe); err != nil {
		return nil, false, fmt.Errorf("%w: a malformed PKCS#12 file (%v)", ErrUnsupported, err)
	}
	var infos []contentInfo
	if err := unmarshalAll(authSafe, &infos); err != nil {
		return nil, false, fmt.Errorf("%w: a malformed PKCS#12 file (%v)", ErrUnsupported, err)
	}
	s := &p12Password{ask: pw}
	defer s.wipe()
	if len(p.MacData.Mac.Algorithm.Algorithm) > 0 {
		ok, err := checkMAC(&p.MacData, authSafe, nil)
		if err != nil {
			return nil, false, err
		}
		if ok {
			s.password, s.have = []byte{}, true
		} else {
			password, err := s.get()
			if err != nil {
				return nil, false, err
			}
			if ok, err = checkMAC(&p.MacData, authSafe, password); err != nil {
				return nil, true, err
			} else if !ok {
				return nil, true, ErrWrongPassword
			}
		}
	}
	c := &p12Contents{}
	for _, ci := range infos {
		var data []byte
		switch {
		case ci.ContentType.Equal(oidPKCS7Data):
			if err := unmarshalAll(ci.Content.Bytes, &data); err != nil {
				return nil, s.asked, fmt.Errorf("%w: a malformed PKCS#12 file (%v)", ErrUnsupported, err)
			}
		case ci.ContentType.Equal(oidPKCS7EncryptedData):
			var ed encryptedData
			if err := unmarshalAll(ci.Content.Bytes, &ed); err != nil {
				return nil, s.asked, fmt.Errorf("%w: a malformed PKCS#12 file (%v)", ErrUnsupported, err)
			}
			password, err := s.get()
			if err != nil {
				return nil, s.asked, err
			}
			if data, err = decrypt(ed.Content.Algorithm, password, ed.Content.Encrypted.Bytes); err != nil {
				c.wipe()
				return nil, s.asked, err
			}
		default:
			continue
		}
		if err := c.addBags(data, s, 0); err != nil {
			c.wipe()
			return nil, s.asked, err
		}
	}
	return c, s.asked, nil
}

// p12Password asks for the password of a PKCS#12 file once, when first
// needed.
type p12Password struct {
	ask         passwordFunc
	password    []byte
	have, asked bool
}

func (s *p12Password) get() ([]byte, error) {
	if !s.have {
		pw, err := s.ask()
		if err != nil {
			return nil, err
		}
		s.password, s.have, s.asked = pw, true, true
	}
	return s.password, nil
}

func (s *p12Password) wipe() { clear(s.password) }

// addBags reads a SafeContents (RFC 7292 section 4.2).
func (c *p12Contents) addBags(data []byte, s *p12Password, depth int) error {
	var bags []safeBag
	if err := unmarshalAll(data, &bags); err != nil {
		return fmt.Errorf("%w: a malformed PKCS#12 file (%v)", ErrUnsupported, err)
	}
	for _, b := range bags {
		name, id := bagAttributes(b.Attributes)
		switch {
		case b.ID.Equal(oidKeyBag):
			c.keys = append(c.keys, p12Key{der: b.Value.Bytes, name: name, id: id})
		case b.ID.Equal(oidShroudedKeyBag):
			password, err := s.get()
			if err != nil {
				return err
			}
			der, err := decryptPKCS8(b.Value.Bytes, password)
			if err != nil {
				return err
			}
			c.keys = append(c.keys, p12Key{der: der, name: name, id: id})
		case b.ID.Equal(oidCertBag):
			var cb certBag
			if err := unmarshalAll(b.Value.Bytes, &cb); err != nil || !cb.ID.Equal(oidX509Certificate) {
				continue // SDSI certificates and the like: nothing to store
			}
			c.certs = append(c.certs, p12Cert{der: cb.Value, id: id})
		case b.ID.Equal(oidSafeContentsBag) && depth < 4:
			if err := c.addBags(b.Value.Bytes, s, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// bagAttributes returns a bag's friendlyName and localKeyId (RFC 7292
// section 4.2, PKCS#9).
func bagAttributes(attrs []attribute) (name string, id []byte) {
	for _, a := range attrs {
		var v asn1.RawValue
		if _, err := asn1.Unmarshal(a.Values.Bytes, &v); err != nil {
			continue
		}
		switch {
		case a.ID.Equal(oidFriendlyName) && v.Tag == asn1.TagBMPString && len(v.Bytes)%2 == 0:
			u := make([]uint16, len(v.Bytes)/2)
			for i := range u {
				u[i] = uint16(v.Bytes[2*i])<<8 | uint16(v.Bytes[2*i+1])
			}
			name = string(utf16.Decode(u))
		case a.ID.Equal(oidLocalKeyID) && v.Tag == asn1.TagOctetString:
			id = v.Bytes
		}
	}
	return name, id
}

// checkMAC verifies a PFX's MacData over the authenticated safe. A nil
// password tries the empty one in both encodings tools use (the two zero
// bytes of an empty BMPString, and no bytes at all).
func checkMAC(m *macData, content, password []byte) (bool, error) {
	alg := m.Mac.Algorithm
	if alg.Algorithm.Equal(oidPBMAC1) {
		// RFC 9579: PBKDF2 over the UTF-8 password, then the HMAC the
		// parameters name; MacData's salt and iterations are unused.
		var p struct {
			KDF pkix.AlgorithmIdentifier
			MAC pkix.AlgorithmIdentifier
		}
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return false, fmt.Errorf("%w: malformed PBMAC1 parameters", ErrUnsupported)
		}
		o := p.MAC.Algorithm
		h := hmacHash(o)
		if h == nil {
			return false, fmt.Errorf("%w: PBMAC1 with MAC %s", ErrUnsupported, o)
		}
		var kdf pbkdf2Params
		if err := unmarshalAll(p.KDF.Parameters.FullBytes, &kdf); err != nil || kdf.KeyLength == 0 {
			return false, fmt.Errorf("%w: PBMAC1 parameters without a key length (RFC 9579 section 5)", ErrUnsupported)
		}
		key, err := derive(p.KDF, password, 0)
		if err != nil {
			return false, err
		}
		defer clear(key)
		mac := hmac.New(h, key)
		mac.Write(content)
		return hmac.Equal(mac.Sum(nil), m.Mac.Digest), nil
	}
	h := digest(alg.Algorithm)
	if h == nil {
		return false, fmt.Errorf("%w: PKCS#12 MAC with digest %s (supported: SHA-1, SHA-256, SHA-384, SHA-512, PBMAC1)", ErrUnsupported, alg.Algorithm)
	}
	if err := checkIter(m.Iterations); err != nil {
		return false, err
	}
	var tries [][]byte
	if password == nil {
		tries = [][]byte{{0, 0}, {}}
	} else {
		bmp, err := bmpPassword(password)
		if err != nil {
			return false, nil
		}
		defer clear(bmp)
		tries = [][]byte{bmp}
	}
	for _, bmp := range tries {
		key := pkcs12KDF(h, 3, bmp, m.MacSalt, m.Iterations, h().Size())
		mac := hmac.New(h, key)
		mac.Write(content)
		clear(key)
		if hmac.Equal(mac.Sum(nil), m.Mac.Digest) {
			return true, nil
		}
	}
	return false, nil
}

// decryptPKCS8 opens an EncryptedPrivateKeyInfo (RFC 5208 section 6) to
// its PrivateKeyInfo, checking that what it decrypts to is one: a wrong
// password that happens to leave a valid padding is caught there.
func decryptPKCS8(der, password []byte) ([]byte, error) {
	var e encryptedPrivateKeyInfo
	if err := unmarshalAll(der, &e); err != nil {
		return nil, fmt.Errorf("%w: a malformed encrypted PKCS#8 key (%v)", ErrUnsupported, err)
	}
	plain, err := decrypt(e.Algorithm, password, e.Data)
	if err != nil {
		return nil, err
	}
	var p pkcs8
	if err := unmarshalAll(plain, &p); err != nil {
		clear(plain)
		return nil, ErrWrongPassword
	}
	clear(p.PrivateKey)
	return plain, nil
}

// pickKey chooses the one private key of a PKCS#12 file and the
// certificates that come with it.
func (c *p12Contents) pickKey() (p12Key, error) {
	switch len(c.keys) {
	case 1:
		return c.keys[0], nil
	case 0:
		return p12Key{}, fmt.Errorf("%w: the PKCS#12 file holds %d certificate(s) and no private key; %s", ErrUnsupported, len(c.certs), Supported)
	}
	var names []string
	for i, k := range c.keys {
		switch {
		case k.name != "":
			names = append(names, fmt.Sprintf("%q", k.name))
		case len(k.id) > 0:
			names = append(names, "localKeyID "+strings.ToUpper(hex.EncodeToString(k.id)))
		default:
			names = append(names, fmt.Sprintf("key %d", i+1))
		}
	}
	return p12Key{}, fmt.Errorf("%w: the PKCS#12 file holds %d private keys (%s): import one key per file; export the one you want on its own (openssl pkcs12 -export)", ErrUnsupported, len(c.keys), strings.Join(names, ", "))
}
