package dashboard

import (
	"context"
	"log/slog"
	"time"
)

// Backend is everything the dashboard needs from the broker. It is defined
// here, by its user, so the dashboard never imports broker/ or models/: the
// daemon wires a small adapter that satisfies it (see the package doc).
//
// Contract for implementations:
//   - Every method may be called concurrently from many requests; reads must
//     not block on a running turn (they report state, they do not wait for it).
//   - Read methods return the dashboard's own view types, newest first where a
//     list has an order (Messages, Logs, recent decisions), and respect limit
//     when it is > 0. They return an empty slice, not an error, when there is
//     nothing to show.
//   - Actions go through the same broker calls as the MCP tools (wake, sleep,
//     cancel, reboot, send_message as the operator, the permissions decision),
//     and return an error whose text an operator can act on ("unknown team
//     web", "no turn running for api->db"). The dashboard logs every action
//     and its outcome itself; the backend need not.
//   - Changes lets the dashboard learn quickly that something changed; it is a
//     hint only. The dashboard also polls every few seconds, so a missed or
//     coalesced signal costs latency, never correctness.
type Backend interface {
	// Teams lists every configured team with its pairs' processes.
	Teams(ctx context.Context) ([]Team, error)
	// Messages lists the latest messages matching f, newest first.
	Messages(ctx context.Context, f MessageFilter) ([]Message, error)
	// Session returns the last limit entries of the from->to pair's
	// conversation, read from the real session file (local or over SFTP), as
	// session_report gives it, oldest first.
	Session(ctx context.Context, from, to string, limit int) ([]SessionEntry, error)
	// Logs returns the broker's recent log records matching q, newest first.
	Logs(ctx context.Context, q LogQuery) ([]LogRecord, error)
	// Permissions returns the pending "ask" requests and the recent decisions.
	Permissions(ctx context.Context) (Permissions, error)

	// Changes subscribes to state changes. The backend sends on signal
	// (without blocking: a buffered channel of 1, dropping the send when it is
	// full, is right) whenever teams, messages, logs or permissions may have
	// changed. stop ends the subscription; the backend must not send after
	// stop returns, and may close signal then.
	Changes() (signal <-chan struct{}, stop func())

	// Wake starts the from->to pair's process if it is stopped.
	Wake(ctx context.Context, from, to string) error
	// Sleep stops the pair's process; its session is kept for the next turn.
	Sleep(ctx context.Context, from, to string) error
	// Cancel interrupts the pair's running turn.
	Cancel(ctx context.Context, from, to string) error
	// Reboot starts the pair over with a fresh session.
	Reboot(ctx context.Context, from, to string) error
	// Send queues text for team to as the operator (asynchronously, like
	// quick_message) and returns the new message's id.
	Send(ctx context.Context, to, text string) (messageID string, err error)
	// Decide answers a pending permission request: allow or deny with reason.
	Decide(ctx context.Context, permissionID string, allow bool, reason string) error
}

// PairState is what a pair's process is doing right now.
type PairState string

const (
	StateStopped              PairState = "stopped"
	StateStarting             PairState = "starting"
	StateIdle                 PairState = "idle"
	StateAnswering            PairState = "answering"
	StateWaitingForPermission PairState = "waiting-for-permission"
)

// Team is one configured team.
type Team struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// Where is "local" or the SSH host the team lives on.
	Where     string `json:"where"`
	Reachable bool   `json:"reachable"`
	// Reason says why the team is not reachable (empty when it is).
	Reason string `json:"reason"`
	Pairs  []Pair `json:"pairs"`
}

// Pair is the (From, To) session and its process, if any.
type Pair struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	SessionID string    `json:"sessionId"`
	State     PairState `json:"state"`
	PID       int       `json:"pid"`
	// StartedAt is when the process started (zero when stopped). The page
	// computes the uptime from it, so a snapshot does not change every second.
	StartedAt time.Time `json:"startedAt"`
	Turns     int       `json:"turns"`
	LastUsed  time.Time `json:"lastUsed"`
	Queue     int       `json:"queue"`
}

// MessageFilter selects messages; empty fields match everything.
type MessageFilter struct {
	// Team matches a message sent by or to this team.
	Team   string
	Status string
	Limit  int
}

// Message is one question and its answer.
type Message struct {
	ID      string    `json:"id"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Status  string    `json:"status"` // as the store has it: queued, running, answered, failed, expired
	Created time.Time `json:"created"`
	// Latency is how long the answer took (zero while not finished).
	Latency  time.Duration `json:"latency"`
	Question string        `json:"question"`
	Answer   string        `json:"answer"`
	// Error is why a failed, expired or cancelled message has no answer.
	Error string `json:"error"`
}

// SessionEntry is one turn of a session's conversation.
type SessionEntry struct {
	Role string    `json:"role"` // user, assistant, tool, system
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// LogQuery selects log records; zero fields match everything.
type LogQuery struct {
	Since time.Time
	// Level is the minimum level shown.
	Level slog.Level
	Team  string
	Limit int
}

// LogRecord is one broker log record.
type LogRecord struct {
	Time    time.Time         `json:"time"`
	Level   string            `json:"level"` // DEBUG, INFO, WARN, ERROR
	Team    string            `json:"team"`
	Message string            `json:"message"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// Permissions is the permission requests in "ask" mode.
type Permissions struct {
	Pending []PermissionRequest  `json:"pending"`
	Recent  []PermissionDecision `json:"recent"`
}

// PermissionRequest is a tool use waiting for an operator.
type PermissionRequest struct {
	ID        string `json:"id"`
	Team      string `json:"team"` // the team whose Claude asks
	From      string `json:"from"`
	To        string `json:"to"`
	MessageID string `json:"messageId"`
	Tool      string `json:"tool"`
	// Input is the tool input as JSON, clipped by the backend to a few
	// hundred bytes.
	Input   string    `json:"input"`
	Created time.Time `json:"created"`
	// Deadline is when permissionTimeout denies the request.
	Deadline time.Time `json:"deadline"`
}

// PermissionDecision is a decided request.
type PermissionDecision struct {
	PermissionRequest
	Allow     bool      `json:"allow"`
	Reason    string    `json:"reason"`
	DecidedBy string    `json:"decidedBy"` // operator, timeout, forward, yes, no
	Decided   time.Time `json:"decided"`
}
