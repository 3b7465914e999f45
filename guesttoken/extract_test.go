package guesttoken

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// multipartBody builds a multipart body from raw parts: each is the
// Content-Disposition value and the content.
func multipartBody(t testing.TB, parts ...[2]string) (body []byte, contentType string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		w, err := mw.CreatePart(map[string][]string{"Content-Disposition": {p[0]}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(w, p[1])
	}
	_ = mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

type extractCase struct {
	name        string
	header      []string
	contentType string
	body        string
	want        string // token, or "!" + reason
}

func extractCases(t testing.TB) []extractCase {
	mp, mpCT := multipartBody(t, [2]string{`form-data; name="form_data"`, `{"slice_id":1}`}, [2]string{`form-data; name="guest_token"`, "TOKMP"})
	att, attCT := multipartBody(t, [2]string{`attachment; name="guest_token"`, "TOKATT"})
	two, twoCT := multipartBody(t, [2]string{`form-data; name="guest_token"`, "A"}, [2]string{`form-data; name="guest_token"`, "B"})
	bad, badCT := multipartBody(t, [2]string{`form-data; name="guest_token`, "X"})
	big := strings.Repeat("a", guestjwt.MaxTokenLen+1)
	const ue = "application/x-www-form-urlencoded"
	return []extractCase{
		{"nothing", nil, "", "", ""},
		{"header", []string{"TOK"}, "", "", "TOK"},
		{"empty header", []string{""}, "", "", ""},
		{"json body ignored", nil, "application/json", `{"guest_token":"X"}`, ""},
		{"urlencoded", nil, ue, "form_data=%7B%7D&guest_token=TOKUE", "TOKUE"},
		{"urlencoded with charset", nil, ue + "; charset=UTF-8", "guest_token=TOKUE", "TOKUE"},
		{"urlencoded, bad media parameter", nil, ue + "; charset", "guest_token=TOKUE", "TOKUE"},
		{"urlencoded upper-case type", nil, "Application/X-WWW-Form-Urlencoded", "guest_token=TOKUE", "TOKUE"},
		{"encoded key", nil, ue, "guest%5Ftoken=TOKENC", "TOKENC"},
		{"encoded key lower hex", nil, ue, "guest%5ftoken=TOKENC", "TOKENC"},
		{"plus and escapes in value", nil, ue, "guest_token=a%2Eb+c", "a.b c"},
		{"invalid escape kept", nil, ue, "guest_token=a%zz", "a%zz"},
		{"semicolon is not a separator", nil, ue, "x=1;guest_token=T", ""},
		{"header and same form", []string{"SAME"}, ue, "guest_token=SAME", "SAME"},
		{"header and other form", []string{"H"}, ue, "guest_token=F", "!" + ReasonAmbiguous},
		{"form repeated, different", nil, ue, "guest_token=A&guest_token=B", "!" + ReasonAmbiguous},
		{"form repeated, same", nil, ue, "guest_token=A&guest_token=A", "A"},
		{"header repeated", []string{"A", "A"}, "", "", "!" + ReasonAmbiguous},
		{"empty form value", []string{"H"}, ue, "guest_token=", "H"},
		{"multipart", nil, string(mpCT), string(mp), "TOKMP"},
		{"multipart attachment disposition", nil, attCT, string(att), "TOKATT"},
		{"multipart repeated", nil, twoCT, string(two), "!" + ReasonAmbiguous},
		{"multipart header mismatch", []string{"H"}, mpCT, string(mp), "!" + ReasonAmbiguous},
		{"multipart bad disposition", nil, badCT, string(bad), "!" + ReasonMalformedForm},
		{"multipart no boundary", nil, "multipart/form-data", string(mp), "!" + ReasonMalformedForm},
		{"multipart truncated", nil, mpCT, string(mp[:len(mp)-10]), "!" + ReasonMalformedForm},
		{"oversized header", []string{big}, "", "", "!" + ReasonTooLarge},
		{"oversized form", nil, ue, "guest_token=" + big, "!" + ReasonTooLarge},
		{"oversized form, percent-encoded", nil, ue, "guest_token=" + strings.Repeat("%61", guestjwt.MaxTokenLen/3*3+3), "!" + ReasonTooLarge},
		{"long key skipped", nil, ue, strings.Repeat("k", 100) + "guest_token=x&guest_token=T", "T"},
		{"key without value", nil, ue, "guest_token&a=b", ""},
		{"form over the limit", nil, ue, "x=" + strings.Repeat("y", 2000), "!" + ReasonFormTooLarge},
	}
}

// TestExtract runs every case with the body in memory and spooled to disk.
func TestExtract(t *testing.T) {
	for _, mem := range []int64{1 << 20, 16} {
		ex := extractor{header: "X-Guesttoken", maxForm: 1024 + 3*guestjwt.MaxTokenLen, memForm: mem, spoolDir: t.TempDir()}
		for _, c := range extractCases(t) {
			t.Run(c.name+"/mem="+strconv.FormatInt(mem, 10), func(t *testing.T) {
				e := ex
				if c.name == "form over the limit" {
					e.maxForm, e.memForm = 1000, min(mem, 1000)
				}
				r := httptest.NewRequest(http.MethodPost, "/api/v1/chart/data", strings.NewReader(c.body))
				if c.body == "" {
					r.Body = http.NoBody
				}
				if c.name == "form over the limit" && mem == 16 {
					r.ContentLength = -1 // not refused up front: found while spooling
				}
				if c.contentType != "" {
					r.Header.Set("Content-Type", c.contentType)
				}
				for _, h := range c.header {
					r.Header.Add("X-GuestToken", h)
				}
				tok, d, release := e.extract(r)
				defer release()
				got := tok
				if !d.Allow {
					got = "!" + d.Reason
				}
				if got != c.want {
					t.Fatalf("got %q, want %q", got, c.want)
				}
				if d.Allow && r.Body != nil {
					rest, _ := io.ReadAll(r.Body)
					if string(rest) != c.body {
						t.Errorf("body not restored: %q", rest)
					}
				}
			})
		}
		if left, _ := os.ReadDir(ex.spoolDir); len(left) != 0 {
			t.Errorf("spool files left behind: %v", left)
		}
	}
}

func TestUnderscoreHeaderRefused(t *testing.T) {
	for _, name := range []string{"X_GuestToken", "x_guesttoken", "X-Guest_Token"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header[name] = []string{"T"}
		_, d, _ := (extractor{header: "X-Guesttoken", maxForm: 1024, memForm: 1024}).extract(r)
		if want := name != "X-Guest_Token"; d.Reason == ReasonAmbiguous != want {
			t.Errorf("%s: %+v", name, d)
		}
	}
}

func TestExtractHonoursMaxBytesReader(t *testing.T) {
	// The proxy wraps bodies of unknown length in http.MaxBytesReader.
	body := "guest_token=" + strings.Repeat("a", 100)
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 50)
	if _, d, _ := (extractor{header: "X-Guesttoken", maxForm: 1 << 20, memForm: 1 << 20}).extract(r); d.Reason != ReasonFormTooLarge {
		t.Fatalf("%+v, want form_too_large", d)
	}
}

func TestCustomHeaderName(t *testing.T) {
	g, err := New(Options{Verifier: guestjwt.Verifier{Key: []byte(testSecret)}, Revoker: &Revoker{}, HeaderName: "x-embed-token"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Embed-Token", "T")
	r.Header.Set("X-GuestToken", "ignored")
	if tok, d, _ := g.ex.extract(r); tok != "T" || !d.Allow {
		t.Fatalf("%q %+v", tok, d)
	}
}
