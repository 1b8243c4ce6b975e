package dpop

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/certbind/certbind/testenv/pki"
	redisenv "github.com/certbind/certbind/testenv/redis"
)

func newRedis(t testing.TB, c RedisConfig) *Redis {
	t.Helper()
	r, err := NewRedis(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// inspect is a plain client of addr, to look at what a Redis store wrote.
func inspect(t testing.TB, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRedisAdd: a key is added once, under the prefix, until its time; prefixes do not meet.
func TestRedisAdd(t *testing.T) {
	addr := redisenv.Start(t)
	ctx := context.Background()
	now := time.Now()
	r := newRedis(t, RedisConfig{Address: addr})
	add := func(r *Redis, key string, until time.Time) bool {
		t.Helper()
		added, err := r.Add(ctx, key, now, until)
		if err != nil {
			t.Fatalf("Add(%s): %v", key, err)
		}
		return added
	}
	if !add(r, "k", now.Add(time.Minute)) {
		t.Fatal("first Add: not added")
	}
	if add(r, "k", now.Add(time.Minute)) {
		t.Fatal("second Add: added again")
	}
	raw := inspect(t, addr)
	ttl, err := raw.PTTL(ctx, DefaultRedisPrefix+"k").Result()
	if err != nil || ttl <= 59*time.Second || ttl > time.Minute {
		t.Errorf("%sk expires in %s (%v), want about a minute", DefaultRedisPrefix, ttl, err)
	}

	other := newRedis(t, RedisConfig{Address: addr, Prefix: "other:"})
	if !add(other, "k", now.Add(time.Minute)) {
		t.Error("another prefix: the key is not new")
	}
	if n, _ := raw.Exists(ctx, "other:k").Result(); n != 1 {
		t.Error("other:k was not written")
	}

	// The clock is real from here: expiry is Redis's.
	now = time.Now()
	if !add(r, "short", now.Add(50*time.Millisecond)) || add(r, "short", now.Add(50*time.Millisecond)) {
		t.Fatal("short: not added once")
	}
	time.Sleep(100 * time.Millisecond)
	now = time.Now()
	if !add(r, "short", now.Add(time.Minute)) {
		t.Error("short: not added again once its time passed")
	}
	// An until already past is kept 1 ms, not refused nor kept forever.
	if !add(r, "past", now.Add(-time.Hour)) {
		t.Error("past: not added")
	}
	if ttl, _ := raw.PTTL(ctx, DefaultRedisPrefix+"past").Result(); ttl > time.Millisecond {
		t.Errorf("past: expires in %s, want at most 1ms", ttl)
	}
}

// TestRedisRace: two replicas, each with its own client, race on the same keys from many
// goroutines; each key is added exactly once.
func TestRedisRace(t *testing.T) {
	addr := redisenv.Start(t)
	replicas := []*Redis{newRedis(t, RedisConfig{Address: addr, Timeout: time.Second}), newRedis(t, RedisConfig{Address: addr, Timeout: time.Second})}
	until := time.Now().Add(time.Minute)
	for round := range 20 {
		key := "race-" + string(rune('a'+round))
		var added, failed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 64 {
			wg.Go(func() {
				<-start
				ok, err := replicas[i%2].Add(context.Background(), key, time.Now(), until)
				if err != nil {
					t.Error(err)
					failed.Add(1)
				}
				if ok {
					added.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if added.Load() != 1 || failed.Load() != 0 {
			t.Fatalf("%s: added %d times, %d errors; want once", key, added.Load(), failed.Load())
		}
	}
}

// TestRedisUnavailable: whatever is not OK or nil within the timeout is an error, never
// "added" nor "seen", and holds no password; the verifier reports it as unavailable.
func TestRedisUnavailable(t *testing.T) {
	const password = "s3cret-redis-password"
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) *Redis
		want  string // in the error
	}{
		{"server stopped", func(t *testing.T) *Redis {
			s := redisenv.Run(t, redisenv.Config{})
			r := newRedis(t, RedisConfig{Address: s.Addr})
			ping(t, r)
			s.Stop()
			return r
		}, "connection refused"},
		{"server hung", func(t *testing.T) *Redis {
			s := redisenv.Run(t, redisenv.Config{})
			r := newRedis(t, RedisConfig{Address: s.Addr})
			ping(t, r)
			s.Pause()
			return r
		}, "timeout"},
		{"server hung before connecting", func(t *testing.T) *Redis {
			s := redisenv.Run(t, redisenv.Config{})
			s.Pause()
			return newRedis(t, RedisConfig{Address: s.Addr})
		}, "timeout"},
		{"wrong password", func(t *testing.T) *Redis {
			s := redisenv.Run(t, redisenv.Config{Password: password})
			return newRedis(t, RedisConfig{Address: s.Addr, Password: password + "-wrong"})
		}, "WRONGPASS"},
		{"no password", func(t *testing.T) *Redis {
			s := redisenv.Run(t, redisenv.Config{Password: password})
			return newRedis(t, RedisConfig{Address: s.Addr})
		}, "NOAUTH"},
		{"a read-only replica", func(t *testing.T) *Redis {
			primary := redisenv.Run(t, redisenv.Config{})
			replica := redisenv.Run(t, redisenv.Config{ReplicaOf: primary.Addr})
			return newRedis(t, RedisConfig{Address: replica.Addr})
		}, "READONLY"},
		{"a database the server does not have", func(t *testing.T) *Redis {
			return newRedis(t, RedisConfig{Address: redisenv.Start(t), DB: 99})
		}, "DB index is out of range"},
		{"an answer other than OK or nil", func(t *testing.T) *Redis {
			r := newRedis(t, RedisConfig{Address: redisenv.Start(t)})
			r.client.AddHook(answer("QUEUED"))
			return r
		}, `answered "QUEUED"`},
		{"closed", func(t *testing.T) *Redis {
			r := newRedis(t, RedisConfig{Address: redisenv.Start(t)})
			r.Close()
			return r
		}, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.setup(t)
			start := time.Now()
			added, err := r.Add(context.Background(), "k", time.Now(), time.Now().Add(time.Minute))
			elapsed := time.Since(start)
			if err == nil || added {
				t.Fatalf("Add: %v %v, want an error", added, err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), password) {
				t.Errorf("Add: %v, want %q (and no password)", err, tc.want)
			}
			if elapsed > DefaultRedisTimeout+200*time.Millisecond {
				t.Errorf("Add took %s, timeout %s", elapsed, DefaultRedisTimeout)
			}
			if err := r.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), password) {
				t.Errorf("Ping: %v, want %q (and no password)", err, tc.want)
			}
			v, err := NewVerifier(Config{Replay: r})
			if err != nil {
				t.Fatal(err)
			}
			m := newMinter(t)
			_, err = v.Verify(context.Background(), []string{m.mint(t, m.header(), claims("u"))}, Request{Method: "GET", URI: apiURI, AccessToken: token}, t0)
			if KindOf(err) != KindUnavailable || strings.Contains(err.Error(), password) {
				t.Errorf("Verify: %v, want unavailable", err)
			}
		})
	}
}

func ping(t testing.TB, r *Redis) {
	t.Helper()
	if err := r.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// answer is a hook that replaces the reply to SET, as a proxy in front of Redis might.
type answer string

func (a answer) DialHook(next redis.DialHook) redis.DialHook { return next }
func (a answer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (a answer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c, ok := cmd.(*redis.Cmd); ok && c.Name() == "set" {
			c.SetVal(string(a))
			c.SetErr(nil)
			return nil
		}
		return err
	}
}

// TestRedisVerifier: two replicas' verifiers sharing one Redis accept a proof once: the second
// use, at either, is a replay. A proof the store forgot (a restart, or a failover that lost
// the key) is accepted again: the documented limit.
func TestRedisVerifier(t *testing.T) {
	s := redisenv.Run(t, redisenv.Config{Password: "pw"})
	var vs []*Verifier
	for range 2 {
		r := newRedis(t, RedisConfig{Address: "redis://" + s.Addr + "/3", Password: "pw"})
		ping(t, r)
		v, err := NewVerifier(Config{Replay: r})
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	m := newMinter(t)
	req := Request{Method: "GET", URI: apiURI, AccessToken: token, JKT: m.jkt}
	verify := func(v *Verifier, proof string) Kind {
		_, err := v.Verify(context.Background(), []string{proof}, req, t0)
		return KindOf(err)
	}
	p := m.mint(t, m.header(), claims("shared"))
	for i, want := range []Kind{"", KindReplay, KindReplay} {
		if k := verify(vs[i%2], p); k != want {
			t.Fatalf("use %d, at replica %d: %q, want %q", i+1, i%2, k, want)
		}
	}
	if k := verify(vs[1], m.mint(t, m.header(), claims("another"))); k != "" {
		t.Fatalf("another proof: %q", k)
	}

	s.Restart()
	if k := verify(vs[1], p); k != "" {
		t.Fatalf("after a restart without persistence: %q, want accepted (the store forgot)", k)
	}
	s.Stop()
	if k := verify(vs[0], m.mint(t, m.header(), claims("down"))); k != KindUnavailable {
		t.Fatalf("server down: %q, want unavailable", k)
	}
}

// TestRedisTLS: rediss with a client certificate against redis-server's own TLS.
func TestRedisTLS(t *testing.T) {
	ca := pki.NewRoot("redis test CA")
	server := ca.Leaf("redis", pki.ServerAuth(), pki.IP("127.0.0.1"))
	client := ca.Leaf("certbind")
	s := redisenv.Run(t, redisenv.Config{TLS: &redisenv.TLS{Cert: server.ChainPEM(), Key: server.KeyPEM(), ClientCA: ca.PEM()}})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	withCert := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: client.ChainDER(), PrivateKey: client.Key}}}
	other := x509.NewCertPool()
	other.AddCert(pki.NewRoot("another CA").Cert)

	for _, tc := range []struct {
		name string
		c    RedisConfig
		want string // in the error; "": added
	}{
		{"client certificate", RedisConfig{Address: "rediss://" + s.TLSAddr, TLS: withCert}, ""},
		{"host:port with TLS", RedisConfig{Address: s.TLSAddr, TLS: withCert}, ""},
		{"no client certificate", RedisConfig{Address: "rediss://" + s.TLSAddr, TLS: &tls.Config{RootCAs: roots}}, "certificate"},
		{"server from another CA", RedisConfig{Address: "rediss://" + s.TLSAddr, TLS: &tls.Config{RootCAs: other, Certificates: withCert.Certificates}}, "certificate signed by unknown authority"},
		{"system roots", RedisConfig{Address: "rediss://" + s.TLSAddr}, "certificate signed by unknown authority"},
		{"plain to the TLS port", RedisConfig{Address: s.TLSAddr}, "redis: SET: "}, // EOF or connection reset
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Timeout = time.Second
			r := newRedis(t, tc.c)
			added, err := r.Add(context.Background(), tc.name, time.Now(), time.Now().Add(time.Minute))
			switch {
			case tc.want == "" && (err != nil || !added):
				t.Errorf("Add: %v %v, want added", added, err)
			case tc.want != "" && (err == nil || added || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Add: %v %v, want an error with %q", added, err, tc.want)
			}
		})
	}
	if withCert.ServerName != "" {
		t.Error("NewRedis changed the caller's TLS configuration")
	}
}

// TestNewRedis: an address, user, database and TLS are validated; no error quotes a password.
func TestNewRedis(t *testing.T) {
	tlsc := &tls.Config{}
	for _, tc := range []struct {
		name   string
		c      RedisConfig
		want   string // in the error; "" valid
		addr   string
		user   string
		db     int
		useTLS bool
	}{
		{"host:port", RedisConfig{Address: "redis.example.org:6379"}, "", "redis.example.org:6379", "", 0, false},
		{"URL with user and database", RedisConfig{Address: "redis://certbind@redis.example.org/2"}, "", "redis.example.org:6379", "certbind", 2, false},
		{"rediss", RedisConfig{Address: "rediss://redis.example.org:6380"}, "", "redis.example.org:6380", "", 0, true},
		{"rediss with a TLS configuration", RedisConfig{Address: "rediss://redis.example.org", TLS: tlsc}, "", "redis.example.org:6379", "", 0, true},
		{"the same user twice", RedisConfig{Address: "redis://u@h:1", Username: "u"}, "", "h:1", "u", 0, false},
		{"the same database twice", RedisConfig{Address: "redis://h:1/4", DB: 4}, "", "h:1", "", 4, false},
		{"IPv6", RedisConfig{Address: "[::1]:6379", DB: 1}, "", "[::1]:6379", "", 1, false},

		{"no address", RedisConfig{}, "no address", "", "", 0, false},
		{"no port", RedisConfig{Address: "redis.example.org"}, "missing port", "", "", 0, false},
		{"password in the URL", RedisConfig{Address: "redis://u:hunter2@h:1"}, "has a password", "", "", 0, false},
		{"password alone in the URL", RedisConfig{Address: "redis://:hunter2@h:1"}, "has a password", "", "", 0, false},
		{"unparsable URL with a password", RedisConfig{Address: "redis://u:hunter2@h:port/"}, "invalid port", "", "", 0, false},
		{"another scheme", RedisConfig{Address: "http://h:1"}, `scheme "http"`, "", "", 0, false},
		{"unix socket", RedisConfig{Address: "unix:///run/redis.sock"}, `scheme "unix"`, "", "", 0, false},
		{"query", RedisConfig{Address: "redis://h:1?db=2"}, "query", "", "", 0, false},
		{"path not a database", RedisConfig{Address: "redis://h:1/x"}, "invalid database", "", "", 0, false},
		{"redis:// with TLS", RedisConfig{Address: "redis://h:1", TLS: tlsc}, "use rediss://", "", "", 0, false},
		{"two users", RedisConfig{Address: "redis://a@h:1", Username: "b"}, `username "b", and "a"`, "", "", 0, false},
		{"two databases", RedisConfig{Address: "redis://h:1/2", DB: 3}, "database 3, and 2", "", "", 0, false},
		{"negative database", RedisConfig{Address: "h:1", DB: -1}, "negative", "", "", 0, false},
		{"negative timeout", RedisConfig{Address: "h:1", Timeout: -time.Second}, "negative", "", "", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Password = "hunter2"
			r, err := NewRedis(tc.c)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("%v, want an error with %q and no password", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			o := r.client.Options()
			if o.Addr != tc.addr || o.Username != tc.user || o.DB != tc.db || (o.TLSConfig != nil) != tc.useTLS || o.Password != "hunter2" {
				t.Errorf("addr %s user %q db %d TLS %v, want %s %q %d %v", o.Addr, o.Username, o.DB, o.TLSConfig != nil, tc.addr, tc.user, tc.db, tc.useTLS)
			}
			if tc.useTLS && (o.TLSConfig.ServerName != "redis.example.org" || o.TLSConfig.MinVersion < tls.VersionTLS12) {
				t.Errorf("TLS server name %q, minimum version %x", o.TLSConfig.ServerName, o.TLSConfig.MinVersion)
			}
			if r.prefix != DefaultRedisPrefix || r.timeout != DefaultRedisTimeout {
				t.Errorf("prefix %q, timeout %s: not the defaults", r.prefix, r.timeout)
			}
		})
	}
}
