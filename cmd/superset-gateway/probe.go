package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// probeTimeout bounds one probe: container health checks give a probe a
// few seconds and count a hung one as failed anyway.
const probeTimeout = 3 * time.Second

// probe is `probe URL`: a GET that succeeds only on a 2xx answer. It is the
// health check of the container image, which has no shell and no curl
// (e.g. `probe http://127.0.0.1:8080/-/readyz`). Redirects are not
// followed, so a plain-HTTP listener that only redirects is not healthy.
func probe(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return usageError{fmt.Errorf("probe: %w", err)}
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("probe: want one URL, e.g. http://127.0.0.1:8080/-/healthz")}
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("probe: %q is not an http(s) URL", fs.Arg(0))}
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return usageError{fmt.Errorf("probe: %w", err)}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("probe: %s answered %d", u.Redacted(), resp.StatusCode)
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}
