package configs

import (
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Team returns the team called name.
func (c *Config) Team(name string) (*Team, bool) {
	t, ok := c.Teams[name]
	return t, ok
}

// TeamNames returns the team names in sorted order.
func (c *Config) TeamNames() []string {
	names := make([]string, 0, len(c.Teams))
	for name := range c.Teams {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// EffectiveIdleTimeout is the team's idleTimeout, or the broker-wide one
// when the team does not set its own.
func (t *Team) EffectiveIdleTimeout(s Settings) time.Duration {
	if t.IdleTimeout.Duration > 0 {
		return t.IdleTimeout.Duration
	}
	return s.IdleTimeout.Duration
}

// EffectiveSessionInitTimeout is the team's sessionInitTimeout, or the
// broker-wide one when the team does not set its own.
func (t *Team) EffectiveSessionInitTimeout(s Settings) time.Duration {
	if t.SessionInitTimeout.Duration > 0 {
		return t.SessionInitTimeout.Duration
	}
	return s.SessionInitTimeout.Duration
}

// Level is LogLevel as a slog.Level (info when unset or unknown).
func (s Settings) Level() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// line is the line of key in File, or of its nearest enclosing key that
// was written (a missing teams.api.path points at teams.api); 0 if none.
func (c *Config) line(key string) int {
	for key != "" {
		if n, ok := c.lines[key]; ok {
			return n
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

// has reports whether key was written in the file.
func (c *Config) has(key string) bool {
	_, ok := c.lines[key]
	return ok
}

// EffectiveStandby is the team's standby, or the broker-wide one when the
// team does not set its own.
func (t *Team) EffectiveStandby(s Settings) int {
	if t.Standby != nil {
		return *t.Standby
	}
	return s.Standby
}
