package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"github.com/wardenauthz/warden/ratelimit/redistest"
)

// cpus is how the benchmark places its processes: the servers (and Redis)
// on serverCPUs, the load generator on clientCPUs. Empty strings: no pinning.
type cpus struct{ server, client string }

func placement(pin bool) cpus {
	if s, ok := os.LookupEnv("WARDEN_BENCH_PINNED"); ok { // re-executed by pinSelf
		server, client, _ := strings.Cut(s, "/")
		return cpus{server: server, client: client}
	}
	if !pin || runtime.NumCPU() < 2 {
		return cpus{}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return cpus{}
	}
	return cpus{server: "0", client: fmt.Sprintf("1-%d", runtime.NumCPU()-1)}
}

// command runs argv, under taskset when cpuList is set.
func command(cpuList string, argv ...string) *exec.Cmd {
	if cpuList != "" {
		argv = append([]string{"taskset", "-c", cpuList}, argv...)
	}
	return exec.Command(argv[0], argv[1:]...)
}

// pinSelf re-executes the benchmark on the client CPUs (once: the
// environment marks the second run).
func pinSelf(c cpus) error {
	if c.client == "" || os.Getenv("WARDEN_BENCH_PINNED") != "" {
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := command(c.client, append([]string{self}, os.Args[1:]...)...)
	cmd.Env = append(os.Environ(), "WARDEN_BENCH_PINNED="+c.server+"/"+c.client)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return err
	}
	os.Exit(0)
	return nil
}

// child is a running server process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	opa   bool // OPA-Envoy: stopped by SIGTERM; its CPU time read from /proc
	ready
}

// startChild starts this binary as a server (role warden or noop).
func startChild(c cpus, role, cfgFile string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := command(c.server, self, "-child", role, "-config", cfgFile)
	cmd.Env = os.Environ() // GOMAXPROCS follows the CPUs taskset leaves it
	// WARDEN_BENCH_ENV_warden (or _noop): space-separated NAME=value
	// settings for that server alone (e.g. GOGC=off, GODEBUG=gctrace=1).
	if e := os.Getenv("WARDEN_BENCH_ENV_" + role); e != "" {
		cmd.Env = append(cmd.Env, strings.Fields(e)...)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := &child{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &ch.ready)
	}
	if err != nil {
		ch.stop()
		return nil, fmt.Errorf("%s server did not start: %v", role, err)
	}
	return ch, nil
}

func (ch *child) stop() {
	ch.stdin.Close()
	if ch.opa {
		_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	}
	done := make(chan struct{})
	go func() { _ = ch.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = ch.cmd.Process.Kill()
		<-done
	}
}

// metrics scrapes the child's /metrics into name{labels} → value.
func (ch *child) metrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + ch.HTTP + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if ch.opa {
		cpu, err := procCPUSeconds(ch.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		m["process_cpu_seconds_total"] = cpu
	}
	return m, nil
}

// peakRSS is the child's high-water resident set (VmHWM), in bytes. The
// taskset wrapper execs the server, so the pid is the server's.
func (ch *child) peakRSS() (int64, error) {
	p, err := procfs.NewProc(ch.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	st, err := p.NewStatus()
	return int64(st.VmHWM), err
}

// redisServer starts a private redis-server on a unix socket in dir.
func redisServer(c cpus, dir string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not installed (go tool task test installs it)")
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := command(c.server, append([]string{bin}, redistest.Args(sock, dir)...)...)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return sock, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server did not start")
		}
	}
}
