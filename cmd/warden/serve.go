package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/wardenauthz/warden/authz/server"
	"github.com/wardenauthz/warden/internal/gcconfig"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", stderr)
	cfgFile := fs.String("config", "", "config file (default: $WARDEN_CONFIG, else the embedded quick start)")
	if code, stop := parseFlags(fs, args); stop {
		return code
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	gcconfig.Configure(log, memlimit.FromCgroup)
	server.LogRedisTo(log)
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	if cfg.Embedded {
		log.Warn("no config given: serving the embedded quick start (dev issuer, memory store, example policies) on loopback; not for production",
			"config", cfg.File)
	}
	svc, err := server.New(cfg, server.Options{Logger: log, Stdout: stdout})
	if err != nil {
		printErrors(stderr, err)
		return exitError
	}
	grpcLis, err := net.Listen("tcp", cfg.Server.GRPCAddr)
	if err != nil {
		fmt.Fprintf(stderr, "warden: server.grpc_addr: %v\n", err)
		return exitError
	}
	httpLis, err := net.Listen("tcp", cfg.Server.HTTPAddr)
	if err != nil {
		grpcLis.Close()
		fmt.Fprintf(stderr, "warden: server.http_addr: %v\n", err)
		return exitError
	}
	var adminLis net.Listener
	adminAddr := "off (set admin.token_file or admin.tls.client_ca_file)"
	if svc.AdminEnabled() {
		if adminLis, err = net.Listen("tcp", cfg.Admin.Addr); err != nil {
			grpcLis.Close()
			httpLis.Close()
			fmt.Fprintf(stderr, "warden: admin.addr: %v\n", err)
			return exitError
		}
		adminAddr = adminLis.Addr().String()
	}
	httpAuthzAddr := "off (set server.http_authz_addr)"
	closeAll := func() {
		grpcLis.Close()
		httpLis.Close()
		if adminLis != nil {
			adminLis.Close()
		}
	}
	if a := cfg.Server.HTTPAuthzAddr; a != "" {
		if svc.HTTPAuthzListener, err = net.Listen("tcp", a); err != nil {
			closeAll()
			fmt.Fprintf(stderr, "warden: server.http_authz_addr: %v\n", err)
			return exitError
		}
		httpAuthzAddr = svc.HTTPAuthzListener.Addr().String()
	}
	var authzenLis net.Listener
	if svc.AuthZENEnabled() {
		if authzenLis, err = net.Listen("tcp", cfg.Server.AuthZENAddr); err != nil {
			closeAll()
			if svc.HTTPAuthzListener != nil {
				svc.HTTPAuthzListener.Close()
			}
			fmt.Fprintf(stderr, "warden: server.authzen_addr: %v\n", err)
			return exitError
		}
	}
	// A stdout (or stderr) whose reader is gone fails its writes (the
	// records' are counted and warned about) instead of killing the
	// server with SIGPIPE: Envoy would deny every request meanwhile.
	signal.Ignore(syscall.SIGPIPE)
	svc.Start(ctx)
	// warden.yaml reloads on change (policy.reload: watch) and on SIGHUP.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	svc.WatchConfig(ctx, hup)
	authzenDone := make(chan error, 1)
	if authzenLis != nil {
		log.Info("AuthZEN API serving", "authzen", authzenLis.Addr().String())
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			err := svc.ServeAuthZEN(ctx, authzenLis)
			if err != nil {
				cancel() // a broken AuthZEN listener stops the rest too
			}
			authzenDone <- err
		}()
	} else {
		authzenDone <- nil
	}
	log.Info("warden serving", "grpc", grpcLis.Addr().String(), "http", httpLis.Addr().String(), "http_authz", httpAuthzAddr, "admin", adminAddr,
		"policies", svc.Policies.Current().Len(), "config", cfg.File)
	if cfg.Admin.DevToken && svc.AdminEnabled() {
		log.Info("admin API dev token (allowed every method)", "token_file", svc.AdminTokenFile)
	}
	if cfg.Admin.Console && adminLis != nil {
		scheme := "http"
		if cfg.Admin.TLS.CertFile != "" {
			scheme = "https"
		}
		log.Info("web console (sign in with an admin token)", "url", scheme+"://"+adminAddr+"/")
	}
	if err := svc.Serve(ctx, grpcLis, httpLis, adminLis); err != nil {
		log.Error("serve", "err", err)
		return exitError
	}
	if err := <-authzenDone; err != nil {
		log.Error("serve AuthZEN", "err", err)
		return exitError
	}
	log.Info("warden stopped")
	return exitOK
}
