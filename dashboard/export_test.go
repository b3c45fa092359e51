package dashboard

import "time"

// SetHeartbeat shortens the event stream's heartbeat for a test and returns
// the function that restores it.
func SetHeartbeat(d time.Duration) (restore func()) {
	old := heartbeat
	heartbeat = d
	return func() { heartbeat = old }
}
