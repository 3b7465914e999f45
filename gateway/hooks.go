package gateway

import "net/http"

// chainResponseHooks runs the non-nil hooks in order, stopping at the
// first error.
func chainResponseHooks(hooks ...func(*http.Response) error) func(*http.Response) error {
	var hs []func(*http.Response) error
	for _, h := range hooks {
		if h != nil {
			hs = append(hs, h)
		}
	}
	return func(resp *http.Response) error {
		for _, h := range hs {
			if err := h(resp); err != nil {
				return err
			}
		}
		return nil
	}
}
