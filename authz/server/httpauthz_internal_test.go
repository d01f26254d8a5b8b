package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRequestLimitDropsHeaders: once an HTTP/2 request is handled (or
// refused past max_requests), its headers are let go, so an answer that
// waits for the client's flow control holds its goroutine and the answer,
// not the request's headers too; an HTTP/1.1 request keeps them (the server
// reads "Connection: close" after the handler).
func TestRequestLimitDropsHeaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		major int
		open  int64 // requests already handled
		code  int
	}{
		{"HTTP/2 handled", 2, 0, http.StatusNoContent},
		{"HTTP/2 refused", 2, 1, http.StatusServiceUnavailable},
		{"HTTP/1.1 handled", 1, 0, http.StatusNoContent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := &requestLimit{max: 1, refused: func() {}, next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Big") == "" {
					t.Error("the handler saw no headers")
				}
				w.WriteHeader(http.StatusNoContent)
			})}
			l.open.Store(tc.open)
			r := httptest.NewRequest(http.MethodGet, "/ext_authz/x", nil)
			r.ProtoMajor = tc.major
			r.Header.Set("X-Big", "value")
			w := httptest.NewRecorder()
			l.ServeHTTP(w, r)
			if w.Code != tc.code {
				t.Errorf("status %d, want %d", w.Code, tc.code)
			}
			if kept := len(r.Header) > 0; kept != (tc.major == 1) {
				t.Errorf("headers kept: %v, want %v", kept, tc.major == 1)
			}
			if n := l.open.Load(); n != tc.open {
				t.Errorf("%d requests counted after, want %d", n, tc.open)
			}
		})
	}
}
