package server

import (
	"net"
	"strings"
	"testing"

	"github.com/wardenauthz/warden/authz/config"
)

// fakeAddrListener reports a bound address other than its own.
type fakeAddrListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeAddrListener) Addr() net.Addr { return l.addr }

// TestServeAdminBoundLoopback: without admin.tls, the admin listener is
// served only when the address actually bound is a loopback IP (a name
// such as localhost may resolve elsewhere).
func TestServeAdminBoundLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Service{Config: &config.Config{}}
	s.Config.Admin.Addr = "localhost:9193"
	errc := make(chan error, 1)
	s.serveAdmin(fakeAddrListener{l, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 9193}}, errc)
	select {
	case err := <-errc:
		if !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("error %v", err)
		}
	default:
		t.Fatal("a plain admin listener bound to 192.0.2.7 was served")
	}
}
