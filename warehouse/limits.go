package warehouse

import "strings"

// DiskFull tells whether err is the store refusing a write for lack of disk space
// (ClickHouse NOT_ENOUGH_SPACE, code 243, or the operating system's ENOSPC): nothing of that
// write is acknowledged, and it can be sent again once space is freed.
func DiskFull(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "NOT_ENOUGH_SPACE") || strings.Contains(msg, "code: 243,") ||
		strings.Contains(msg, "Code: 243.") || strings.Contains(msg, "No space left on device")
}

// MemoryLimit tells whether err is a query stopped by its memory limit (ClickHouse
// MEMORY_LIMIT_EXCEEDED, code 241: engine.max_query_memory on the embedded store,
// max_memory_usage on a server).
func MemoryLimit(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "MEMORY_LIMIT_EXCEEDED") || strings.Contains(msg, "code: 241,") || strings.Contains(msg, "Code: 241.")
}

// TotalMemoryLimit tells whether err is a query stopped because the whole store ran short of
// memory ("Memory limit (total) exceeded": engine.max_server_memory, or a server's
// max_server_memory_usage), not by its own limit: it may well succeed once the queries running
// beside it have finished.
func TotalMemoryLimit(err error) bool {
	return MemoryLimit(err) && strings.Contains(err.Error(), "(total)")
}
