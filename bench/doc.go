// Package bench holds the speed comparison of the DKEK share key derivation
// (internal/dkekshare) with OpenSSL's EVP_BytesToKey, the function
// sc-hsm-tool uses, and with a bare loop of general MD5 compressions
// (bench/bareloop). Run it with bench/kdf.sh, which installs libssl-dev if
// needed and runs
//
//	go test -tags openssl -run '^$' -bench KDF -benchtime 3x ./bench/...
//
// BenchmarkKDF times, in each of its rounds and in one process on one locked
// OS thread, one full derivation (3 x 10,000,000 MD5) by each of:
//
//   - ours: dkekshare.DeriveKeyIV with a no-op progress callback;
//   - openssl: EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), ...) through cgo
//     (bench/opensslkdf, only with the build tag openssl);
//   - bareloop: bareloop.Chain over 30,000,000 rounds, i.e. 30,000,000 calls of
//     a general, unspecialised MD5 compression (see bench/bareloop for exactly
//     what it does and does not do).
//
// and reports the thread CPU seconds of each (ours-s, openssl-s, bareloop-s)
// and the ratios ours/openssl and ours/bareloop, plus the same ratios in wall
// time (wall-ours/openssl, wall-ours/bareloop). The order of the three is
// rotated from round to round. Nothing here is a pass/fail timing test.
package bench
