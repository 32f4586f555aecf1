//go:build openssl && cgo

package opensslkdf

// #cgo LDFLAGS: -lcrypto
// #include <openssl/evp.h>
//
// /* One call of EVP_BytesToKey exactly as sc-hsm-tool makes it (OpenSC
//    src/tools/sc-hsm-tool.c create_dkek_share and import_dkek_share); the
//    salt is always 8 bytes (PKCS5_SALT_LEN). Returns the key length, or 0. */
// static int bytes_to_key(const unsigned char *salt, const unsigned char *pw, int pwlen,
//                         int count, unsigned char *key, unsigned char *iv) {
// 	return EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), salt, pw, pwlen, count, key, iv);
// }
import "C"

import (
	"errors"
	"unsafe"
)

// Available reports whether this build calls OpenSSL.
const Available = true

// BytesToKey returns EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), salt,
// password, len(password), count, key, iv) computed by the system's libcrypto.
func BytesToKey(password, salt []byte, count int) (key [32]byte, iv [16]byte, err error) {
	if len(salt) != 8 {
		return key, iv, errors.New("salt must be 8 bytes")
	}
	// A NUL-terminated copy, as sc-hsm-tool passes a C string, so that an
	// empty password is still a valid pointer (EVP_BytesToKey returns early
	// for NULL).
	buf := make([]byte, len(password)+1)
	copy(buf, password)
	defer clear(buf)
	pw := (*C.uchar)(unsafe.Pointer(&buf[0]))
	n := C.bytes_to_key((*C.uchar)(unsafe.Pointer(&salt[0])), pw, C.int(len(password)), C.int(count),
		(*C.uchar)(unsafe.Pointer(&key[0])), (*C.uchar)(unsafe.Pointer(&iv[0])))
	if n != 32 {
		return key, iv, errors.New("EVP_BytesToKey failed")
	}
	return key, iv, nil
}

// Version is the OpenSSL version string of the libcrypto in use.
func Version() string {
	return C.GoString(C.OpenSSL_version(C.OPENSSL_VERSION))
}
