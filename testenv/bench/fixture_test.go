package bench

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/certbind/certbind/extauthz"
	"github.com/certbind/certbind/policy"
)

// certbindFixture is a fixture and an in-process certbind on its configuration.
func certbindFixture(t *testing.T) (*Fixture, *extauthz.Server) {
	t.Helper()
	f, err := NewFixture(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.LoadConfig(f.ConfigPath(), policy.LoadOptions{})
	if err != nil {
		t.Fatalf("generated configuration: %v", err)
	}
	return f, extauthz.New(extauthz.Config{Engine: policy.NewEngine(policy.EngineConfig{Config: cfg})})
}

// TestScenariosAreAllowed: every scenario's requests pass certbind, over gRPC and HTTP, so a
// benchmark measures the allow path it means to.
func TestScenariosAreAllowed(t *testing.T) {
	f, srv := certbindFixture(t)
	warm, err := f.WarmCredential()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := f.ColdPool(100, 3)
	if err != nil {
		t.Fatal(err)
	}
	grpcClient := dial(t, startGRPC(t, srv), 1)
	ts := httptest.NewServer(extauthz.NewHTTPHandler(srv))
	defer ts.Close()
	httpClient := NewHTTPClient(ts.Listener.Addr().String(), 1)
	defer httpClient.Close()
	ctx := context.Background()
	for _, s := range Scenarios {
		for i, r := range s.Requests(warm, pool) {
			frames, err := Frames([]Request{r}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if err := grpcClient.Check(ctx, 0, frames[0]); err != nil {
				t.Errorf("%s request %d over gRPC: %v", s.Name, i, err)
			}
			if err := httpClient.Do(ctx, httpClient.Prepare(r)); err != nil {
				t.Errorf("%s request %d over HTTP: %v", s.Name, i, err)
			}
		}
	}
}

// TestBindingIsChecked: a token bound to another certificate is refused, so the scenarios do
// exercise the binding.
func TestBindingIsChecked(t *testing.T) {
	f, srv := certbindFixture(t)
	a, err := f.NewCredential(1, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.NewCredential(2, true)
	if err != nil {
		t.Fatal(err)
	}
	a.Token = b.Token
	frames, err := Frames([]Request{NewRequest(a, ModeBoundToken, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, startGRPC(t, srv), 1)
	var de *DeniedError
	if err := c.Check(context.Background(), 0, frames[0]); !errors.As(err, &de) || !strings.Contains(de.Detail, "token") {
		t.Errorf("swapped token: err = %v, want a token denial", err)
	}
}

func TestMintedCertificates(t *testing.T) {
	f, err := NewFixture(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(f.Root.Cert)
	inters := x509.NewCertPool()
	inters.AddCert(f.Intermediate.Cert)
	seen := map[[32]byte]bool{}
	for seq := range uint64(20) {
		der, err := f.minter.mint(seq)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("minted %d: %v", seq, err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("minted %d does not verify: %v", seq, err)
		}
		if !bytesEqual(c.RawSubject, f.Client.Cert.RawSubject) || c.SerialNumber.Cmp(f.Client.Cert.SerialNumber) == 0 {
			t.Errorf("minted %d: subject or serial wrong", seq)
		}
		sum := sha256.Sum256(der)
		if seen[sum] {
			t.Errorf("minted %d repeats a certificate", seq)
		}
		seen[sum] = true
	}
}

func TestFrameIsTheCheckRequest(t *testing.T) {
	f, err := NewFixture(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.WarmCredential()
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	r := NewRequest(c, ModeClientAuth, 7)
	frames, err := Frames([]Request{r, r}, at)
	if err != nil {
		t.Fatal(err)
	}
	var got authv3.CheckRequest
	if err := proto.Unmarshal(frames[1], &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, r.CheckRequest(at)) {
		t.Error("frame does not decode to the CheckRequest")
	}
	h := got.GetAttributes().GetRequest().GetHttp()
	if got.GetAttributes().GetContextExtensions()["certbind_mode"] != "client_auth" || h.GetBody() == "" ||
		h.GetHeaders()["x-forwarded-client-cert"] != c.XFCC || got.GetAttributes().GetSource().GetCertificate() != c.PeerCertificate {
		t.Errorf("CheckRequest lacks the mode, body or certificate: %v", &got)
	}
	// SANITIZE_SET with subject, cert and chain: By, Hash, Cert, Chain, Subject.
	for _, k := range []string{"By=" + ProxyID + ";", ";Hash=", ";Cert=\"", ";Chain=\"", ";Subject=\""} {
		if !strings.Contains(c.XFCC, k) {
			t.Errorf("XFCC lacks %q: %.120s...", k, c.XFCC)
		}
	}
}

func TestStream(t *testing.T) {
	f, err := NewFixture(t.TempDir(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	frames, errc := f.Stream(ctx, 1000, 10, 2, 4, func(i uint64) Mode {
		if i%2 == 0 {
			return ModeClientAuth
		}
		return ModeBoundToken
	})
	seen := map[string]bool{}
	for fr := range frames {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(fr, &req); err != nil {
			t.Fatal(err)
		}
		cert := req.GetAttributes().GetSource().GetCertificate()
		if seen[cert] {
			t.Error("a certificate repeats")
		}
		seen[cert] = true
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	if len(seen) != 10 {
		t.Errorf("%d frames, want 10", len(seen))
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestDPoPRequests: the DPoP scenario's requests pass certbind over gRPC, each once: the same
// proof again is a replay, and a proof of another key is refused, so the scenario measures a
// proof verified on every request.
func TestDPoPRequests(t *testing.T) {
	f, srv := certbindFixture(t)
	warm, err := f.WarmCredential()
	if err != nil {
		t.Fatal(err)
	}
	d, err := f.NewDPoP()
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.NewDPoP()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	reqs, err := d.Requests(warm, 1, 3, now)
	if err != nil {
		t.Fatal(err)
	}
	other.ath = d.ath // a proof for d's token, by another key
	foreign, err := other.Proof(99, now)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := Frames(append(reqs, reqs[0], d.Request(warm, foreign, 99)), now)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, startGRPC(t, srv), 1)
	ctx := context.Background()
	for i := range reqs {
		if err := c.Check(ctx, 0, frames[i]); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	var de *DeniedError
	if err := c.Check(ctx, 0, frames[3]); !errors.As(err, &de) || !strings.Contains(de.Detail, "dpop_proof_replayed") {
		t.Errorf("the first proof again: %v, want dpop_proof_replayed", err)
	}
	if err := c.Check(ctx, 0, frames[4]); !errors.As(err, &de) || !strings.Contains(de.Detail, "dpop_key_mismatch") {
		t.Errorf("another key's proof: %v, want dpop_key_mismatch", err)
	}
}
