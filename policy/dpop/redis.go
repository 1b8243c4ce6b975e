package dpop

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of a Redis replay store.
const (
	DefaultRedisPrefix  = "certbind:dpop:"
	DefaultRedisTimeout = 100 * time.Millisecond
)

// RedisConfig is where a Redis replay store is and how to reach it.
type RedisConfig struct {
	// Address is host:port, or a redis:// or rediss:// URL (rediss: TLS), which may name a
	// user and a database (rediss://certbind@redis.example.org:6380/2) but not a password.
	Address  string
	Username string // an ACL user; empty: the URL's, or Redis's "default"
	// Password is the user's password (or requirepass). It is sent only in AUTH/HELLO and is
	// in no error or log line.
	Password string
	DB       int // the database number; 0: the URL's, or 0
	// TLS, when set, is used to connect (CA pool, client certificate, server name; an empty
	// ServerName is the address's host). Nil: TLS only for a rediss:// address, verified
	// against the system's roots.
	TLS *tls.Config
	// Timeout bounds each call (Add, Ping), connecting included; default DefaultRedisTimeout.
	Timeout time.Duration
	Prefix  string // of every key; default DefaultRedisPrefix
}

// Redis is a Replay on Redis (or Valkey), shared by every certbind replica that uses the same
// server and prefix, so a proof sent to any of them is accepted once.
//
// Add is one command, SET prefix+key 1 PX ms NX, which Redis runs atomically: of two replicas
// racing on the same proof, exactly one gets OK (added) and the others nil (seen). The key
// expires when the proof's acceptance window ends (until), after which the verifier refuses the
// proof by its iat anyway. The expiry is sent as a duration (PX, rounded up to a millisecond,
// at least 1 ms), so it does not depend on the Redis server's clock agreeing with ours.
//
// Any other answer (an error such as READONLY from a replica or NOAUTH, a timeout, a closed
// connection) is an error, which the verifier turns into KindUnavailable: a proof is never
// accepted without having been recorded. A command is not retried: a retry after a lost OK
// would answer nil and refuse a first use as a replay.
//
// Limits: Redis replicates asynchronously, so a failover to a replica that had not yet received
// the latest keys (or a restart without persistence) forgets them, and a proof recorded just
// before can be accepted once more, until its window ends (its iat plus the window and twice the
// leeway). WAIT would narrow that gap without closing it, and is not used. It speaks to one
// server (a primary, or a proxy in front of one), not to a Redis Cluster.
type Redis struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
}

// NewRedis makes a Redis replay store from c; it does not connect (see Ping).
func NewRedis(c RedisConfig) (*Redis, error) {
	o, err := redisOptions(c)
	if err != nil {
		return nil, fmt.Errorf("dpop: redis: %w", err)
	}
	r := &Redis{prefix: c.Prefix, timeout: c.Timeout}
	if r.prefix == "" {
		r.prefix = DefaultRedisPrefix
	}
	if r.timeout <= 0 {
		r.timeout = DefaultRedisTimeout
	}
	o.DialTimeout = r.timeout
	o.ContextTimeoutEnabled = true // the call's deadline bounds the socket reads and writes
	o.MaxRetries = -1              // no retry: see Redis
	o.DialerRetries = 1            // one dial per call; the next call dials again
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	r.client = redis.NewClient(o)
	return r, nil
}

// redisOptions validates c into go-redis options; its errors quote no password.
func redisOptions(c RedisConfig) (*redis.Options, error) {
	if c.DB < 0 {
		return nil, fmt.Errorf("database %d: negative", c.DB)
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("timeout %s: negative", c.Timeout)
	}
	o := &redis.Options{Network: "tcp"}
	switch {
	case c.Address == "":
		return nil, errors.New("no address")
	case strings.Contains(c.Address, "://"):
		u, err := url.Parse(c.Address)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error quotes the URL, which could hold a password
			}
			return nil, fmt.Errorf("address: %w", err)
		}
		if _, set := u.User.Password(); set {
			return nil, errors.New("address: has a password: give it apart from the address")
		}
		if u.Scheme != "redis" && u.Scheme != "rediss" {
			return nil, fmt.Errorf("address: scheme %q, want redis or rediss", u.Scheme)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, errors.New("address: a query or fragment is not allowed")
		}
		if o, err = redis.ParseURL(c.Address); err != nil {
			return nil, fmt.Errorf("address: %w", err)
		}
		if u.Scheme == "redis" && c.TLS != nil {
			return nil, errors.New("address: redis:// (no TLS) with a TLS configuration: use rediss://")
		}
	default:
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return nil, fmt.Errorf("address: %w", err)
		}
		o.Addr = c.Address
	}
	if c.Username != "" {
		if o.Username != "" && o.Username != c.Username {
			return nil, fmt.Errorf("username %q, and %q in the address", c.Username, o.Username)
		}
		o.Username = c.Username
	}
	if c.DB != 0 {
		if o.DB != 0 && o.DB != c.DB {
			return nil, fmt.Errorf("database %d, and %d in the address", c.DB, o.DB)
		}
		o.DB = c.DB
	}
	o.Password = c.Password
	if c.TLS != nil {
		o.TLSConfig = c.TLS.Clone()
		if o.TLSConfig.ServerName == "" {
			host, _, _ := net.SplitHostPort(o.Addr)
			o.TLSConfig.ServerName = host
		}
		if o.TLSConfig.MinVersion == 0 {
			o.TLSConfig.MinVersion = tls.VersionTLS12
		}
	}
	return o, nil
}

// Add records key until the given time with SET NX, the expiry measured from now (the
// verifier's clock, not the Redis server's); it reports false when the key is already
// recorded. It fails, never answering added, when Redis does not answer OK or nil within the
// timeout.
func (r *Redis) Add(ctx context.Context, key string, now, until time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// Rounded up: the key must not expire before until.
	ms := max((until.Sub(now)+time.Millisecond-1)/time.Millisecond, 1)
	reply, err := r.client.Do(ctx, "SET", r.prefix+key, "1", "PX", strconv.FormatInt(int64(ms), 10), "NX").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redis: SET: %w", err)
	case reply != "OK":
		return false, fmt.Errorf("redis: SET NX answered %.40q, want OK or nil", fmt.Sprint(reply))
	}
	return true, nil
}

// Ping checks that Add can work: it writes prefix+"ping" (which no Add key can be), expiring in
// a second, within the timeout. It fails as Add would: the server down or hung, a wrong
// password or database, a read-only replica, an ACL refusing SET on the prefix. For start-up
// and readiness checks.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	reply, err := r.client.Do(ctx, "SET", r.prefix+"ping", "1", "PX", "1000").Result()
	switch {
	case err != nil:
		return fmt.Errorf("dpop: redis: %w", err)
	case reply != "OK":
		return fmt.Errorf("dpop: redis: SET answered %.40q, want OK", fmt.Sprint(reply))
	}
	return nil
}

// Close closes the connections; Add fails after it.
func (r *Redis) Close() error { return r.client.Close() }
