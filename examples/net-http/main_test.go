package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestExample(t *testing.T) {
	srv, g, err := newServer("127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	post := func(path string, v url.Values) int {
		r := httptest.NewRequest("POST", path, strings.NewReader(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://127.0.0.1:8080")
		w := httptest.NewRecorder()
		srv.Handler.ServeHTTP(w, r)
		return w.Code
	}
	if c := post("/contact", url.Values{"name": {"Ada"}, "email": {"ada@example.org"}, "message": {"Hi"}}); c != http.StatusOK {
		t.Errorf("contact: %d", c)
	}
	if c := post("/contact", url.Values{"email": {"ada@example.org"}, "message": {"Hi"}, "to": {"x@evil.test"}}); c != http.StatusBadRequest {
		t.Errorf("contact with to: %d", c)
	}
	if c := post("/share", url.Values{"to": {"a@x.test", "b@x.test"}, "url": {"http://127.0.0.1:8080/a"}}); c != http.StatusUnprocessableEntity {
		t.Errorf("share to two: %d", c)
	}
	if c := post("/share", url.Values{"to": {"a@x.test"}, "url": {"http://127.0.0.1:8080/a"}}); c != http.StatusOK {
		t.Errorf("share to one: %d", c)
	}
}
