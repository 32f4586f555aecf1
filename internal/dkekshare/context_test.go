package dkekshare

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// TestOpenContext checks that OpenContext reads what Open reads, with the
// same errors, and that a cancelled context stops the derivation with the
// context's error and no share.
func TestOpenContext(t *testing.T) {
	for _, v := range smallCountVectors(t) {
		t.Run(v.name(), func(t *testing.T) {
			defer SetIterationsForTesting(v.count)()
			share, err := OpenContext(context.Background(), v.file, v.password, nil)
			if err != nil || !bytes.Equal(share, v.share) {
				t.Fatalf("OpenContext: got %x, %v; want %x", share, err, v.share)
			}
			wrong := append(bytes.Clone(v.password), 'x')
			if _, err := OpenContext(context.Background(), v.file, wrong, nil); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("OpenContext with a wrong password: got %v, want ErrWrongPassword", err)
			}
			if _, err := OpenContext(context.Background(), v.file[:40], v.password, nil); !errors.Is(err, ErrTruncated) {
				t.Fatalf("OpenContext of a truncated file: got %v, want ErrTruncated", err)
			}
		})
	}
}

// TestDeriveKeyIVContextStops checks that a derivation stops within a
// step of its context's end: a cancelled context, with a count far too
// large to finish in the test's time, returns at once with
// context.Canceled and a zero key and IV; the progress seen stays short
// of the total.
func TestDeriveKeyIVContextStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var last int
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	const count = 1 << 40 // hours of work
	key, iv, err := deriveKeyIVContext(ctx, []byte("pw"), []byte("12345678"), count, func(done, total int) { last = done })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if key != [32]byte{} || iv != [16]byte{} {
		t.Fatalf("a stopped derivation returned key %x iv %x", key, iv)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("stopped after %v", d)
	}
	if last >= 3*count {
		t.Fatalf("progress reached %d of %d", last, 3*count)
	}
}

// TestDeriveKeyIVContextSameKey checks that the step-wise derivation with
// a live context gives the same key and IV as the plain one, for counts
// below, at and above a cancel step.
func TestDeriveKeyIVContextSameKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, count := range []int{1, 2, cancelStep, cancelStep + 1, 2*cancelStep + 7} {
		k1, iv1 := deriveKeyIV([]byte("pw"), []byte("12345678"), count, nil)
		k2, iv2, err := deriveKeyIVContext(ctx, []byte("pw"), []byte("12345678"), count, nil)
		if err != nil || k1 != k2 || iv1 != iv2 {
			t.Fatalf("count %d: %x %x, %v; want %x %x", count, k2, iv2, err, k1, iv1)
		}
	}
}
