package bench

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// checkMethod is the full name of envoy.service.auth.v3.Authorization.Check.
const checkMethod = "/envoy.service.auth.v3.Authorization/Check"

// GRPCClient sends Check calls over a fixed number of HTTP/2 connections, as Envoy does (one
// per worker thread), spreading the workers over them.
type GRPCClient struct {
	conns []*grpc.ClientConn
}

// DialGRPC opens n connections to addr (host:port, plaintext) and waits until each is ready.
func DialGRPC(ctx context.Context, addr string, n int) (*GRPCClient, error) {
	c := &GRPCClient{}
	for range max(n, 1) {
		// passthrough: one address, one connection per ClientConn, no resolver in the way.
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("bench: dial %s: %w", addr, err)
		}
		c.conns = append(c.conns, cc)
		cc.Connect()
		for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
			if !cc.WaitForStateChange(ctx, s) {
				c.Close()
				return nil, fmt.Errorf("bench: connect %s: %w (last state %s)", addr, ctx.Err(), s)
			}
		}
	}
	return c, nil
}

// Close closes every connection.
func (c *GRPCClient) Close() error {
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// Check sends one marshaled CheckRequest on the connection of worker. A CheckResponse whose
// status is not OK is a *DeniedError with the status message (certbind puts its reason there).
func (c *GRPCClient) Check(ctx context.Context, worker int, frame []byte) error {
	var st checkStatus
	if err := c.conns[worker%len(c.conns)].Invoke(ctx, checkMethod, rawFrame(frame), &st, grpc.ForceCodecV2(frameCodec{})); err != nil {
		return err
	}
	if st.code != 0 {
		return &DeniedError{Detail: fmt.Sprintf("gRPC status %d: %s", st.code, st.message)}
	}
	return nil
}

// Sender sends frame(seq) for every call.
func (c *GRPCClient) Sender(frame func(seq uint64) []byte) Sender {
	return func(ctx context.Context, worker int, seq uint64) error {
		return c.Check(ctx, worker, frame(seq))
	}
}

// rawFrame is a request already in wire form.
type rawFrame []byte

// checkStatus is the part of a CheckResponse the load generator reads: status (field 1), a
// google.rpc.Status with code (1) and message (2).
type checkStatus struct {
	code    int32
	message string
}

// frameCodec sends rawFrame as is and reads only the status of the response. Its name is
// "proto": on the wire nothing tells it from the standard codec.
type frameCodec struct{}

func (frameCodec) Name() string { return "proto" }

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	f, ok := v.(rawFrame)
	if !ok {
		return nil, fmt.Errorf("bench: frame codec cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(f)}, nil
}

func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	st, ok := v.(*checkStatus)
	if !ok {
		return fmt.Errorf("bench: frame codec cannot unmarshal into %T", v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	return st.parse(b)
}

var errResponse = errors.New("bench: malformed CheckResponse")

func (st *checkStatus) parse(b []byte) error {
	status, err := field(b, 1)
	if err != nil || status == nil {
		return err // no status: OK
	}
	for len(status) > 0 {
		num, typ, n := protowire.ConsumeTag(status)
		if n < 0 {
			return errResponse
		}
		status = status[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(status)
			if n < 0 {
				return errResponse
			}
			st.code, status = int32(v), status[n:]
			continue
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(status)
			if n < 0 {
				return errResponse
			}
			st.message, status = string(v), status[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, status)
		if n < 0 {
			return errResponse
		}
		status = status[n:]
	}
	return nil
}

// field returns the last occurrence of length-delimited field num of message b, nil if absent.
func field(b []byte, num protowire.Number) ([]byte, error) {
	var out []byte
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, errResponse
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(b)
			if l < 0 {
				return nil, errResponse
			}
			out, b = v, b[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, b)
		if l < 0 {
			return nil, errResponse
		}
		b = b[l:]
	}
	return out, nil
}
