package broker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// iris-mcp's clients call switchboard's tools with iris's argument names
// (toTeam on the session tools, persist/ttlDays, logs_since, ...) and its
// get_date tool; this file holds what maps them. get_agent (iris's canned
// role prompts) has no counterpart: switchboard routes questions and ships
// no prompts.

// eitherTeam returns the team a tool names as team or, as send_message
// and iris-mcp name it, toTeam. optional allows neither (every team).
func (t *tools) eitherTeam(team, toTeam string, optional bool) (string, error) {
	switch {
	case team != "" && toTeam != "" && team != toTeam:
		return "", fmt.Errorf("team %q and toTeam %q differ; give one of them", team, toTeam)
	case team != "":
		return team, nil
	case toTeam != "" || optional:
		return toTeam, nil
	}
	return "", fmt.Errorf("team is required (toTeam is accepted too); teams are: %s", strings.Join(t.b.config().TeamNames(), ", "))
}

// logLevelArg reads get_logs's level: one level name, or (iris-mcp) a list
// of them, of which the lowest counts; absent means info.
func logLevelArg(v any) (slog.Level, error) {
	var names []string
	switch x := v.(type) {
	case nil:
		return slog.LevelInfo, nil
	case string:
		if x == "" {
			return slog.LevelInfo, nil
		}
		names = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return 0, fmt.Errorf("level %v: give level names such as \"warn\"", v)
			}
			names = append(names, s)
		}
	default:
		return 0, fmt.Errorf("level %v: use debug, info, warn or error", v)
	}
	lowest := slog.LevelError + 4
	for _, n := range names {
		var l slog.Level
		switch strings.ToLower(n) {
		case "trace":
			l = slog.LevelDebug
		case "fatal":
			l = slog.LevelError
		default:
			if err := l.UnmarshalText([]byte(n)); err != nil {
				return 0, fmt.Errorf("level %q: use debug, info, warn or error", n)
			}
		}
		lowest = min(lowest, l)
	}
	if len(names) == 0 {
		return slog.LevelInfo, nil
	}
	return lowest, nil
}

// DateResult is get_date's result, in iris-mcp's shape.
type DateResult struct {
	Timestamp  int64          `json:"timestamp" jsonschema:"milliseconds since the Unix epoch"`
	ISO        string         `json:"iso" jsonschema:"ISO 8601 in UTC"`
	UTC        string         `json:"utc" jsonschema:"human-readable UTC date"`
	Unix       int64          `json:"unix" jsonschema:"seconds since the Unix epoch"`
	Components DateComponents `json:"components"`
}

// DateComponents are the parts of get_date's time, in UTC.
type DateComponents struct {
	Year         int `json:"year"`
	Month        int `json:"month"`
	Day          int `json:"day"`
	Hours        int `json:"hours"`
	Minutes      int `json:"minutes"`
	Seconds      int `json:"seconds"`
	Milliseconds int `json:"milliseconds"`
	DayOfWeek    int `json:"dayOfWeek" jsonschema:"0 is Sunday"`
	DayOfYear    int `json:"dayOfYear"`
}

// dateTool registers get_date: schema, annotations and handler together.
func (t *tools) dateTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "get_date", Annotations: readOnly, Description: "The current date and time on the broker's machine, in UTC: ISO 8601, Unix time and components (iris-mcp's get_date)."}, t.date)
}

func (t *tools) date(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, DateResult, error) {
	out := dateOf(time.Now().UTC())
	return jsonResult(out), out, nil
}

func dateOf(now time.Time) DateResult {
	return DateResult{
		Timestamp: now.UnixMilli(),
		ISO:       now.Format("2006-01-02T15:04:05.000Z"),
		UTC:       now.Format(time.RFC1123),
		Unix:      now.Unix(),
		Components: DateComponents{
			Year: now.Year(), Month: int(now.Month()), Day: now.Day(),
			Hours: now.Hour(), Minutes: now.Minute(), Seconds: now.Second(), Milliseconds: now.Nanosecond() / 1e6,
			DayOfWeek: int(now.Weekday()), DayOfYear: now.YearDay(),
		},
	}
}
