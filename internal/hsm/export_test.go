package hsm

// Exported for the fuzz targets of package hsm_test (fuzz_test.go): the
// unexported BER-TLV reader and writer.

// FindTLV is findTLV.
func FindTLV(b []byte, tag byte) ([]byte, bool) { return findTLV(b, tag) }

// BERLength is berLength.
func BERLength(b []byte) (n, size int, ok bool) { return berLength(b) }

// BERTLV is berTLV.
func BERTLV(tag byte, v []byte) []byte { return berTLV(tag, v) }
