//go:build unix

package dledgernet

import "syscall"

// writeNow writes as much of b as the socket takes without blocking.
func writeNow(rc syscall.RawConn, b []byte) (int, error) {
	if rc == nil {
		return 0, nil
	}
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			k, e := syscall.Write(int(fd), b[n:])
			if k > 0 {
				n += k
			}
			switch e {
			case nil:
				if n < len(b) && k > 0 {
					continue
				}
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
			default:
				werr = e
			}
			return true // never wait for writability: the sender does that
		}
	})
	if err != nil {
		return n, err
	}
	return n, werr
}
