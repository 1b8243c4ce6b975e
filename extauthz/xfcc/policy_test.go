package xfcc

import (
	"bytes"
	"errors"
	"testing"
)

func TestSelect(t *testing.T) {
	a, b, c := Element{By: []string{"a"}}, Element{By: []string{"b"}}, Element{By: []string{"c"}}
	tests := []struct {
		name    string
		elems   []Element
		p       Policy
		want    string
		wantErr error
	}{
		{"single of one", []Element{a}, PolicySingle, "a", nil},
		{"single of two (APPEND_FORWARD or an injected element)", []Element{a, b}, PolicySingle, "", ErrTooManyElements},
		{"last of three", []Element{a, b, c}, PolicyLast, "c", nil},
		{"last of one", []Element{a}, PolicyLast, "a", nil},
		{"single of none", nil, PolicySingle, "", ErrEmpty},
		{"last of none", []Element{}, PolicyLast, "", ErrEmpty},
		{"unknown policy", []Element{a}, Policy("first"), "", ErrUnknownPolicy},
		{"empty policy is not defaulted here", []Element{a}, Policy(""), "", ErrUnknownPolicy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Select(tt.elems, tt.p)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Select error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got.By[0] != tt.want {
				t.Errorf("Select = %v, want %s", got.By, tt.want)
			}
		})
	}
}

func TestLeaf(t *testing.T) {
	cert, other := []byte{0x30, 1}, []byte{0x30, 2}
	tests := []struct {
		name    string
		e       Element
		want    []byte
		wantErr error
	}{
		{"Cert", Element{Cert: cert}, cert, nil},
		{"Cert before Chain", Element{Cert: cert, Chain: [][]byte{cert, other}}, cert, nil},
		{"Chain only", Element{Chain: [][]byte{other, cert}}, other, nil},
		{"Hash only", Element{Hash: make([]byte, 32)}, nil, ErrNoCertificate},
		{"empty Chain", Element{Chain: [][]byte{}}, nil, ErrNoCertificate},
	}
	for _, tt := range tests {
		got, err := tt.e.Leaf()
		if !bytes.Equal(got, tt.want) || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: Leaf = %x, %v; want %x, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}
