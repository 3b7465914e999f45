package guesttoken

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"

	"github.com/superset-gateway/superset-gateway/superset/guestjwt"
)

// Candidate is a guest token found in a form body.
type Candidate struct {
	// Token is the JWT-shaped text found, header.payload.signature, each
	// segment a run of base64url bytes. Superset may read a longer
	// signature segment (PyJWT's base64 decoding skips bytes outside the
	// alphabet), so Token need not verify even when Superset's copy does.
	Token string
	// Payload is the payload segment: the minted bytes, exactly, in any
	// copy Superset could verify, because the signature covers them.
	Payload string
}

// maxCandidates bounds the distinct guest-token payloads one body may
// carry; a legitimate request carries one.
const maxCandidates = 8

// Scan outcomes beyond the candidates themselves.
const (
	scanOK = iota
	scanTooLarge
	scanUnreadable
	scanTooMany
)

// scanBody finds every guest token a form body could hand Superset,
// whatever field, boundary or encoding Werkzeug resolves: it looks at the
// raw bytes (multipart values are raw: Werkzeug decodes no
// Content-Transfer-Encoding, and the only part charsets it honours are
// ASCII-compatible) and at their urlencoded decoding ("+" and %XX, as
// parse_qsl does), and reports every dot-bounded base64url run whose
// decoding is JSON claims of type "guest". A JWS payload is base64url
// without padding (RFC 7515), so a minted token's payload is such a run
// in every copy. It never fails on a body's shape: only on a run too
// long to check (a payload over guestjwt.MaxTokenLen), a payload that
// names "guest" but is not JSON it can read, or too many candidates.
func scanBody(body io.Reader) ([]Candidate, int, error) {
	raw, dec := newScanner(), newScanner()
	var pct []byte // a pending %-escape of the decoded view
	br := bufio.NewReaderSize(body, 32<<10)
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, scanOK, err
		}
		raw.byte(c)
		// The urlencoded view.
		switch {
		case len(pct) > 0 && unhex(c) >= 0:
			pct = append(pct, c)
			if len(pct) == 3 {
				dec.byte(byte(unhex(pct[1])<<4 | unhex(pct[2])))
				pct = pct[:0]
			}
			continue
		case len(pct) > 0:
			for _, p := range pct {
				dec.byte(p)
			}
			pct = pct[:0]
		}
		switch c {
		case '%':
			pct = append(pct, c)
		case '+':
			dec.byte(' ')
		default:
			dec.byte(c)
		}
	}
	for _, p := range pct {
		dec.byte(p)
	}
	raw.end()
	dec.end()
	seen := make(map[string]bool)
	var out []Candidate
	for _, s := range []*scanner{raw, dec} {
		if s.outcome != scanOK {
			return nil, s.outcome, nil
		}
		for _, c := range s.found {
			if !seen[c.Token] {
				seen[c.Token] = true
				out = append(out, c)
			}
		}
	}
	if len(out) > maxCandidates {
		return nil, scanTooMany, nil
	}
	return out, scanOK, nil
}

// b64url reports a byte of the base64url alphabet.
func b64url(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// scanner splits a byte stream into runs of base64url bytes and the single
// bytes between them, and keeps "H.P.S" where P is a guest payload.
type scanner struct {
	cur, prev     []byte // the run being read; the one before it
	curLong       bool   // cur outgrew MaxTokenLen (kept truncated)
	curAfterDot   bool   // cur began right after a "."
	pendH, pendP  []byte // a payload found, waiting for its signature run
	pending       bool
	found         []Candidate
	distinctPayld map[string]bool
	outcome       int
}

func newScanner() *scanner {
	return &scanner{distinctPayld: make(map[string]bool)}
}

func (s *scanner) byte(c byte) {
	if b64url(c) {
		if len(s.cur) < guestjwt.MaxTokenLen {
			s.cur = append(s.cur, c)
		} else {
			s.curLong = true
		}
		return
	}
	s.endRun(c)
}

func (s *scanner) end() { s.endRun(0) }

// endRun closes the current run at separator c (0 at the end).
func (s *scanner) endRun(c byte) {
	if s.outcome != scanOK {
		return
	}
	if s.pending {
		s.pending = false
		tok := make([]byte, 0, len(s.pendH)+len(s.pendP)+len(s.cur)+2)
		tok = append(append(append(append(append(tok, s.pendH...), '.'), s.pendP...), '.'), s.cur...)
		s.found = append(s.found, Candidate{Token: string(tok), Payload: string(s.pendP)})
		if s.distinctPayld[string(s.pendP)] = true; len(s.distinctPayld) > maxCandidates {
			s.outcome = scanTooMany
			return
		}
	}
	if c == '.' && s.curAfterDot && len(s.cur) > 0 {
		if s.curLong {
			// Possibly a guest payload, too long to read: refuse
			// rather than pass it unchecked.
			s.outcome = scanTooLarge
			return
		}
		switch guestPayload(s.cur) {
		case payloadGuest:
			s.pending = true
			s.pendH = append(s.pendH[:0], s.prev...)
			s.pendP = append(s.pendP[:0], s.cur...)
		case payloadUnreadable:
			s.outcome = scanUnreadable
			return
		}
	}
	s.prev, s.cur = append(s.prev[:0], s.cur...), s.cur[:0]
	s.curLong = false
	s.curAfterDot = c == '.'
}

// Outcomes of guestPayload.
const (
	payloadOther = iota
	payloadGuest
	payloadUnreadable
)

var guestWord = []byte("guest")

// guestPayload classifies a base64url run: guest claims ("type" is the
// string "guest", which Superset requires), something else, or a
// payload that mentions "guest" but is not a JSON object Go reads (so
// it cannot be ruled out).
func guestPayload(p []byte) int {
	if len(p)%4 == 1 {
		return payloadOther // no base64 decoder takes it; PyJWT neither
	}
	b := make([]byte, base64.RawURLEncoding.DecodedLen(len(p)))
	n, err := base64.RawURLEncoding.Decode(b, p)
	if err != nil {
		return payloadOther
	}
	b = b[:n]
	if !bytes.Contains(b, guestWord) && !bytes.Contains(b, []byte(`\u`)) {
		return payloadOther
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		if bytes.Contains(b, guestWord) {
			return payloadUnreadable
		}
		return payloadOther
	}
	var typ string
	if t, ok := m["type"]; ok && json.Unmarshal(t, &typ) == nil && typ == "guest" {
		return payloadGuest
	}
	return payloadOther
}
