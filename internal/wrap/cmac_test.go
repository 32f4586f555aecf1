package wrap

import (
	"encoding/hex"
	"testing"
)

// RFC 4493 section 4 test vectors (AES-128), plus the AES-256 vectors of
// NIST SP 800-38B appendix D.3.
func TestCMAC(t *testing.T) {
	msg, _ := hex.DecodeString("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	tests := []struct {
		key  string
		n    int
		want string
	}{
		{"2b7e151628aed2a6abf7158809cf4f3c", 0, "bb1d6929e95937287fa37d129b756746"},
		{"2b7e151628aed2a6abf7158809cf4f3c", 16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{"2b7e151628aed2a6abf7158809cf4f3c", 40, "dfa66747de9ae63030ca32611497c827"},
		{"2b7e151628aed2a6abf7158809cf4f3c", 64, "51f0bebf7e3b9d92fc49741779363cfe"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 0, "028962f61b7bf89efc6b551f4667d983"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 16, "28a7023f452e8f82bd4bf28d8c37c35c"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 40, "aaf3d8f1de5640c232f5b169b9c911e6"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", 64, "e1992190549f6ed5696a2c056c315410"},
	}
	for _, tt := range tests {
		key, _ := hex.DecodeString(tt.key)
		got, err := cmac(key, msg[:tt.n])
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got[:]) != tt.want {
			t.Errorf("key %s… len %d: %x, want %s", tt.key[:8], tt.n, got, tt.want)
		}
	}
}
