package daemon

import (
	"encoding/json"
	"fmt"

	"github.com/switchboard-mcp/switchboard/broker"
)

// The broker's first progress notification for a waiting send_message
// carries the message id (broker.AcceptedText). The proxy remembers it per
// request, so when the daemon dies mid-call the error it gives the client
// names the message that was accepted: calling again would send it twice.

// progressParams is the part of a request or progress notification the
// proxy reads for that; peek decodes it with the envelope, so that a line
// is parsed once.
type progressParams struct {
	Meta struct {
		ProgressToken json.RawMessage `json:"progressToken"`
	} `json:"_meta"`
	ProgressToken json.RawMessage `json:"progressToken"`
	Message       string          `json:"message"`
}

// requestToken returns the progress token of a client request, "" if none.
func (e envelope) requestToken() string {
	if len(e.Params.Meta.ProgressToken) == 0 {
		return ""
	}
	return idKey(e.Params.Meta.ProgressToken)
}

// acceptedNotice returns the token and message id of a progress
// notification that announces an accepted message.
func (e envelope) acceptedNotice() (token string, id uint64, ok bool) {
	if len(e.Params.ProgressToken) == 0 {
		return "", 0, false
	}
	id, ok = broker.ParseAccepted(e.Params.Message)
	return idKey(e.Params.ProgressToken), id, ok
}

// noteProgress records, for the request whose token a progress notification
// names, the message id it announces.
func (l *link) noteProgress(e envelope) {
	if e.Method != "notifications/progress" {
		return
	}
	token, id, ok := e.acceptedNotice()
	if !ok {
		return
	}
	for k, tok := range l.tokens {
		if tok == token {
			l.accepted[k] = id
		}
	}
}

// lostText is the error for a request in flight when the daemon went away.
func lostText(reason string, accepted uint64) string {
	if accepted != 0 {
		return fmt.Sprintf("the switchboard daemon stopped while handling this request (%s); message %d was accepted and is kept: "+
			"fetch its answer with message_status messageId=%d and do not send it again", reason, accepted, accepted)
	}
	return fmt.Sprintf("the switchboard daemon stopped while handling this request (%s); "+
		"the message is kept in the queue if it was accepted — call again or check message_status", reason)
}
