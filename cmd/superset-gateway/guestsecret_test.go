package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestGuestSecretEqualToSecretKeyRefused: the readiness analysis's second
// finding. A strong secret used as both SECRET_KEY (or JWT_SECRET_KEY) and
// GUEST_TOKEN_JWT_SECRET is refused at load, naming both keys and never the
// value; allow_weak_secrets does not lift it, the explicit opt-out does.
func TestGuestSecretEqualToSecretKeyRefused(t *testing.T) {
	dir := t.TempDir()
	sk := writeFile(t, dir, "sk", strongSecret+"\n")
	other := writeFile(t, dir, "other", strings.ToUpper(strongSecret)+"x\n")
	for _, tt := range []struct{ name, yaml, same string }{
		{"guest = secret key", fmt.Sprintf("superset: {secret_key_file: %s, guest_token_secret_file: %s", sk, sk), "superset.secret_key_file"},
		{"guest = jwt secret", fmt.Sprintf("superset: {secret_key_file: %s, jwt_secret_file: %s, guest_token_secret_file: %s", other, sk, sk), "superset.jwt_secret_file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, "gw.yaml", tt.yaml+", allow_weak_secrets: true}\n")
			code, _, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p)
			want := "superset-gateway: config: superset.guest_token_secret_file: is the same secret as " + tt.same
			if code != exitUsage || !strings.HasPrefix(errOut, want) {
				t.Fatalf("exit %d stderr %q, want 2 and %q", code, errOut, want)
			}
			if strings.Contains(errOut, strongSecret) {
				t.Fatal("the secret was printed")
			}
			p = writeFile(t, dir, "gw.yaml", tt.yaml+", allow_guest_secret_equal_secret_key: true}\n")
			if code, out, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p); code != exitOK || out != "OK\n" {
				t.Fatalf("with the opt-out: exit %d stdout %q stderr %q", code, out, errOut)
			}
		})
	}
	p := writeFile(t, dir, "gw.yaml", fmt.Sprintf("superset: {secret_key_file: %s, guest_token_secret_file: %s}\n", sk, other))
	if code, out, errOut := runCmd(t, context.Background(), nil, "check-config", "--config", p); code != exitOK || out != "OK\n" {
		t.Fatalf("distinct secrets: exit %d stdout %q stderr %q", code, out, errOut)
	}
}
