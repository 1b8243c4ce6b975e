package revocation

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// fetch performs one HTTP exchange bounded by Options.Timeout (connection, headers and body)
// and by max bytes of body. body nil means GET, else POST with contentType.
func (c *Checker) fetch(ctx context.Context, kind, url string, body []byte, contentType, accept string, max int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	method, rd := http.MethodGet, io.Reader(nil)
	if body != nil {
		method, rd = http.MethodPost, bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("revocation: %s %s: %w: %w", kind, url, ErrFetch, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.opts.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("revocation: %s %s: %w: %w", kind, url, ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("revocation: %s %s: %w: HTTP %d", kind, url, ErrFetch, resp.StatusCode)
	}
	if resp.ContentLength > max {
		return nil, fmt.Errorf("revocation: %s %s: %w: %d bytes, limit %d", kind, url, ErrTooLarge, resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("revocation: %s %s: %w: %w", kind, url, ErrFetch, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("revocation: %s %s: %w: over %d bytes", kind, url, ErrTooLarge, max)
	}
	return data, nil
}

func (c *Checker) onFetch(kind, url string, err error) {
	if c.opts.OnFetch != nil {
		c.opts.OnFetch(kind, url, err)
	}
}
