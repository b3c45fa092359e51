package broker

import (
	"fmt"
	"strings"

	"github.com/switchboard-mcp/switchboard/models"
)

// The header switchboard writes at the very start of the text Claude
// receives names the asker, the message id and the message's nonce. Crash
// recovery looks for it only there (the start of a user entry's first text
// block) and only with the nonce stored with the message: a message body
// that quotes a header, or guesses one, can never settle another message.

// header is what opens the text of message m's delivery.
func header(m *models.Message) string {
	return headerKey(m) + "]"
}

// resumedHeader opens the request for an answer lost in a crash.
func resumedHeader(m *models.Message) string {
	if m.Nonce == "" {
		return fmt.Sprintf("[switchboard message %d resumed]", m.ID)
	}
	return headerKey(m) + " resumed]"
}

func headerKey(m *models.Message) string {
	if m.Nonce == "" {
		// Queued before nonces existed: the position alone must do.
		return fmt.Sprintf("[switchboard message %d from team %q", m.ID, m.FromTeam)
	}
	return fmt.Sprintf("[switchboard message %d from team %q nonce %s", m.ID, m.FromTeam, m.Nonce)
}

// envelope is what Claude receives for a message: the header, the ask chain
// when another team is waiting on it (after the header, which recovery
// matches as a prefix), then the text.
func envelope(m *models.Message) string {
	return header(m) + chainNote(m) + "\n\n" + m.Text
}

// wroteHeader reports whether a user entry's text begins with a header the
// broker wrote for m (the delivery or the resumed request).
func wroteHeader(text string, m *models.Message) bool {
	return strings.HasPrefix(text, header(m)) || strings.HasPrefix(text, resumedHeader(m))
}
