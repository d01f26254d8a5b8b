//go:build !linux && !darwin

package server

import (
	"errors"
	"net"
)

// setNotSentLowat: the system has no TCP_NOTSENT_LOWAT; the kernel's send
// buffer is unbounded by Warden (the write-blocked check still holds).
func setNotSentLowat(*net.TCPConn, int) {}

func notSentLowatOf(*net.TCPConn) (int, error) { return 0, errors.New("no TCP_NOTSENT_LOWAT here") }
