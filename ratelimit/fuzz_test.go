package ratelimit

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// FuzzUsername: any sign-in body (form, multipart, JSON, garbage) is read
// without panicking, the body Superset gets is byte for byte the one sent,
// and a username read is never empty.
func FuzzUsername(f *testing.F) {
	f.Add(false, "application/x-www-form-urlencoded", []byte("username=alice&password=x&csrf_token=t"))
	f.Add(false, "multipart/form-data; boundary=XX", []byte("--XX\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nbob\r\n--XX--\r\n"))
	f.Add(true, "application/json", []byte(`{"username":"ålice\u0000","password":"x","provider":"db"}`))
	f.Add(true, "application/json", []byte(`{"username":["a"]}`))
	f.Add(false, "text/plain", []byte("username=%zz"))
	s, err := NewStage(Options{Backend: NewMemory(0, nil), Secret: []byte("0123456789abcdef0123"), MaxBody: 4096,
		ClientIP: nil})
	if err == nil || s != nil {
		f.Fatal("a stage without ClientIP must be refused")
	}
	st := newStage(f, NewMemory(0, nil), Limits{LoginAddress: Limit{Rate: 1, Period: time.Hour}}, nil)
	st.o.MaxBody = 4096
	f.Fuzz(func(t *testing.T, api bool, ctype string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/login/", bytes.NewReader(body))
		r.Header.Set("Content-Type", ctype)
		name, ok := st.username(r, api)
		if ok && name == "" {
			t.Fatal("empty username reported as read")
		}
		got, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("Superset would get %q, client sent %q", got, body)
		}
		if ok {
			if h := st.hash(name); len(h) != 24 {
				t.Fatalf("hash %q", h)
			}
		}
	})
}
