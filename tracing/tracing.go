// Package tracing exports one OpenTelemetry span per request to an OTLP/HTTP
// collector. It implements proxy.Tracer; the request path marks its stages
// on the span with Stage and sets the outcome with Caller and Refusal.
// Attributes are allow-listed: the route class, method, status, request
// id, caller kind and refusal reason. Never a path, a query, a user name
// or a credential.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/superset-gateway/superset-gateway/proxy"
)

// Options configure New.
type Options struct {
	// Endpoint is the collector's OTLP/HTTP traces URL, e.g.
	// "http://otel-collector:4318/v1/traces". Required.
	Endpoint string
	// SampleRatio is the share of new traces recorded, 0 to 1. A caller's
	// sampled flag is honoured (parent-based sampling), as the W3C
	// recommendation expects; the batch queue bounds what that costs.
	SampleRatio float64
	// ServiceName is the service.name resource attribute; "" means
	// "superset-gateway".
	ServiceName string
	// Version is the service.version resource attribute.
	Version string
}

// Tracer is the gateway's tracer. Build it with New and Shutdown it at
// exit so the last spans are sent.
type Tracer struct {
	tp *sdktrace.TracerProvider
	tr trace.Tracer
}

var _ proxy.Tracer = (*Tracer)(nil)

// New validates opts and starts the exporter. No connection is made
// until the first batch is sent.
func New(ctx context.Context, o Options) (*Tracer, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracing: endpoint %q must be an http(s) URL", o.Endpoint)
	}
	if o.SampleRatio < 0 || o.SampleRatio > 1 {
		return nil, fmt.Errorf("tracing: sample ratio %v is not between 0 and 1", o.SampleRatio)
	}
	if o.ServiceName == "" {
		o.ServiceName = "superset-gateway"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(o.Endpoint), otlptracehttp.WithTimeout(5 * time.Second)}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: exporter: %w", err)
	}
	res := resource.NewSchemaless(semconv.ServiceName(o.ServiceName), semconv.ServiceVersion(o.Version))
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
	)
	return &Tracer{tp: tp, tr: tp.Tracer("github.com/superset-gateway/superset-gateway")}, nil
}

// Shutdown sends the spans still queued and stops the exporter.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: shutdown: %w", err)
	}
	return nil
}

// Start opens the request's server span under parent (when valid).
func (t *Tracer) Start(ctx context.Context, parent proxy.TraceContext, tracestate, method, requestID string) (context.Context, proxy.RequestSpan) {
	if parent.Valid() {
		ts, err := trace.ParseTraceState(tracestate)
		if err != nil {
			ts = trace.TraceState{}
		}
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: parent.TraceID, SpanID: parent.SpanID,
			TraceFlags: trace.TraceFlags(parent.Flags & 1), TraceState: ts, Remote: true,
		})
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	ctx, sp := t.tr.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(methodLabel(method)),
			attribute.String("sgw.request_id", requestID),
		))
	return ctx, span{sp}
}

// methodLabel keeps the span name and attribute to known methods.
func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "_OTHER"
}

type span struct{ s trace.Span }

func (s span) Upstream() (proxy.TraceContext, string) {
	sc := s.s.SpanContext()
	return proxy.TraceContext{TraceID: sc.TraceID(), SpanID: sc.SpanID(), Flags: byte(sc.TraceFlags())}, sc.TraceState().String()
}

func (s span) End(class string, status int, refusal string) {
	if s.s.IsRecording() {
		s.s.SetAttributes(attribute.String("sgw.route_class", class), semconv.HTTPResponseStatusCode(status))
		if refusal != "" {
			s.s.SetAttributes(attribute.String("sgw.refusal.reason", refusal))
		}
		if status >= 500 {
			s.s.SetStatus(codes.Error, "")
		}
	}
	s.s.End()
}

// Stage marks the start of a request-path stage ("authenticate",
// "revocation", "authorise", "inject", "upstream", "hooks") on ctx's span.
// Without a recording span it does nothing and allocates nothing.
func Stage(ctx context.Context, name string) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.AddEvent(name)
	}
}

// Caller records the kind of credential the request was decided on
// ("session", "api_jwt", "access_token", "guest", "none").
func Caller(ctx context.Context, kind string) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.SetAttributes(attribute.String("sgw.caller.kind", kind))
	}
}

// Refusal records the reason the request path refused the request.
func Refusal(ctx context.Context, reason string) {
	if sp := trace.SpanFromContext(ctx); sp.IsRecording() {
		sp.SetAttributes(attribute.String("sgw.refusal.reason", reason))
	}
}
