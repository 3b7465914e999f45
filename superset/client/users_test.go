package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestUserByNameQuotesRison: a username with Rison's quote and escape
// characters reaches Superset as one string value, and only an exact
// match is taken.
func TestUserByNameQuotesRison(t *testing.T) {
	var gotQ string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQ = r.URL.Query().Get("q")
		w.Header().Set("Content-Type", "application/json")
		// As a database with case-insensitive comparison would answer.
		_, _ = w.Write([]byte(`{"count":1,"result":[{"id":7,"username":"O'Neil!X"}]}`))
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL}
	if _, err := c.UserByName(context.Background(), "t", "o'neil!x"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("a case-insensitive match was taken: %v", err)
	}
	if want := `(filters:!((col:username,opr:eq,value:'o!'neil!!x')))`; gotQ != want {
		t.Errorf("q = %s, want %s", gotQ, want)
	}
	u, err := c.UserByName(context.Background(), "t", "O'Neil!X")
	if err != nil || u.ID != 7 {
		t.Errorf("exact match: %+v %v", u, err)
	}
}
