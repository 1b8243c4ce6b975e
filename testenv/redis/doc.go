// Package redis runs Debian's redis-server for a test: on loopback, on a free port, with no
// persistence (no RDB snapshot, no append-only file) and its files in the test's temporary
// directory, stopped when the test ends. Start is the plain server; Run takes a Config for a
// password (requirepass), TLS, or a read-only replica, and answers a Server a test can stop,
// pause (the process stopped with SIGSTOP: connections open, nothing answered) or restart
// empty. redis-server is the Debian package redis-server that CI (.ci/run) installs; outside
// CI a test skips without it.
//
//	addr := redis.Start(t) // 127.0.0.1:port, answering PING
package redis
