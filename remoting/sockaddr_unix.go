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
