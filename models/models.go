// Package models holds switchboard's persistent state: the session record of
// every (fromTeam, toTeam) pair and the durable message queue, stored with
// GORM in SQLite (default) or Postgres.
package models

import "time"

// SessionStatus is the lifecycle state of a session record.
type SessionStatus string

// Session statuses.
const (
	SessionActive     SessionStatus = "active"
	SessionCompacting SessionStatus = "compacting"
	SessionError      SessionStatus = "error"
)

// ProcessState is the last known state of the Claude process serving a
// session. It is advisory: after a restart no process is running, which is
// why ResetProcessStates exists.
type ProcessState string

// Process states.
const (
	ProcessStopped  ProcessState = "stopped"
	ProcessStarting ProcessState = "starting"
	ProcessIdle     ProcessState = "idle"
	ProcessBusy     ProcessState = "busy"
	ProcessError    ProcessState = "error"
)

// Session is the persistent Claude Code session of one (FromTeam, ToTeam)
// pair, so that a team remembers what the other told it across restarts.
type Session struct {
	ID       uint   `gorm:"primaryKey"`
	FromTeam string `gorm:"not null;uniqueIndex:idx_pair,priority:1"`
	// ToTeam leads idx_sessions_to_recent (made by migrate) because "every
	// session of team X" matches either column and idx_pair only serves
	// FromTeam.
	ToTeam string `gorm:"not null;uniqueIndex:idx_pair,priority:2"`
	// SessionID is the Claude Code session UUID (v4).
	SessionID string `gorm:"not null;uniqueIndex:idx_sessions_session_id"`
	// Status is indexed together with the recency order by migrate.
	Status       SessionStatus `gorm:"not null"`
	ProcessState ProcessState  `gorm:"not null"`
	// MessageCount counts messages delivered since the session was created,
	// rebooted or last compacted: the size of its context, roughly.
	MessageCount    int `gorm:"not null"`
	CreatedAt       time.Time
	UpdatedAt       time.Time
	LastUsedAt      *time.Time
	LastResponseAt  *time.Time
	LastCompactedAt *time.Time
	CompactionCount int `gorm:"not null"`
	// LaunchCommand is the argv last used to start the process, for debugging.
	LaunchCommand string
	// TeamConfigSnapshot is the JSON of the team config at the last launch.
	TeamConfigSnapshot string
	LastError          string
}

// MessageStatus is where a message is in the durable queue.
type MessageStatus string

// Message statuses. Answered, failed and expired are final.
const (
	MessageQueued   MessageStatus = "queued"
	MessageRunning  MessageStatus = "running"
	MessageAnswered MessageStatus = "answered"
	MessageFailed   MessageStatus = "failed"
	MessageExpired  MessageStatus = "expired"
)

// unfinishedCond selects queued and running messages. Queries that must
// use idx_messages_unfinished (a partial index with this predicate) repeat
// it word for word, with its literals: SQLite uses a partial index only
// when the query's WHERE contains the index's terms, and it cannot see
// through bound parameters.
const unfinishedCond = "status IN ('queued', 'running')"

// Final reports whether a message in this status will never change again.
func (s MessageStatus) Final() bool {
	return s == MessageAnswered || s == MessageFailed || s == MessageExpired
}

// Message is one message from a team to another, kept until it is answered,
// fails or expires so that a daemon restart loses nothing.
type Message struct {
	// ID is the messageId users see.
	ID       uint64 `gorm:"primaryKey;autoIncrement"`
	FromTeam string `gorm:"not null;index:idx_messages_pair,priority:2"`
	// ToTeam leads idx_messages_pair so that the index also serves
	// per-recipient counts.
	ToTeam string `gorm:"not null;index:idx_messages_pair,priority:1"`
	// SessionID is the session the message was delivered into ("" until then).
	SessionID string
	Text      string        `gorm:"not null"`
	Status    MessageStatus `gorm:"not null;index:idx_messages_pair,priority:3;index:idx_messages_status"`
	Answer    string
	Error     string
	Attempts  int `gorm:"not null"`
	// Async marks a message nobody waits for (quick_message, timeout -1):
	// it is retried with backoff until ExpiresAt instead of failing at once.
	Async     bool `gorm:"not null;default:false"`
	CreatedAt time.Time
	UpdatedAt time.Time
	// NotBefore delays redelivery after a failed attempt (retry backoff).
	NotBefore time.Time
	// ExpiresAt is when a still-queued message gives up; zero means never.
	ExpiresAt time.Time
	// DeliveredAt is set before the text is written to Claude's stdin, so a
	// crash mid-turn leaves evidence that the message may have been seen.
	DeliveredAt *time.Time
	FinishedAt  *time.Time
	DurationMs  int64
	// Nonce is a random token (set by EnqueueMessage) that the broker
	// writes into the header it puts before the text Claude receives, so
	// crash recovery can tell its own header from the same words typed
	// inside a message body. Rows from before it existed have "".
	Nonce string `gorm:"not null;default:''"`
	// ParentID is the message whose answer this one was asked for, by the
	// team answering it (0: asked from outside any answer).
	ParentID uint64 `gorm:"not null;default:0"`
	// Chain is the ask chain: the teams waiting, from the first asker to
	// FromTeam, joined by " → " ("web → api" when api asks while
	// answering web). ToTeam is the one new link.
	Chain string `gorm:"not null;default:''"`
}

// Pair names a (from, to) team pair.
type Pair struct {
	From, To string
}
