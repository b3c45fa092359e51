package broker

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LogRecord is one broker log record as get_logs returns it.
type LogRecord struct {
	Time    time.Time         `json:"time"`
	Level   string            `json:"level"`
	Message string            `json:"message"`
	Attrs   map[string]string `json:"attrs,omitempty"`
}

// LogRing keeps the most recent log records in memory for get_logs.
type LogRing struct {
	mu   sync.Mutex
	recs []LogRecord
	next int
	full bool

	events changes // Changes subscribers
}

// NewLogRing keeps the last n records.
func NewLogRing(n int) *LogRing { return &LogRing{recs: make([]LogRecord, n)} }

func (r *LogRing) add(rec LogRecord) {
	defer r.events.notify()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs[r.next] = rec
	r.next = (r.next + 1) % len(r.recs)
	if r.next == 0 {
		r.full = true
	}
}

// Records returns records at or above level, newer than since, oldest first,
// at most limit of the newest ones (0 = all).
func (r *LogRing) Records(since time.Time, level slog.Level, limit int) []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var all []LogRecord
	if r.full {
		all = append(all, r.recs[r.next:]...)
	}
	all = append(all, r.recs[:r.next]...)
	var out []LogRecord
	for _, rec := range all {
		var l slog.Level
		_ = l.UnmarshalText([]byte(rec.Level))
		if l >= level && rec.Time.After(since) {
			out = append(out, rec)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// Handler wraps next so every record it handles is also kept in the ring.
func (r *LogRing) Handler(next slog.Handler) slog.Handler {
	return &ringHandler{ring: r, next: next}
}

type ringHandler struct {
	ring  *LogRing
	next  slog.Handler
	attrs []slog.Attr
	group string
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelDebug || h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	attrs := make(map[string]string)
	for _, a := range h.attrs {
		attrs[h.key(a.Key)] = a.Value.String()
	}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[h.key(a.Key)] = a.Value.String()
		return true
	})
	h.ring.add(LogRecord{Time: rec.Time, Level: rec.Level.String(), Message: rec.Message, Attrs: attrs})
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h *ringHandler) key(k string) string {
	if h.group != "" {
		return h.group + "." + k
	}
	return k
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ringHandler{ring: h.ring, next: h.next.WithAttrs(as), attrs: append(append([]slog.Attr{}, h.attrs...), as...), group: h.group}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	return &ringHandler{ring: h.ring, next: h.next.WithGroup(name), attrs: h.attrs, group: h.key(name)}
}
