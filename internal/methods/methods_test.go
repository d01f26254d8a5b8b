package methods

import "testing"

func TestRead(t *testing.T) {
	for m, want := range map[string]bool{
		"GET": true, "HEAD": true, "OPTIONS": true,
		"POST": false, "PUT": false, "PATCH": false, "DELETE": false, "TRACE": false, "CONNECT": false,
		"get": false, "": false, "PROPFIND": false,
	} {
		if got := Read(m); got != want {
			t.Errorf("Read(%q) = %v, want %v", m, got, want)
		}
	}
}
