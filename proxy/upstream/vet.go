package upstream

import (
	"errors"
	"net/http"
)

// ErrNodesRefused is returned by Pool.RoundTrip when nodes are up but every
// one still available was refused by the Vetter (its Superset signs with
// another SECRET_KEY than the gateway's). The proxy answers 503 with an
// operator-facing reason. It wraps nothing the client may see.
var ErrNodesRefused = errors.New("upstream: every available node is refused by the secret check")

// Vetter judges nodes by what they answer. The pool asks it once per node,
// at construction, for that node's NodeVet.
type Vetter interface {
	Vet(node string) NodeVet
	// ProbePath is requested with GET on a healthy node whose NodeVet is
	// not settled, after each passing health check, so that a node is
	// judged before users reach it ("" turns probing off).
	ProbePath() string
}

// NodeVet is one node's standing. Both methods are called on the request
// path and must be cheap once the node is judged (an atomic load).
type NodeVet interface {
	// Refused reports that the node must receive no traffic.
	Refused() bool
	// Inspect looks at a response of the node before anyone else does.
	// A non-nil error discards the response (its body is closed) and
	// takes the request elsewhere when it may be retried; Inspect may
	// replace resp.Body but must leave every byte of it to the client.
	Inspect(resp *http.Response) error
	// Settled reports that Inspect has nothing left to learn, so the pool
	// stops probing the node for it.
	Settled() bool
}
