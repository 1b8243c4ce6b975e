package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// server is an authorization server running as a child process on loopback ports.
type server struct {
	name     string
	grpcAddr string
	httpAddr string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
}

// startServer runs bin with args plus --grpc-addr and --http-addr on free loopback ports, its
// output to logPath, and waits until its gRPC health service says SERVING and its HTTP port
// accepts connections.
func startServer(ctx context.Context, name, bin string, args []string, logPath string, env ...string) (*server, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &server{name: name, grpcAddr: ports[0], httpAddr: ports[1], logPath: logPath, exited: make(chan struct{})}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, append(args, "--grpc-addr", s.grpcAddr, "--http-addr", s.httpAddr)...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if len(env) > 0 {
		s.cmd.Env = append(os.Environ(), env...)
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(ctx, 20*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%s: %w (log: %s)", name, err, tail(logPath))
	}
	return s, nil
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cc, err := grpc.NewClient("passthrough:///"+s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)
	for {
		select {
		case <-s.exited:
			return fmt.Errorf("exited before serving: %v", s.waitErr)
		default:
		}
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(rctx, &healthpb.HealthCheckRequest{})
		rcancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			c, err := net.DialTimeout("tcp", s.httpAddr, time.Second)
			if err == nil {
				c.Close()
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not serving after %s", timeout)
		case <-s.exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits, killing the process if it has not exited within 15 seconds.
func (s *server) stop() error {
	select {
	case <-s.exited:
		return s.exitErr()
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s: killed: did not stop within 15s of SIGTERM", s.name)
	}
	return s.exitErr()
}

func (s *server) exitErr() error {
	if s.waitErr != nil {
		return fmt.Errorf("%s: %w", s.name, s.waitErr)
	}
	return nil
}

// alive reports an error if the process has exited.
func (s *server) alive() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %v (log: %s)", s.name, s.waitErr, tail(s.logPath))
	default:
		return nil
	}
}

// freePorts returns n distinct loopback addresses nothing listens on right now.
func freePorts(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	const max = 2000
	if len(data) > max {
		data = data[len(data)-max:]
	}
	return string(data)
}
