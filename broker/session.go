package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// openSession is the common opening of the session tools (delete, report,
// fork): it checks the pair and finds its session record and team. missing
// completes the "no session for from->to" error.
func (b *Broker) openSession(ctx context.Context, from, to, missing string) (*models.Session, *configs.Team, error) {
	if err := b.checkHere(ctx, from, to); err != nil {
		return nil, nil, err
	}
	s, err := b.store.SessionByPair(ctx, from, to)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, fmt.Errorf("no session for %s->%s%s", from, to, missing)
	}
	if err != nil {
		return nil, nil, err
	}
	t, _ := b.config().Team(to)
	return s, t, nil
}

// sessionFile finds the team's host and the session's file on it.
func (b *Broker) sessionFile(ctx context.Context, t *configs.Team, s *models.Session) (Host, string, error) {
	h, err := b.hosts.For(t)
	if err != nil {
		return nil, "", err
	}
	file, err := h.SessionFile(ctx, s.SessionID)
	if err != nil {
		return nil, "", err
	}
	return h, file, nil
}

// Delete forgets the pair's session, and removes its file when asked.
func (b *Broker) Delete(ctx context.Context, from, to string, deleteFile bool) (string, error) {
	s, t, err := b.openSession(ctx, from, to, "")
	if err != nil {
		return "", err
	}
	if err := b.pairElsewhere(ctx, from, to); err != nil {
		return "", err
	}
	if p := b.existingPair(from, to); p != nil {
		p.stopProcess(b, "session_delete")
	}
	var removed string
	if deleteFile {
		h, file, err := b.sessionFile(ctx, t, s)
		if err != nil {
			return "", err
		}
		if err := h.Files().Remove(ctx, file); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("remove session file %s on %s: %w", file, h.Where(), err)
		}
		removed = file
	}
	if err := b.store.DeleteSession(ctx, s.SessionID); err != nil {
		return "", fmt.Errorf("delete session %s: %w", s.SessionID, err)
	}
	return removed, nil
}

// Report is a session's conversation as its session file holds it.
type Report struct {
	SessionID string  `json:"sessionId"`
	File      string  `json:"file"`
	Where     string  `json:"where"`
	Total     int     `json:"total"`
	Entries   []Entry `json:"entries"`
}

// Report reads the pair's session file from the team's host.
func (b *Broker) Report(ctx context.Context, from, to string, limit int) (*Report, error) {
	s, t, err := b.openSession(ctx, from, to, " yet; send a message first")
	if err != nil {
		return nil, err
	}
	h, file, err := b.sessionFile(ctx, t, s)
	if err != nil {
		return nil, err
	}
	entries, err := readTranscript(ctx, h.Files(), file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("session file %s is missing on %s; the next message starts a new conversation", file, h.Where())
	}
	if err != nil {
		return nil, fmt.Errorf("read session file %s on %s: %w", file, h.Where(), err)
	}
	rep := &Report{SessionID: s.SessionID, File: file, Where: h.Where(), Total: len(entries), Entries: entries}
	if limit > 0 && len(entries) > limit {
		rep.Entries = entries[len(entries)-limit:]
	}
	return rep, nil
}

// Fork returns the command that opens the pair's session interactively in a
// terminal, as a fork so the broker's session is left alone.
func (b *Broker) Fork(ctx context.Context, from, to string) (string, error) {
	s, t, err := b.openSession(ctx, from, to, " yet; send a message first")
	if err != nil {
		return "", err
	}
	// The command is for a person: it is given even when the host cannot be
	// reached (or resolved) from here right now.
	h, err := b.hosts.For(t)
	if h == nil {
		return "", err
	}
	return h.ForkCommand(s.SessionID), nil
}
