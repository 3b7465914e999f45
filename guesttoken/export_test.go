package guesttoken

import "testing"

// Test hooks for the external tests (package guesttoken_test), which run
// the guard through the gateway's request path.

// MultipartBody builds a multipart/form-data body (extract_test.go).
func MultipartBody(t testing.TB, parts ...[2]string) ([]byte, string) {
	return multipartBody(t, parts...)
}

// Shape is one request shape of the extractor's table.
type Shape struct{ Name, Header, ContentType, Body string }

// Shapes is the extractor's table of request shapes (extract_test.go).
func Shapes(t testing.TB) []Shape {
	var out []Shape
	for _, c := range extractCases(t) {
		s := Shape{Name: c.name, Body: c.body}
		if len(c.contentType) > 0 {
			s.ContentType = c.contentType[len(c.contentType)-1]
		}
		if len(c.header) > 0 {
			s.Header = c.header[0]
		}
		out = append(out, s)
	}
	return out
}

// CacheLen is the number of revocation stamps the Revoker caches.
func (r *Revoker) CacheLen() int { return r.cache.Len() }

// OnSubscribed sets the hook Run calls once its subscription is live.
func (r *Revoker) OnSubscribed(f func()) { r.onSubscribed = f }
