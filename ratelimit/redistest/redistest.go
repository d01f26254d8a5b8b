// Package redistest starts a private redis-server for a test, on a unix
// socket in the test's temp directory (never a shared server).
package redistest

import (
	"bufio"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Addr string // unix socket path (a go-redis Addr; see ratelimit.NewRedisClient)
	t    testing.TB
	bin  string
	args []string
	cmd  *exec.Cmd
}

// Start runs redis-server until the test ends. It skips the test when
// redis-server is not installed and WARDEN_REQUIRE_REDIS is not set, and
// fails it when it is (CI sets it, so Redis tests never silently vanish).
func Start(t testing.TB) *Server {
	t.Helper()
	return StartArgs(t)
}

// StartArgs is Start with more redis-server arguments (TLS, say).
func StartArgs(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("WARDEN_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server not installed (go tool task test installs it)")
		}
		t.Skip("redis-server not installed; run go tool task test to install it")
	}
	dir, err := os.MkdirTemp("", "wr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "redis.sock")
	s := &Server{Addr: sock, t: t, bin: bin, args: append(Args(sock, dir), extra...)}
	s.run()
	t.Cleanup(s.Kill)
	return s
}

// Args are redis-server's arguments for a private server: no TCP port, a
// unix socket at sock only its owner may use, no persistence, dir as its
// working directory.
func Args(sock, dir string) []string {
	return []string{"--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir}
}

// run starts the process and waits until it answers.
func (s *Server) run() {
	s.t.Helper()
	cmd := exec.Command(s.bin, s.args...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	go func() { // drain the log
		sc := bufio.NewScanner(out)
		for sc.Scan() {
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.Ping() != nil {
		if time.Now().After(deadline) {
			s.t.Fatal("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL (its data is lost: no persistence).
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts a killed server again on the same socket.
func (s *Server) Restart() {
	s.t.Helper()
	os.Remove(s.Addr)
	s.run()
}

// Ping checks the server answers.
func (s *Server) Ping() error {
	c, err := net.DialTimeout("unix", s.Addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("ping: %q %v", line, err)
	}
	return nil
}

// FreePort is a loopback TCP port free at the time of the call, for a
// server a test starts later (redis-server, nginx, warden serve with a
// config file). It is drawn from below the kernel's ephemeral range, which
// the port-0 listener would draw from: there, the client side of any
// other connection made meanwhile (by this or another test process) could
// take it before the server binds it ("address already in use").
func FreePort(t testing.TB) int {
	t.Helper()
	lo := ephemeralLow() - 1
	for range 200 {
		p := 10000 + mrand.IntN(lo-10000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}

// ephemeralLow is the low end of the kernel's ephemeral port range
// (32768 where it cannot be read, Linux's default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				return n
			}
		}
	}
	return 32768
}

// Pause stops (SIGSTOP) or resumes (SIGCONT) the server, for fault tests.
func (s *Server) Pause(paused bool) {
	sig := syscall.SIGCONT
	if paused {
		sig = syscall.SIGSTOP
	}
	_ = s.cmd.Process.Signal(sig)
}
