package metrics

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Registry is a prometheus.Registry that remembers what was registered, so
// that the catalogue of metric families (docs/metrics.md) can be listed from
// the live registry of a running gateway, including vectors that have no
// series yet (a Gather shows only those with one).
type Registry struct {
	*prometheus.Registry
	mu sync.Mutex
	cs []prometheus.Collector
}

// Register registers c and remembers it for Families.
func (r *Registry) Register(c prometheus.Collector) error {
	if err := r.Registry.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.cs = append(r.cs, c)
	r.mu.Unlock()
	return nil
}

// MustRegister is Register that panics, as prometheus.Registry's does.
func (r *Registry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Family describes one metric family for the documentation.
type Family struct {
	Name, Type, Help string
	Labels           []string
}

// descRE reads a Desc's String(), the only exported view of its label
// names. TestFamiliesReadsLabels pins the format, so a client_golang upgrade
// that changes it fails a test rather than the documentation.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", help: "((?:[^"\\]|\\.)*)", (?:unit: "[^"]*", )?constLabels: \{[^}]*\}, variableLabels: \{([^}]*)\}\}$`)

// Families lists the families registered under namespace (the gateway's
// own; the Go runtime and process collectors change with the Go version and
// are left out), sorted by name.
func (r *Registry) Families() ([]Family, error) {
	r.mu.Lock()
	cs := append([]prometheus.Collector(nil), r.cs...)
	r.mu.Unlock()
	var out []Family
	for _, c := range cs {
		typ := collectorType(c)
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				return nil, fmt.Errorf("metrics: unreadable descriptor %s", d)
			}
			if !strings.HasPrefix(m[1], namespace+"_") {
				continue
			}
			help := strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[2])
			f := Family{Name: m[1], Type: typ, Help: help}
			for _, l := range strings.Split(m[3], ",") {
				if l = strings.TrimSpace(l); l != "" {
					f.Labels = append(f.Labels, l)
				}
			}
			if f.Type == "" {
				f.Type = collectedType(c, f.Name)
			}
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// collectorType names the type of the vectors, which may have no series
// to ask; scalar metrics always have one and are asked (collectedType),
// since a Gauge also satisfies the Counter interface.
func collectorType(c prometheus.Collector) string {
	switch c.(type) {
	case *prometheus.CounterVec:
		return "counter"
	case *prometheus.GaugeVec:
		return "gauge"
	case *prometheus.HistogramVec:
		return "histogram"
	case *prometheus.SummaryVec:
		return "summary"
	}
	return ""
}

// collectedType asks a custom collector for its series of name and reads
// their type; "untyped" when it has none right now.
func collectedType(c prometheus.Collector, name string) string {
	ch := make(chan prometheus.Metric, 16)
	go func() { c.Collect(ch); close(ch) }()
	typ := "untyped"
	for m := range ch {
		if !strings.Contains(m.Desc().String(), `"`+name+`"`) {
			continue
		}
		var pb dto.Metric
		if m.Write(&pb) != nil {
			continue
		}
		switch {
		case pb.Counter != nil:
			typ = "counter"
		case pb.Gauge != nil:
			typ = "gauge"
		case pb.Histogram != nil:
			typ = "histogram"
		case pb.Summary != nil:
			typ = "summary"
		}
	}
	return typ
}
