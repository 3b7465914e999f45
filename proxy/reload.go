package proxy

import (
	"net/http"
	"sync/atomic"
)

// Reloadable is an http.Handler whose target can be replaced while serving.
// Requests already running finish on the handler they started with. To
// reload, build the new handler from the new configuration and Swap it in
// only if the build succeeded; a failed build leaves the old one serving.
type Reloadable struct {
	h atomic.Pointer[handlerBox]
}

type handlerBox struct{ h http.Handler }

var _ http.Handler = (*Reloadable)(nil)

// NewReloadable returns a Reloadable serving h, which must not be nil.
func NewReloadable(h http.Handler) *Reloadable {
	r := &Reloadable{}
	r.h.Store(&handlerBox{h})
	return r
}

// Swap makes h serve every new request and returns the previous handler.
// A nil h is ignored and the current handler returned.
func (r *Reloadable) Swap(h http.Handler) http.Handler {
	if h == nil {
		return r.h.Load().h
	}
	return r.h.Swap(&handlerBox{h}).h
}

// Current returns the handler serving new requests.
func (r *Reloadable) Current() http.Handler { return r.h.Load().h }

func (r *Reloadable) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.h.Load().h.ServeHTTP(w, req)
}
