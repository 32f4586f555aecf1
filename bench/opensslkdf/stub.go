//go:build !(openssl && cgo)

package opensslkdf

import "errors"

// Available reports whether this build calls OpenSSL.
const Available = false

// BytesToKey needs the build tag openssl (and cgo with libssl-dev).
func BytesToKey(password, salt []byte, count int) (key [32]byte, iv [16]byte, err error) {
	return key, iv, errors.New("built without the openssl tag")
}

// Version is empty without OpenSSL.
func Version() string { return "" }
