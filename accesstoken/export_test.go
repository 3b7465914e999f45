package accesstoken

// WithChecksumForTest exposes withChecksum to the external tests.
func WithChecksumForTest(body string) string { return withChecksum(body) }
