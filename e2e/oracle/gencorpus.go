//go:build ignore

// gencorpus writes oracle.Seeds as the committed seed corpora of the
// differential fuzz targets: go run gencorpus.go (from e2e/oracle).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/superset-gateway/superset-gateway/e2e/oracle"
)

func main() {
	for _, target := range []string{"FuzzOracleGuestToken", "FuzzOracleBearer", "FuzzOraclePath"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			panic(err)
		}
		for i, s := range oracle.Seeds() {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("shape-%02d", i)), []byte(body), 0o644); err != nil {
				panic(err)
			}
		}
	}
}
