//go:build unix

package remoting

import (
	"net"
	"strconv"
	"syscall"
)

// sockName returns the local "ip:port" of socket fd (gnet reports the
// listener's configured address for accepted connections, port 0 included).
func sockName(fd int) (string, bool) {
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return "", false
	}
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)), true
	case *syscall.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port)), true
	}
	return "", false
}

// directWrites: on Unix, workers write responses straight to the socket
// (see serverConn.Send).
const directWrites = true

// writeFD writes as much of b to the non-blocking socket fd as it accepts
// now. EAGAIN is not an error: the caller queues the rest.
func writeFD(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, b)
		if n < 0 {
			n = 0
		}
		switch err {
		case syscall.EINTR:
			if n == 0 {
				continue
			}
			return n, nil
		case syscall.EAGAIN:
			return n, nil
		}
		return n, err
	}
}
