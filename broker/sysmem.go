package broker

import (
	"os"
	"strconv"
	"strings"
	"sync"
)

// physicalMemory is the machine's RAM in bytes (MemTotal of /proc/meminfo),
// or 8 GiB when unknown. Java uses it for "is this message still in page
// cache" decisions.
var physicalMemory = sync.OnceValue(func() uint64 {
	const fallback = 8 << 30
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return fallback
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil && kb > 0 {
					return kb * 1024
				}
			}
		}
	}
	return fallback
})
