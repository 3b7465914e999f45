package guesttoken

import (
	"bytes"
	"encoding/base64"
	"fmt"
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
	contentType []string
	body        string
	want        string // "H=<header> B=<candidate tokens, comma-separated>", or "!" + reason
}

// fakeToken is a JWT-shaped text whose payload is guest-like claims for
// dashboard id (typ "guest" unless given); the signature is junk: the
// extractor only finds tokens, the Guard verifies them.
func fakeToken(id string, typ ...string) string {
	ty := "guest"
	if len(typ) > 0 {
		ty = typ[0]
	}
	claims := `{"type":"` + ty + `","resources":[{"type":"dashboard","id":"` + id + `"}],"iat":1779278340.5,"exp":1779278640}`
	return "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2lnbmF0dXJl"
}

func pctAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

func extractCases(t testing.TB) []extractCase {
	tok, tok2 := fakeToken("1"), fakeToken("2")
	mp, mpCT := multipartBody(t, [2]string{`form-data; name="form_data"`, `{"slice_id":1}`}, [2]string{`form-data; name="guest_token"`, tok})
	att, attCT := multipartBody(t, [2]string{`attachment; name="guest_token"`, tok})
	part := func(b, nl, disp string) string {
		return "--" + b + nl + "Content-Disposition: " + disp + nl + nl + tok + nl + "--" + b + "--" + nl
	}
	const ue = "application/x-www-form-urlencoded"
	const mpB = "multipart/form-data; boundary=B"
	big := strings.Repeat("a", guestjwt.MaxTokenLen+1)
	found := "H= B=" + tok
	many := ""
	for i := range maxCandidates + 1 {
		many += "&f=" + fakeToken(strconv.Itoa(i+1))
	}
	return []extractCase{
		{"nothing", nil, nil, "", "H= B="},
		{"header", []string{"TOK"}, nil, "", "H=TOK B="},
		{"json body ignored", nil, []string{"application/json"}, `{"guest_token":"` + tok + `"}`, "H= B="},
		{"no content type", nil, nil, "guest_token=" + tok, "H= B="},
		{"urlencoded", nil, []string{ue}, "form_data=%7B%7D&guest_token=" + tok, found},
		{"urlencoded with charset", nil, []string{ue + "; charset=UTF-8"}, "guest_token=" + tok, found},
		{"urlencoded upper-case type", nil, []string{"Application/X-WWW-Form-Urlencoded"}, "guest_token=" + tok, found},
		{"urlencoded, trailing NEL", nil, []string{ue + "\x85"}, "guest_token=" + tok, found},
		{"urlencoded, leading NBSP", nil, []string{"\xa0" + ue}, "guest_token=" + tok, found},
		{"urlencoded, token percent-encoded", nil, []string{ue}, "guest%5Ftoken=" + pctAll(tok), found},
		{"urlencoded, any field", nil, []string{ue}, "x=" + tok, found},
		{"urlencoded, header too", []string{"H"}, []string{ue}, "guest_token=" + tok, "H=H B=" + tok},
		{"two content types", nil, []string{"text/plain", ue}, "guest_token=" + tok, "!" + string(ReasonAmbiguous)},
		{"multipart", nil, []string{mpCT}, string(mp), found},
		{"multipart attachment disposition", nil, []string{attCT}, string(att), found},
		{"multipart, bare LF", nil, []string{mpB}, part("B", "\n", `form-data; name="guest_token"`), found},
		{"multipart, bare CR", nil, []string{mpB}, part("B", "\r", `form-data; name="guest_token"`), found},
		{"multipart, name continuation", nil, []string{mpB}, part("B", "\r\n", `form-data; name=guest; name*1=_token`), found},
		{"multipart, extended name first", nil, []string{mpB}, part("B", "\r\n", `form-data; name*=utf-8''x; name=guest_token`), found},
		{"multipart, two boundaries", nil, []string{"multipart/form-data; boundary*=utf-8''Y; boundary=X"}, part("X", "\r\n", `form-data; name=guest_token`), found},
		{"multipart, no boundary", nil, []string{"multipart/form-data"}, string(mp), found},
		{"multipart truncated", nil, []string{mpCT}, string(mp[:len(mp)-10]), found},
		{"two tokens", nil, []string{ue}, "guest_token=" + tok + "&guest_token=" + tok2, "H= B=" + tok + "," + tok2},
		{"same token twice", nil, []string{ue}, "guest_token=" + tok + "&guest_token=" + tok, found},
		{"not a guest token", nil, []string{ue}, "guest_token=" + fakeToken("1", "access"), "H= B="},
		{"signature with junk", nil, []string{ue}, "guest_token=" + tok + "%21xyz", found},
		{"unreadable guest payload", nil, []string{ue}, "a=x." + base64.RawURLEncoding.EncodeToString([]byte(`{"type":"guest",`)) + ".y", "!" + string(ReasonMalformedForm)},
		{"long dot-bounded run", nil, []string{ue}, "a=x." + big + ".y", "!" + string(ReasonTooLarge)},
		{"too many tokens", nil, []string{ue}, many, "!" + string(ReasonAmbiguous)},
		{"header repeated", []string{"A", "A"}, nil, "", "!" + string(ReasonAmbiguous)},
		{"oversized header", []string{big}, nil, "", "!" + string(ReasonTooLarge)},
		{"form over the limit", nil, []string{ue}, "x=" + strings.Repeat("y", 2000), "!" + string(ReasonFormTooLarge)},
	}
}

// TestExtract runs every case with the body in memory and spooled to disk.
func TestExtract(t *testing.T) {
	for _, mem := range []int64{1 << 20, 16} {
		ex := extractor{header: "X-Guesttoken", maxForm: 4096 + 3*guestjwt.MaxTokenLen, memForm: mem, spoolDir: t.TempDir()}
		for _, c := range extractCases(t) {
			t.Run(c.name+"/mem="+strconv.FormatInt(mem, 10), func(t *testing.T) {
				e := ex
				if c.name == "form over the limit" {
					e.maxForm, e.memForm = 1000, min(mem, 1000)
				}
				r := httptest.NewRequest(http.MethodGet, "/api/v1/dashboard/1", strings.NewReader(c.body))
				if c.body == "" {
					r.Body = http.NoBody
				}
				if c.name == "form over the limit" && mem == 16 {
					r.ContentLength = -1 // not refused up front: found while spooling
				}
				r.Header["Content-Type"] = c.contentType
				for _, h := range c.header {
					r.Header.Add("X-GuestToken", h)
				}
				rd, d, release := e.read(r)
				defer release()
				got := "!" + string(d.Reason)
				if d.Allow {
					var toks []string
					for _, b := range rd.Body {
						toks = append(toks, b.Token)
					}
					got = "H=" + rd.Header + " B=" + strings.Join(toks, ",")
				}
				if got != c.want {
					t.Fatalf("got %q,\nwant %q", got, c.want)
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
		_, d, _ := (extractor{header: "X-Guesttoken", maxForm: 1024, memForm: 1024}).read(r)
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
	if _, d, _ := (extractor{header: "X-Guesttoken", maxForm: 1 << 20, memForm: 1 << 20}).read(r); d.Reason != ReasonFormTooLarge {
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
	if rd, d, _ := g.ex.read(r); rd.Header != "T" || !d.Allow {
		t.Fatalf("%q %+v", rd.Header, d)
	}
}
