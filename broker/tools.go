package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/internal/hoptrace"
)

// Version is the broker's version as MCP clients see it; set at build time.
var Version = "dev"

// tools binds the MCP tool handlers to a broker and to the caller's team,
// the default fromTeam of every call on this connection.
type tools struct {
	b      *Broker
	caller string
}

// NewMCPServer returns an MCP server exposing the broker's tools for one
// caller. caller is the default fromTeam ("user" when empty).
//
// A configured team's (or the operator's) server is built once and shared
// by all its connections: the daemon serves each client connection with
// the caller's server, and building one (eighteen tools with their
// schemas) is milliseconds of work that every new connection would repeat.
// What a server holds is the same for every connection of a caller; each
// call's session is its own. Other callers (refused at their first call)
// get a server of their own, so no name a client sends is kept.
func NewMCPServer(b *Broker, caller string) *mcp.Server {
	if caller == "" {
		caller = Operator
	}
	if b == nil {
		return newMCPServer(b, caller, nil)
	}
	if s, ok := b.servers.Load(caller); ok {
		return s.(*mcp.Server)
	}
	if _, ok := b.config().Team(caller); !ok && caller != Operator {
		return newMCPServer(b, caller, nil)
	}
	s, _ := b.servers.LoadOrStore(caller, newMCPServer(b, caller, nil))
	return s.(*mcp.Server)
}

// newMCPServer is NewMCPServer for a caller that is a Claude process the
// broker started, holding cred (nil for every other caller).
func newMCPServer(b *Broker, caller string, cred *credential) *mcp.Server {
	if caller == "" {
		caller = Operator
	}
	t := &tools{b: b, caller: caller}
	s := mcp.NewServer(&mcp.Implementation{Name: "switchboard", Version: Version}, &mcp.ServerOptions{
		Instructions: "switchboard lets you ask Claude Code sessions in other project directories (teams) questions. " +
			"Use list_teams to see them and send_message to ask one; for long questions pass timeout -1 and fetch the answer with message_status.",
	})
	s.AddReceivingMiddleware(identity(b, caller, cred))
	for _, add := range []func(*mcp.Server){
		t.sendTool, t.quickTool, t.statusTool, t.listTeamsTool, t.teamStatusTool,
		t.wakeTool, t.sleepTool, t.wakeAllTool,
		t.reportTool, t.cancelTool, t.rebootTool, t.deleteSessionTool, t.forkTool,
		t.permissionTools, t.logsTool, t.dateTool,
	} {
		add(s)
	}
	return s
}

// Hints for clients that ask before calling a tool: the read-only tools
// change nothing; session_delete forgets a conversation for good.
var (
	readOnly    = &mcp.ToolAnnotations{ReadOnlyHint: true}
	destructive = &mcp.ToolAnnotations{DestructiveHint: ptr(true)}
)

func ptr[T any](v T) *T { return &v }

func (t *tools) from(s string) string {
	if s == "" {
		return t.caller
	}
	return s
}

// SendArgs are send_message's arguments.
type SendArgs struct {
	ToTeam   string   `json:"toTeam,omitempty" jsonschema:"the team to ask"`
	ToTeams  []string `json:"toTeams,omitempty" jsonschema:"several teams to ask in parallel, instead of toTeam"`
	Message  string   `json:"message" jsonschema:"the question or message text"`
	FromTeam string   `json:"fromTeam,omitempty" jsonschema:"the asking team; default: the caller's team"`
	Timeout  *int64   `json:"timeout,omitempty" jsonschema:"milliseconds to wait, at most 86400000 (24h); absent: responseTimeout, 0: no limit, -1: return a messageId at once"`
	// iris-mcp's arguments, accepted so its clients work unchanged.
	Persist bool    `json:"persist,omitempty" jsonschema:"queue durably and return a messageId at once, as timeout -1 (iris-mcp)"`
	TTLDays float64 `json:"ttlDays,omitempty" jsonschema:"days the message may wait for an unreachable team before it expires; default: messageTTL"`
}

func textResult(text string, structured any) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}, StructuredContent: structured}
}

func jsonResult(v any) *mcp.CallToolResult {
	b, _ := json.MarshalIndent(v, "", "  ")
	return textResult(string(b), v)
}

// sendTool registers send_message and ask_message: schema, annotations and handler together.
func (t *tools) sendTool(s *mcp.Server) {
	send := &mcp.Tool{Name: "send_message", Description: "Ask another team a question and wait for its answer. " +
		"timeout is in milliseconds: absent = the broker's responseTimeout, 0 = wait without limit, -1 = queue and return a messageId at once. " +
		"When the wait ends first, the answer is kept: fetch it with message_status. toTeams asks several teams in parallel."}
	addTool(s, send, t.send)
	ask := *send
	ask.Name, ask.Description = "ask_message", "Alias of send_message. "+send.Description
	addTool(s, &ask, t.send)
}

// maxTimeoutMS is the longest wait a timeout may ask for: 24 hours.
const maxTimeoutMS = 24 * 60 * 60 * 1000

func (t *tools) send(ctx context.Context, req *mcp.CallToolRequest, in SendArgs) (*mcp.CallToolResult, any, error) {
	hoptrace.Here(hoptrace.HandlerStart)
	from := t.from(in.FromTeam)
	wait := t.b.config().Settings.ResponseTimeout.Duration
	noWait := false
	if in.Timeout != nil {
		switch {
		case *in.Timeout == -1:
			noWait = true
		case *in.Timeout < -1:
			return nil, nil, fmt.Errorf("timeout %d is not valid: use milliseconds, 0 to wait without limit or -1 to return at once", *in.Timeout)
		case *in.Timeout > maxTimeoutMS:
			// Past this the conversion to a Duration overflows (and a wait
			// longer than a day is better done with -1 and message_status).
			return nil, nil, fmt.Errorf("timeout %d ms is over the maximum %d ms (24h): use 0 to wait without limit, or -1 and message_status", *in.Timeout, int64(maxTimeoutMS))
		default:
			wait = time.Duration(*in.Timeout) * time.Millisecond
		}
	}
	if in.Persist {
		noWait = true
	}
	if in.TTLDays < 0 {
		return nil, nil, fmt.Errorf("ttlDays %g is negative; give a number of days", in.TTLDays)
	}
	ttl := time.Duration(in.TTLDays * float64(24*time.Hour))
	targets := in.ToTeams
	if in.ToTeam != "" {
		targets = append([]string{in.ToTeam}, targets...)
	}
	if len(targets) == 0 {
		return nil, nil, fmt.Errorf("toTeam is required; teams are: %s", strings.Join(t.b.config().TeamNames(), ", "))
	}
	if len(targets) == 1 {
		progress := progressFunc(ctx, req)
		r, err := t.b.Send(ctx, SendRequest{From: from, To: targets[0], Text: in.Message, Wait: wait, NoWait: noWait, TTL: ttl, Progress: progress, Accepted: acceptedFunc(progress), Elicit: elicitor(req)})
		hoptrace.Here(hoptrace.SendReturn)
		if err != nil {
			return nil, nil, err
		}
		res := replyResult(r)
		hoptrace.Here(hoptrace.HandlerEnd)
		return res, nil, nil
	}
	// Fan-out: every team in parallel; the pool bound still applies.
	replies := make([]fanReply, len(targets))
	var wg sync.WaitGroup
	for i, to := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i].Team = to
			r, err := t.b.Send(ctx, SendRequest{From: from, To: to, Text: in.Message, Wait: wait, NoWait: noWait, TTL: ttl, Elicit: elicitor(req)})
			if err != nil {
				replies[i].Error = err.Error()
				return
			}
			replies[i].Reply = r
		}()
	}
	wg.Wait()
	return jsonResult(map[string]any{"results": replies}), nil, nil
}

type fanReply struct {
	Team string `json:"team"`
	*Reply
	Error string `json:"error,omitempty"`
}

// replyResult puts the answer first, as the text a model reads; failures are
// tool errors it can act on.
func replyResult(r *Reply) *mcp.CallToolResult {
	var text string
	switch {
	case r.Status == "answered":
		text = r.Answer
	case r.Status == "failed" || r.Status == "expired":
		res := textResult(fmt.Sprintf("message %d to %s %s: %s", r.MessageID, r.To, r.Status, r.Error), r)
		res.IsError = true
		return res
	case r.TimedOut:
		text = timedOutText(r)
	default:
		text = fmt.Sprintf("Message %d for %s is %s. Fetch the answer with message_status messageId=%d.", r.MessageID, r.To, r.Status, r.MessageID)
	}
	if r.Note != "" {
		text += "\n" + r.Note
	}
	return textResult(text, r)
}

// progressFunc relays partial answers as MCP progress notifications when the
// client asked for progress.
func progressFunc(ctx context.Context, req *mcp.CallToolRequest) func(string) {
	if req == nil || req.Params == nil || req.Session == nil {
		return nil
	}
	token := req.Params.GetProgressToken()
	if token == nil {
		return nil
	}
	var mu sync.Mutex
	n := 0.0
	return func(text string) {
		mu.Lock()
		n++
		step := n
		mu.Unlock()
		_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token, Progress: step, Message: text})
	}
}

// QuickArgs are quick_message's arguments.
type QuickArgs struct {
	ToTeam   string `json:"toTeam" jsonschema:"the team to message"`
	Message  string `json:"message" jsonschema:"the message text"`
	FromTeam string `json:"fromTeam,omitempty" jsonschema:"the sending team; default: the caller's team"`
}

// quickTool registers quick_message: schema, annotations and handler together.
func (t *tools) quickTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "quick_message", Description: "Queue a message for a team durably and return its messageId at once; fetch the answer later with message_status."}, t.quick)
}

func (t *tools) quick(ctx context.Context, _ *mcp.CallToolRequest, in QuickArgs) (*mcp.CallToolResult, *Reply, error) {
	r, err := t.b.Send(ctx, SendRequest{From: t.from(in.FromTeam), To: in.ToTeam, Text: in.Message, NoWait: true})
	if err != nil {
		return nil, nil, err
	}
	return replyResult(r), r, nil
}

// StatusArgs are message_status's arguments.
type StatusArgs struct {
	MessageID uint64 `json:"messageId" jsonschema:"the id send_message or quick_message returned"`
}

// statusTool registers message_status: schema, annotations and handler together.
func (t *tools) statusTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "message_status", Annotations: readOnly, Description: "What became of a message: queued, running, answered, failed or expired, with the answer or the error."}, t.status)
}

func (t *tools) status(ctx context.Context, _ *mcp.CallToolRequest, in StatusArgs) (*mcp.CallToolResult, *Reply, error) {
	r, err := t.b.Message(ctx, in.MessageID)
	if err != nil {
		return nil, nil, err
	}
	return jsonResult(r), r, nil
}

// listTeamsTool registers list_teams: schema, annotations and handler together.
func (t *tools) listTeamsTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "list_teams", Annotations: readOnly, Description: "Every team: name, description, where it runs (local or the SSH host) and its path."}, t.listTeams)
}

func (t *tools) listTeams(ctx context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, TeamsResult, error) {
	out := TeamsResult{Teams: t.b.TeamsContext(ctx)}
	return jsonResult(out), out, nil
}

// TeamArgs name a team, optionally for another asking team.
type TeamArgs struct {
	Team     string `json:"team,omitempty" jsonschema:"the team"`
	ToTeam   string `json:"toTeam,omitempty" jsonschema:"the team, as send_message names it (either team or toTeam)"`
	FromTeam string `json:"fromTeam,omitempty" jsonschema:"the asking team; default: the caller's team"`
}

// TeamStatusArgs are team_status's arguments.
type TeamStatusArgs struct {
	Team   string `json:"team,omitempty" jsonschema:"the team; omit for every team"`
	ToTeam string `json:"toTeam,omitempty" jsonschema:"the team, as send_message names it (either team or toTeam)"`
	// iris-mcp's arguments, accepted so its clients work unchanged.
	FromTeam             string `json:"fromTeam,omitempty" jsonschema:"the asking team; accepted for iris-mcp clients, every pair is listed"`
	IncludeNotifications *bool  `json:"includeNotifications,omitempty" jsonschema:"accepted for iris-mcp clients; queue counts are always included"`
}

// TeamStatusResult is team_status's structured result.
type TeamStatusResult struct {
	Teams []TeamStatus `json:"teams"`
}

// teamStatusTool registers team_status: schema, annotations and handler together.
func (t *tools) teamStatusTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "team_status", Annotations: readOnly, Description: "Per team: reachable, process state, pid, uptime, sessions, message counts, last used. Omit team for all teams."}, t.teamStatus)
}

func (t *tools) teamStatus(ctx context.Context, _ *mcp.CallToolRequest, in TeamStatusArgs) (*mcp.CallToolResult, TeamStatusResult, error) {
	team, err := t.eitherTeam(in.Team, in.ToTeam, true)
	if err != nil {
		return nil, TeamStatusResult{}, err
	}
	st, err := t.b.Status(ctx, team)
	if err != nil {
		return nil, TeamStatusResult{}, err
	}
	out := TeamStatusResult{Teams: st}
	return jsonResult(out), out, nil
}

// wakeTool registers team_wake and team_launch: schema, annotations and handler together.
func (t *tools) wakeTool(s *mcp.Server) {
	wake := &mcp.Tool{Name: "team_wake", Description: "Start (or keep) the Claude Code process of the fromTeam->team session so the next message answers fast."}
	addTool(s, wake, t.wake)
	launch := *wake
	launch.Name, launch.Description = "team_launch", "Alias of team_wake. "+wake.Description
	addTool(s, &launch, t.wake)
}

func (t *tools) wake(ctx context.Context, _ *mcp.CallToolRequest, in TeamArgs) (*mcp.CallToolResult, *PairStatus, error) {
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, nil, err
	}
	st, err := t.b.Wake(ctx, t.from(in.FromTeam), team)
	if err != nil {
		return nil, nil, err
	}
	return jsonResult(st), st, nil
}

// SleepArgs are team_sleep's arguments.
type SleepArgs struct {
	Team     string `json:"team,omitempty" jsonschema:"the team"`
	ToTeam   string `json:"toTeam,omitempty" jsonschema:"the team, as send_message names it (either team or toTeam)"`
	FromTeam string `json:"fromTeam,omitempty" jsonschema:"the asking team; default: the caller's team"`
	Force    bool   `json:"force,omitempty" jsonschema:"stop it even while it is answering"`
}

// sleepTool registers team_sleep: schema, annotations and handler together.
func (t *tools) sleepTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "team_sleep", Description: "Stop the Claude Code process of the fromTeam->team session; the session is kept. force stops it even mid-answer."}, t.sleep)
}

func (t *tools) sleep(ctx context.Context, _ *mcp.CallToolRequest, in SleepArgs) (*mcp.CallToolResult, SleepResult, error) {
	from := t.from(in.FromTeam)
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, SleepResult{}, err
	}
	stopped, err := t.b.Sleep(ctx, from, team, in.Force)
	if err != nil {
		return nil, SleepResult{}, err
	}
	msg := fmt.Sprintf("stopped the claude process for %s->%s; the session is kept", from, team)
	if !stopped {
		msg = fmt.Sprintf("no claude process was running for %s->%s", from, team)
	}
	out := SleepResult{Stopped: stopped}
	return textResult(msg, out), out, nil
}

// WakeAllArgs are team_wake_all's arguments.
type WakeAllArgs struct {
	FromTeam string `json:"fromTeam,omitempty" jsonschema:"the asking team; default: the caller's team"`
	Parallel bool   `json:"parallel,omitempty" jsonschema:"start them at once, within maxProcesses"`
}

// wakeAllTool registers team_wake_all: schema, annotations and handler together.
func (t *tools) wakeAllTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "team_wake_all", Description: "Wake every team for fromTeam; parallel starts them at once within maxProcesses."}, t.wakeAll)
}

func (t *tools) wakeAll(ctx context.Context, _ *mcp.CallToolRequest, in WakeAllArgs) (*mcp.CallToolResult, WakeAllResult, error) {
	out := WakeAllResult{Results: t.b.WakeAll(ctx, t.from(in.FromTeam), in.Parallel)}
	return jsonResult(out), out, nil
}

// ReportArgs are session_report's arguments.
type ReportArgs struct {
	Team     string `json:"team,omitempty" jsonschema:"the team"`
	ToTeam   string `json:"toTeam,omitempty" jsonschema:"the team, as send_message names it (either team or toTeam)"`
	FromTeam string `json:"fromTeam,omitempty" jsonschema:"the asking team; default: the caller's team"`
	Limit    int    `json:"limit,omitempty" jsonschema:"the last N entries; default all"`
}

// reportTool registers session_report: schema, annotations and handler together.
func (t *tools) reportTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "session_report", Annotations: readOnly, Description: "The conversation of the fromTeam->team session, read from its Claude Code session file (last limit entries)."}, t.report)
}

func (t *tools) report(ctx context.Context, _ *mcp.CallToolRequest, in ReportArgs) (*mcp.CallToolResult, *Report, error) {
	if in.Limit < 0 {
		return nil, nil, fmt.Errorf("limit %d is negative; give a count of entries", in.Limit)
	}
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, nil, err
	}
	r, err := t.b.Report(ctx, t.from(in.FromTeam), team, in.Limit)
	if err != nil {
		return nil, nil, err
	}
	return jsonResult(r), r, nil
}

// cancelTool registers session_cancel: schema, annotations and handler together.
func (t *tools) cancelTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "session_cancel", Description: "Interrupt the answer the team is writing for fromTeam; the process stays up for the next message."}, t.cancel)
}

func (t *tools) cancel(ctx context.Context, _ *mcp.CallToolRequest, in TeamArgs) (*mcp.CallToolResult, CancelResult, error) {
	from := t.from(in.FromTeam)
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, CancelResult{}, err
	}
	id, err := t.b.Cancel(ctx, from, team)
	if err != nil {
		return nil, CancelResult{}, err
	}
	out := CancelResult{MessageID: id}
	return textResult(fmt.Sprintf("interrupted message %d from %s to %s; the process stays up", id, from, team), out), out, nil
}

// rebootTool registers session_reboot: schema, annotations and handler together.
func (t *tools) rebootTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "session_reboot", Description: "Start the fromTeam->team session over: a new session id and a fresh process. The old session file is kept."}, t.reboot)
}

func (t *tools) reboot(ctx context.Context, _ *mcp.CallToolRequest, in TeamArgs) (*mcp.CallToolResult, RebootResult, error) {
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, RebootResult{}, err
	}
	old, fresh, err := t.b.Reboot(ctx, t.from(in.FromTeam), team)
	if err != nil {
		return nil, RebootResult{}, err
	}
	out := RebootResult{OldSessionID: old, SessionID: fresh}
	return jsonResult(out), out, nil
}

// DeleteArgs are session_delete's arguments.
type DeleteArgs struct {
	Team       string `json:"team,omitempty" jsonschema:"the team"`
	ToTeam     string `json:"toTeam,omitempty" jsonschema:"the team, as send_message names it (either team or toTeam)"`
	FromTeam   string `json:"fromTeam,omitempty" jsonschema:"the asking team; default: the caller's team"`
	DeleteFile bool   `json:"deleteFile,omitempty" jsonschema:"also remove the session file on the team's host"`
}

// deleteSessionTool registers session_delete: schema, annotations and handler together.
func (t *tools) deleteSessionTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "session_delete", Annotations: destructive, Description: "Forget the fromTeam->team session; deleteFile also removes its session file."}, t.deleteSession)
}

func (t *tools) deleteSession(ctx context.Context, _ *mcp.CallToolRequest, in DeleteArgs) (*mcp.CallToolResult, DeleteResult, error) {
	from := t.from(in.FromTeam)
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, DeleteResult{}, err
	}
	removed, err := t.b.Delete(ctx, from, team, in.DeleteFile)
	if err != nil {
		return nil, DeleteResult{}, err
	}
	msg := fmt.Sprintf("forgot the session %s->%s", from, team)
	if removed != "" {
		msg += "; removed " + removed
	}
	out := DeleteResult{Deleted: true, RemovedFile: removed}
	return textResult(msg, out), out, nil
}

// forkTool registers session_fork: schema, annotations and handler together.
func (t *tools) forkTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "session_fork", Description: "The shell command that opens the fromTeam->team session interactively as a fork (wrapped in ssh -t for a remote team)."}, t.fork)
}

func (t *tools) fork(ctx context.Context, _ *mcp.CallToolRequest, in TeamArgs) (*mcp.CallToolResult, ForkResult, error) {
	team, err := t.eitherTeam(in.Team, in.ToTeam, false)
	if err != nil {
		return nil, ForkResult{}, err
	}
	cmd, err := t.b.Fork(ctx, t.from(in.FromTeam), team)
	if err != nil {
		return nil, ForkResult{}, err
	}
	out := ForkResult{Command: cmd}
	return textResult(cmd, out), out, nil
}

// LogsArgs are get_logs's arguments.
type LogsArgs struct {
	Since string `json:"since,omitempty" jsonschema:"RFC 3339 time or a duration such as 10m"`
	Level any    `json:"level,omitempty" jsonschema:"the lowest level to return: debug, info, warn or error; default info. A list of levels (iris-mcp) means its lowest"`
	Limit int    `json:"limit,omitempty" jsonschema:"at most this many of the newest records; default 100"`
	// iris-mcp's arguments, accepted so its clients work unchanged.
	LogsSince    *float64 `json:"logs_since,omitempty" jsonschema:"milliseconds since the Unix epoch; records since then (iris-mcp's form of since)"`
	StoreName    string   `json:"storeName,omitempty" jsonschema:"accepted for iris-mcp clients; switchboard has one store of logs"`
	Format       string   `json:"format,omitempty" jsonschema:"raw or parsed; accepted for iris-mcp clients, records are always parsed"`
	GetAllStores bool     `json:"getAllStores,omitempty" jsonschema:"list the log stores instead of records (there is one: switchboard)"`
}

// logsTool registers get_logs: schema, annotations and handler together.
func (t *tools) logsTool(s *mcp.Server) {
	addTool(s, &mcp.Tool{Name: "get_logs", Annotations: readOnly, Description: "Recent broker log records. since: RFC 3339 time or a duration like 10m; level: debug|info|warn|error."}, t.logs)
}

func (t *tools) logs(_ context.Context, _ *mcp.CallToolRequest, in LogsArgs) (*mcp.CallToolResult, LogsResult, error) {
	if t.b.logs == nil {
		return nil, LogsResult{}, errors.New("this broker keeps no logs in memory")
	}
	if in.GetAllStores {
		out := LogsResult{Records: []LogRecord{}, Stores: []string{"switchboard"}}
		return jsonResult(out), out, nil
	}
	var since time.Time
	if in.LogsSince != nil {
		since = time.UnixMilli(int64(*in.LogsSince))
	}
	if in.Since != "" {
		if d, err := time.ParseDuration(in.Since); err == nil {
			since = time.Now().Add(-d)
		} else if ts, err := time.Parse(time.RFC3339, in.Since); err == nil {
			since = ts
		} else {
			return nil, LogsResult{}, fmt.Errorf("since %q is neither an RFC 3339 time nor a duration like 10m", in.Since)
		}
	}
	level, err := logLevelArg(in.Level)
	if err != nil {
		return nil, LogsResult{}, err
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 100
	}
	out := LogsResult{Records: t.b.logs.Records(since, level, limit)}
	return jsonResult(out), out, nil
}

// Structured results of the tools whose result is not a broker type itself;
// the CLI decodes the same types.
type (
	// TeamsResult is list_teams's result.
	TeamsResult struct {
		Teams []TeamInfo `json:"teams"`
	}
	// SleepResult is team_sleep's result.
	SleepResult struct {
		Stopped bool `json:"stopped"`
	}
	// WakeAllResult is team_wake_all's result.
	WakeAllResult struct {
		Results []WakeResult `json:"results"`
	}
	// CancelResult is session_cancel's result: the interrupted message.
	CancelResult struct {
		MessageID uint64 `json:"messageId"`
	}
	// RebootResult is session_reboot's result.
	RebootResult struct {
		OldSessionID string `json:"oldSessionId"`
		SessionID    string `json:"sessionId"`
	}
	// DeleteResult is session_delete's result.
	DeleteResult struct {
		Deleted     bool   `json:"deleted"`
		RemovedFile string `json:"removedFile"`
	}
	// ForkResult is session_fork's result.
	ForkResult struct {
		Command string `json:"command"`
	}
	// LogsResult is get_logs's result.
	LogsResult struct {
		Records []LogRecord `json:"records"`
		// Stores answers getAllStores (iris-mcp).
		Stores []string `json:"stores,omitempty"`
	}
)
