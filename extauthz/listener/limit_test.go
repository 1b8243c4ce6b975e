package listener

import (
	"errors"
	"net"
	"testing"
	"time"
)

// accepted is the outcome of one Accept in the background.
type accepted struct {
	c   net.Conn
	err error
}

func acceptAsync(l net.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() { c, err := l.Accept(); ch <- accepted{c, err} }()
	return ch
}

func dial(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitAccept returns the next accepted connection, failing the test after a bound.
func waitAccept(t *testing.T, ch <-chan accepted) net.Conn {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatalf("Accept: %v", a.err)
		}
		t.Cleanup(func() { a.c.Close() })
		return a.c
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting")
		return nil
	}
}

// notAccepted asserts that Accept is still waiting: the limit holds the connection back.
func notAccepted(t *testing.T, ch <-chan accepted) {
	t.Helper()
	select {
	case a := <-ch:
		t.Fatalf("accepted beyond the limit: %v %v", a.c, a.err)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Limit(raw, 2)
	defer l.Close()
	for range 3 {
		dial(t, l)
	}
	a := waitAccept(t, acceptAsync(l))
	waitAccept(t, acceptAsync(l))
	third := acceptAsync(l)
	notAccepted(t, third)

	// Closing one connection, twice, frees exactly one place.
	a.Close()
	a.Close()
	waitAccept(t, third)
	dial(t, l)
	fourth := acceptAsync(l)
	notAccepted(t, fourth)

	// Close ends an Accept that waits for a place.
	l.Close()
	select {
	case got := <-fourth:
		if !errors.Is(got.err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v %v, want net.ErrClosed", got.c, got.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still waiting after Close")
	}
}

func TestLimitZeroIsNoLimit(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if l := Limit(raw, 0); l != raw {
		t.Fatalf("Limit(l, 0) wraps the listener: %T", l)
	}
}
