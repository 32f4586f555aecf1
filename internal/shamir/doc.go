// Package shamir splits and recombines the random password that protects an
// n-of-m DKEK share file, compatibly with OpenSC's sc-hsm-tool
// (--create-dkek-share / --import-dkek-share with --pwd-shares-threshold and
// --pwd-shares-total).
//
// # The scheme (as sc-hsm-tool does it)
//
// The reference is OpenSC src/tools/sc-hsm-tool.c:
//
//   - generate_pwd_shares draws an 8-byte random password, clears the top bit
//     of its first byte (so the secret has at most 63 bits) and reads it as a
//     big-endian integer s.
//   - generatePrime asks OpenSSL for a 64-bit safe prime p
//     (BN_generate_prime_ex with safe=1; OpenSSL sets the two top bits of a
//     candidate, so p >= 0xc000000000000000) and redraws while p < s. Both
//     recorded primes (testdata/pico-hsm/VECTORS.txt section 2) are such
//     primes. p is therefore larger than the secret and than any share ID.
//   - createShares picks threshold-1 coefficients uniformly in [0, p)
//     (BN_rand_range) and, with calculatePolynomialValue, gives custodian i
//     (i = 1..total) the point (i, a(i) mod p) where
//     a(x) = s + a1·x + … + a(t-1)·x^(t-1).
//   - recreate_password_from_shares / reconstructSecret interpolate the
//     entered points at x = 0 (Lagrange, mod p) and use the minimal
//     big-endian encoding of the result (BN_bn2bin) as the password.
//
// [Split] does the same (this package draws the prime itself with the same
// properties: 64 bits, two top bits set, safe) and [Combine] is the
// interpolation.
//
// # What a custodian sees
//
// generate_pwd_shares prints, for each custodian,
//
//	Prime       : e1:65:e9:72:0d:51:95:1f
//	Share ID    : 1
//	Share value : b3:1f:8f:49:57:67:30:83
//
// The prime and the value are BN_bn2bin then sc_bin_to_hex with ':' —
// minimal length, so a value below 2^56 prints with fewer than 8 bytes — and
// the ID is BN_bn2dec, decimal. [FormatHex] and [Set.Format] print exactly
// that, except that zero prints as "00" where sc-hsm-tool would print an
// empty string.
//
// # Share-set text
//
// [ParseSet] reads shares for scripts. Each line is one of
//
//	Prime       : <hex>      the block above, repeated per custodian; the
//	Share ID    : <decimal>  prime may be given once for the whole set and,
//	Share value : <hex>      when repeated, must be the same every time
//	PRIME/ID/VALUE           compact, e.g. e1:65:e9:72:0d:51:95:1f/1/b3:1f:8f:49:57:67:30:83
//
// Blank lines and lines starting with # are ignored. Hex may be written with
// or without colons, in any case, with surrounding spaces.
//
// # Differences from sc-hsm-tool
//
// sc-hsm-tool has two defects this package avoids:
//
//  1. It re-encodes the reconstructed secret with BN_bn2bin, dropping leading
//     zero bytes: a secret whose first byte is 0x00 (1 in 128 after the top
//     bit is cleared) becomes a 7-byte password, and the share file it
//     protects can never be imported with sc-hsm-tool. [NewSecret] (and so
//     [Split]) never produces such a secret — it draws again — and [Combine]
//     always returns the secret left-padded to 8 bytes, which is the password
//     the file was really enciphered with.
//  2. It prints the share ID in decimal (BN_bn2dec) but reads it back as hex
//     (BN_hex2bn), so IDs 10 and up are misread. This package prints and
//     reads IDs in decimal ([ParseID]), so "10" is share 10, not 16. For
//     IDs 1 to 9 both readings agree.
//
// Beyond sc-hsm-tool, [Split] refuses more than 255 shares (sc-hsm-tool keeps
// the counts in an unsigned char) and, after creating the shares, checks that
// they recombine to the secret (see [Split]); parsing rejects values that are
// not below the prime, duplicate IDs, and IDs outside 1..255, where
// sc-hsm-tool would silently compute a wrong password.
package shamir
