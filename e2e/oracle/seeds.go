package oracle

import (
	"fmt"
	"strings"
	"time"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// SeedToken is a guest token (dashboard 7, fixed times, a test key): the
// differential targets compare what each side reads, not signatures.
func SeedToken() string {
	tok, err := guestjwt.Mint([]byte("oracle-seed-key-0123456789abcdef"), guestjwt.MintOptions{
		Resources: []guestjwt.Resource{{Type: "dashboard", ID: "7"}}, Audience: "superset",
		Now: time.Date(2026, 5, 20, 12, 0, 0, 0, time.UTC),
	})
	if err != nil {
		panic(err) // a fixed key and options: cannot fail
	}
	return tok
}

// Seeds are raw requests of every shape issue 12 found: the gateway and
// Superset once read each differently. The fuzz targets start from them.
func Seeds() [][]byte {
	tok := SeedToken()
	const ue = "application/x-www-form-urlencoded"
	req := func(method, target string, headers []string, body string) []byte {
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: superset\r\n", method, target)
		for _, h := range headers {
			b.WriteString(h + "\r\n")
		}
		if body != "" || method == "POST" {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
		}
		b.WriteString("\r\n" + body)
		return []byte(b.String())
	}
	part := func(bd, nl, disp string) string {
		return "--" + bd + nl + "Content-Disposition: " + disp + nl + nl + tok + nl + "--" + bd + "--" + nl
	}
	mp := "Content-Type: multipart/form-data; boundary=B"
	var out [][]byte
	for _, m := range []string{"GET", "POST"} {
		out = append(out,
			req(m, "/api/v1/dashboard/7", []string{"Content-Type: " + ue}, "guest_token="+tok),
			req(m, "/api/v1/dashboard/7", []string{"Content-Type: " + ue + "\x85"}, "guest_token="+tok),
			req(m, "/api/v1/dashboard/7", []string{"Content-Type: \xa0" + ue}, "guest_token="+tok),
			req(m, "/api/v1/dashboard/7", []string{"Content-Type: text/plain", "Content-Type: " + ue}, "guest_token="+tok),
			req(m, "/api/v1/dashboard/7", []string{"Content-Type: " + ue}, "guest%5Ftoken="+strings.ReplaceAll(tok, ".", "%2E")),
			req(m, "/api/v1/chart/data", []string{mp}, part("B", "\r\n", `form-data; name="guest_token"`)),
			req(m, "/api/v1/chart/data", []string{mp}, part("B", "\n", `form-data; name="guest_token"`)),
			req(m, "/api/v1/chart/data", []string{mp}, part("B", "\r", `form-data; name="guest_token"`)),
			req(m, "/api/v1/chart/data", []string{mp}, part("B", "\r\n", `form-data; name=guest; name*1=_token`)),
			req(m, "/api/v1/chart/data", []string{mp}, part("B", "\r\n", `form-data; name*=utf-8''x; name=guest_token`)),
			req(m, "/api/v1/chart/data", []string{"Content-Type: multipart/form-data; boundary*=utf-8''Y; boundary=X"}, part("X", "\r\n", `form-data; name=guest_token`)),
		)
	}
	out = append(out,
		req("GET", "/api/v1/chart/2/data/", []string{"X-GuestToken: " + tok}, ""),
		req("GET", "/api/v1/dashboard/api/v1/chart/2/data/", []string{"Script_Name: /api/v1/dashboard"}, ""),
		req("GET", "/x/login/", []string{"Script-Name: /x"}, ""),
		req("GET", "/api/v1/me/", []string{"Authorization: Bearer\x85" + tok}, ""),
		req("GET", "/api/v1/me/", []string{"Authorization: Basic x, Bearer " + tok}, ""),
		req("GET", "/api/v1/me/", []string{"Authorization: Bearer " + tok, "Authorization: Bearer x"}, ""),
		req("GET", "/api/v1/me/", []string{"X_Remote_User: admin"}, ""),
		req("GET", "/api/v1/%2e%2e/%2e%2e/-/admin/", nil, ""),
		req("GET", "/api/v1//chart/./2/../3/data/?q=1", nil, ""),
		req("GET", "//api/v1/chart/", nil, ""),
		req("GET", "/api/v1/chart/%252e/", nil, ""),
		req("GET", "/api/v1/d%C3%A9j%C3%A0/", []string{"Cookie: session=a; session=b"}, ""),
	)
	return out
}
