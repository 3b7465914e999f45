package upstream

import "sync/atomic"

// Selector picks the node a request goes to.
//
// Select receives a non-empty slice of nodes that are currently available
// (healthy and not ejected) and returns one of them. It is called
// concurrently from many requests, must not block, and must not retain or
// modify the slice.
type Selector interface {
	Select(nodes []*Node) *Node
}

// RoundRobin hands requests to the nodes in turn. The zero value is ready to
// use; it must not be copied after first use.
type RoundRobin struct {
	next atomic.Uint64
}

var _ Selector = (*RoundRobin)(nil)

// Select returns the next node in turn.
func (s *RoundRobin) Select(nodes []*Node) *Node {
	i := s.next.Add(1) - 1
	return nodes[i%uint64(len(nodes))]
}

// LeastConn hands each request to the node with the fewest requests in
// flight. Ties are broken by a rotating start index so that idle nodes share
// the load rather than the first node taking every request. The zero value
// is ready to use; it must not be copied after first use.
type LeastConn struct {
	next atomic.Uint64
}

var _ Selector = (*LeastConn)(nil)

// Select returns the node with the fewest requests in flight.
func (s *LeastConn) Select(nodes []*Node) *Node {
	n := uint64(len(nodes))
	start := s.next.Add(1) - 1
	best := nodes[start%n]
	bestLoad := best.InFlight()
	for k := uint64(1); k < n; k++ {
		c := nodes[(start+k)%n]
		if l := c.InFlight(); l < bestLoad {
			best, bestLoad = c, l
		}
	}
	return best
}
