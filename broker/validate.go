package broker

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-mcp/switchboard/configs"
)

// ErrUnknownTeam is wrapped by errors about a team that is not configured.
var ErrUnknownTeam = errors.New("unknown team")

func (b *Broker) unknownTeam(name string) error {
	return fmt.Errorf("%w %q; teams are: %s", ErrUnknownTeam, name, strings.Join(b.config().TeamNames(), ", "))
}

// checkPair validates a (from, to) pair as it arrives from a caller.
func (b *Broker) checkPair(from, to string) error {
	if err := configs.ValidTeamName(from); err != nil {
		return fmt.Errorf("fromTeam: %w", err)
	}
	if to == "" {
		return fmt.Errorf("toTeam is required; teams are: %s", strings.Join(b.config().TeamNames(), ", "))
	}
	if err := configs.ValidTeamName(to); err != nil {
		return fmt.Errorf("toTeam: %w", err)
	}
	if _, ok := b.config().Team(to); !ok {
		return b.unknownTeam(to)
	}
	return nil
}

func (b *Broker) checkText(text string) error {
	limit := b.config().Settings.MaxMessageBytes
	switch {
	case strings.TrimSpace(text) == "":
		return errors.New("message is empty; write the question for the other team")
	case len(text) > limit:
		return fmt.Errorf("message is %d bytes, over the limit of %d; shorten it or point to a file the team can read", len(text), limit)
	case !utf8.ValidString(text):
		return errors.New("message is not valid UTF-8; send text")
	}
	return nil
}
