// Package opensslkdf calls OpenSSL's EVP_BytesToKey with MD5 and AES-256-CBC
// through cgo, the way sc-hsm-tool derives the key of a DKEK share file
// (OpenSC src/tools/sc-hsm-tool.c; OpenSSL crypto/evp/evp_key.c). It is the
// reference and the speed baseline of the KDF benchmark in bench, and is only
// real when built with the tag openssl (which needs cgo and libssl-dev);
// without it Available is false, so normal builds and go vet need neither.
package opensslkdf
