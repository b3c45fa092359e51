package broker

import (
	"fmt"
	"strconv"
	"strings"
)

// acceptedPrefix starts the first progress notification of a waiting
// send_message: the message is stored, and this is its id. A client that
// loses the call afterwards (its daemon died, its wait was cut) fetches the
// answer by id instead of asking again.
const acceptedPrefix = "switchboard accepted message "

// AcceptedText is the progress message that announces message id.
func AcceptedText(id uint64) string {
	return fmt.Sprintf("%s%d; if this call fails, fetch the answer with message_status messageId=%d", acceptedPrefix, id, id)
}

// ParseAccepted returns the message id a progress message announces, if it
// is AcceptedText's.
func ParseAccepted(msg string) (uint64, bool) {
	rest, ok := strings.CutPrefix(msg, acceptedPrefix)
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, ";")
	id, err := strconv.ParseUint(digits, 10, 64)
	return id, err == nil
}

// acceptedFunc relays the accepted id through progress, when the client
// asked for progress.
func acceptedFunc(progress func(string)) func(uint64) {
	if progress == nil {
		return nil
	}
	return func(id uint64) { progress(AcceptedText(id)) }
}

// acceptedErr says that a message the caller waited for was stored, so a
// retry would send it twice.
func acceptedErr(id uint64, err error) error {
	return fmt.Errorf("message %d was accepted and is kept; fetch it with message_status messageId=%d instead of sending it again: %w", id, id, err)
}
