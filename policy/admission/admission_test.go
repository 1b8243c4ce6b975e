package admission_test

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/certbind/certbind/policy/admission"
)

func key(i int) [32]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return sha256.Sum256(b[:])
}

func TestSecondSighting(t *testing.T) {
	d := admission.New(4)
	if d.Admit(key(1)) {
		t.Fatal("admitted on first sight")
	}
	if !d.Admit(key(1)) || !d.Admit(key(1)) {
		t.Fatal("not admitted on second and third sight")
	}
	if d.Admit(key(2)) {
		t.Fatal("another key admitted on first sight")
	}
}

// TestMemory: a key comes back after n other new keys. Within size it is always admitted;
// after 2*size it never is; in between it depends on where the generation turned.
func TestMemory(t *testing.T) {
	const size = 100
	for _, tt := range []struct {
		others int
		want   bool
	}{{0, true}, {size - 1, true}, {2*size + 1, false}, {10 * size, false}} {
		d := admission.New(size)
		for i := 0; i < 3*size; i++ { // fill both generations with keys never seen again
			d.Admit(key(1_000_000 + i))
		}
		d.Admit(key(1))
		for i := 0; i < tt.others; i++ {
			d.Admit(key(2 + i))
		}
		if got := d.Admit(key(1)); got != tt.want {
			t.Errorf("after %d other keys: admitted %v, want %v", tt.others, got, tt.want)
		}
	}
}

// TestRecent: keys that keep coming back in a stream of new ones stay admitted, whatever the
// stream's length: each sighting renews them in the newer generation.
func TestRecent(t *testing.T) {
	d := admission.New(50)
	regulars := []int{1, 2, 3, 4, 5}
	for _, r := range regulars {
		d.Admit(key(r))
	}
	for i := 0; i < 10_000; i++ {
		d.Admit(key(100 + i)) // a one-time key
		if i%40 == 0 {
			for _, r := range regulars {
				if !d.Admit(key(r)) {
					t.Fatalf("regular %d not admitted after %d one-time keys", r, i)
				}
			}
		}
	}
}

func TestNilAndZero(t *testing.T) {
	var nilDoor *admission.Doorkeeper
	var zero admission.Doorkeeper
	for _, d := range []*admission.Doorkeeper{nilDoor, &zero} {
		if d.Admit(key(1)) || d.Admit(key(1)) {
			t.Error("admitted by a Doorkeeper that remembers nothing")
		}
	}
}

func TestConcurrent(t *testing.T) {
	d := admission.New(64)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				d.Admit(key(i % 100))
			}
		}()
	}
	wg.Wait()
}
