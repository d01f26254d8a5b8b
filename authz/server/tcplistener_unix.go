//go:build linux || darwin

package server

import (
	"net"

	"golang.org/x/sys/unix"
)

// setNotSentLowat sets c's TCP_NOTSENT_LOWAT to n bytes. A failure leaves
// the kernel's default (no bound; the write-blocked check still holds).
func setNotSentLowat(c *net.TCPConn, n int) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	})
}

// notSentLowatOf is c's TCP_NOTSENT_LOWAT (tests).
func notSentLowatOf(c *net.TCPConn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var serr error
	err = rc.Control(func(fd uintptr) {
		n, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
	})
	if err == nil {
		err = serr
	}
	return n, err
}
