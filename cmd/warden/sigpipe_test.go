package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenauthz/warden/internal/testwait"
)

// TestHelperServe is warden serve in a process of its own, its stdout and
// stderr the process's (TestServeStdoutReaderGone starts it).
func TestHelperServe(t *testing.T) {
	cfg := os.Getenv("WARDEN_HELPER_SERVE")
	if cfg == "" {
		t.Skip("run by TestServeStdoutReaderGone")
	}
	os.Exit(run(context.Background(), []string{"serve", "--config", cfg}, os.Stdout, os.Stderr))
}

// TestServeStdoutReaderGone: warden serve with a stdout sink (the quick
// start's) keeps answering Checks once whatever reads its stdout is gone
// (a log shipper that died): the records' writes fail, are counted and
// warned about. Before, the first record written after killed Warden with
// SIGPIPE, no line logged, and every Check after it failed (Envoy denies
// on it: an outage).
func TestServeStdoutReaderGone(t *testing.T) {
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state)
	t.Setenv("WARDEN_CONFIG", "")
	cfg, addr := quickstartCopy(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), "WARDEN_HELPER_SERVE="+cfg)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	testwait.Until(t, 10*time.Second, "the server listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	check := func() int {
		code, _, _ := runCLI(t, "check", "--server", addr, "--url", "http://localhost:8080/orders/42")
		return code
	}
	// No token: denied (exit 1); a server gone is exit 2.
	if code := check(); code != exitDeny {
		t.Fatalf("check before: exit %d", code)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.Contains(line, `"decision_id"`) {
		t.Fatalf("first record on stdout: %q %v", line, err)
	}
	out.Close() // the reader is gone
	for i := range 5 {
		code := check()
		if code != exitDeny {
			t.Fatalf("check %d after stdout's reader left: exit %d; server stderr:\n%s", i, code, stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // the record is written (and fails) before the next Check
	}
	select {
	case err := <-exited:
		t.Fatalf("server exited: %v; stderr:\n%s", err, stderr.String())
	default:
	}
}
