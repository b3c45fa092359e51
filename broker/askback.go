package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/models"
)

// Operator is the caller identity of the CLI and of a proxy outside every
// team's directory: a person, not a team's Claude.
const Operator = "user"

// askBackHost is what a Host offers when its team's Claude can reach
// switchboard's tools (package hosts implements it).
type askBackHost interface {
	// MCPEndpoint returns the URL on the team's host at which the handler
	// the wiring got from Options.ServeSessions answers, and a directory on
	// that host, private to its user, for files carrying credentials. An
	// error says why the team cannot ask back; the team still answers.
	MCPEndpoint(ctx context.Context) (url, dir string, err error)
}

// credential is the session credential of one Claude process the broker
// started: whoever presents its token acts as the process's team, asking on
// behalf of the message the process is answering.
type credential struct {
	token string
	id    string // names the credential in logs and MCP sessions; not secret
	p     *pair  // the process's pair: its toTeam is the credential's team
	file  string // the mcp-config file on the team's host
	host  Host
}

func (c *credential) team() string { return c.p.key.to }

// answering is the message the credential's process is answering now, 0
// when it is idle.
func (c *credential) answering() uint64 {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return c.p.current
}

// askBack holds the live credentials and why teams cannot ask back.
type askBack struct {
	mu      sync.Mutex
	byToken map[string]*credential
	byID    map[string]*credential
	byProc  map[*claude]*credential
	why     map[string]string // team -> why asking back is unavailable
	bound   sync.WaitGroup    // credentials bound to a process and not yet revoked
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// issueCredential mints a credential for the Claude process about to start
// for p and writes the mcp-config that carries it to a 0600 file on the
// team's host (the token never appears on a command line, which other users
// can read). It returns the flags that give Claude switchboard's tools, or
// none when the team cannot ask back (the reason is kept for team_status).
func (b *Broker) issueCredential(ctx context.Context, p *pair, host Host) (*credential, []string) {
	ab, ok := host.(askBackHost)
	if !ok || b.serveSessions == nil {
		return nil, nil
	}
	// A host slow to forward or write must not hold the answer up longer
	// than a start may take.
	ctx, cancel := context.WithTimeout(ctx, b.config().Settings.SpawnTimeout.Duration)
	defer cancel()
	url, dir, err := ab.MCPEndpoint(ctx)
	if err != nil {
		b.noAskBack(p.team.Name, err)
		return nil, nil
	}
	c := &credential{token: randomHex(32), id: randomHex(8), p: p, host: host}
	c.file = path.Join(dir, "mcp-"+c.id+".json")
	cfg, _ := json.Marshal(map[string]any{"mcpServers": map[string]any{
		"switchboard": map[string]any{"type": "http", "url": url, "headers": map[string]string{"Authorization": "Bearer " + c.token}},
	}})
	if err := host.Files().WriteFile(ctx, c.file, cfg); err != nil {
		b.noAskBack(p.team.Name, fmt.Errorf("write %s on %s: %w", c.file, host.Where(), err))
		return nil, nil
	}
	b.asks.mu.Lock()
	if b.asks.byToken == nil {
		b.asks.byToken, b.asks.byID, b.asks.byProc = map[string]*credential{}, map[string]*credential{}, map[*claude]*credential{}
	}
	b.asks.byToken[c.token], b.asks.byID[c.id] = c, c
	delete(b.asks.why, p.team.Name)
	b.asks.mu.Unlock()
	return c, []string{"--mcp-config", c.file}
}

func (b *Broker) noAskBack(team string, err error) {
	b.asks.mu.Lock()
	if b.asks.why == nil {
		b.asks.why = map[string]string{}
	}
	first := b.asks.why[team] == ""
	b.asks.why[team] = err.Error()
	b.asks.mu.Unlock()
	if first {
		b.log.Warn("team cannot ask other teams; it still answers", "team", team, "err", err)
	}
}

// bindCredential ties c to the process it was issued for, so that it dies
// with it (revokeFor).
func (b *Broker) bindCredential(cl *claude, c *credential) {
	if c == nil {
		return
	}
	b.asks.bound.Add(1)
	b.asks.mu.Lock()
	b.asks.byProc[cl] = c
	b.asks.mu.Unlock()
}

// revokeFor ends the credential of a process that exited.
func (b *Broker) revokeFor(cl *claude) {
	b.asks.mu.Lock()
	c, ok := b.asks.byProc[cl]
	delete(b.asks.byProc, cl)
	b.asks.mu.Unlock()
	if ok {
		defer b.asks.bound.Done()
		b.revoke(c)
	}
}

// revoke makes c's token worthless at once and removes its file.
func (b *Broker) revoke(c *credential) {
	if c == nil {
		return
	}
	b.asks.mu.Lock()
	delete(b.asks.byToken, c.token)
	delete(b.asks.byID, c.id)
	b.asks.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.host.Files().Remove(ctx, c.file); err != nil {
		b.log.Warn("remove a session credential file", "file", c.file, "where", c.host.Where(), "err", err)
	}
}

// SessionHandler serves switchboard's MCP tools over streamable HTTP to the
// Claude processes the broker started, each as its own team: a request
// must carry `Authorization: Bearer <token>` with the token of a process
// that is still running, or it gets 401. An MCP session stays bound to the
// token that opened it.
func (b *Broker) SessionHandler() http.Handler {
	verify := func(_ context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		b.asks.mu.Lock()
		c := b.asks.byToken[token]
		b.asks.mu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("%w: not the credential of a running switchboard session", auth.ErrInvalidToken)
		}
		return &auth.TokenInfo{UserID: c.id}, nil
	}
	h := mcp.NewStreamableHTTPHandler(func(r *http.Request) *mcp.Server {
		ti := auth.TokenInfoFromContext(r.Context())
		if ti == nil {
			return nil
		}
		b.asks.mu.Lock()
		c := b.asks.byID[ti.UserID]
		b.asks.mu.Unlock()
		if c == nil {
			return nil
		}
		return newMCPServer(b, c.team(), c)
	}, &mcp.StreamableHTTPOptions{Logger: b.log})
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
}

type credKey struct{}

// askingFor returns the credential of the Claude process a tool call came
// from, nil for callers outside any session (the socket, the CLI).
func askingFor(ctx context.Context) *credential {
	c, _ := ctx.Value(credKey{}).(*credential)
	return c
}

// identity is the MCP middleware that fixes who a caller is: fromTeam may
// only name the connection's own team, a team that is not configured (other
// than the operator) gets nothing, and calls from a Claude process carry its
// credential (for the ask chain) and stop working when it is revoked.
func identity(b *Broker, caller string, cred *credential) mcp.Middleware {
	return func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			call, ok := req.(*mcp.CallToolRequest)
			if !ok {
				return next(ctx, method, req)
			}
			if err := b.checkCaller(caller, cred, call); err != nil {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: err.Error()}}}, nil
			}
			if cred != nil {
				ctx = context.WithValue(ctx, credKey{}, cred)
			}
			return next(ctx, method, req)
		}
	}
}

func (b *Broker) checkCaller(caller string, cred *credential, call *mcp.CallToolRequest) error {
	how := "set by how this client connected: --as, the working directory or the CLI's --from"
	if cred != nil {
		how = "set by the session credential switchboard gave this Claude process"
		b.asks.mu.Lock()
		live := b.asks.byID[cred.id] == cred
		b.asks.mu.Unlock()
		if !live {
			return errors.New("this session's credential has ended with its process")
		}
	}
	if caller != Operator {
		if _, ok := b.config().Team(caller); !ok {
			return fmt.Errorf("this connection's team %q is not configured, so it may not use switchboard; teams are: %s", clip(caller, 64), strings.Join(b.config().TeamNames(), ", "))
		}
	}
	if call.Params == nil || len(call.Params.Arguments) == 0 {
		return nil
	}
	var args struct {
		FromTeam *string `json:"fromTeam"`
	}
	if json.Unmarshal(call.Params.Arguments, &args) != nil || args.FromTeam == nil || *args.FromTeam == "" || *args.FromTeam == caller {
		return nil
	}
	return fmt.Errorf("fromTeam %q is not this caller's team: this connection acts as %q (%s); omit fromTeam or pass %q", clip(*args.FromTeam, 64), caller, how, caller)
}

// chainFor works out the ask chain of a new message from `from` to `to`
// and refuses one that would loop back to a waiting team or pass
// settings.maxAskDepth. A message asked while answering another (the
// caller's credential names it) extends that message's chain.
func (b *Broker) chainFor(ctx context.Context, from, to string) (parent uint64, chain string, err error) {
	c := askingFor(ctx)
	if c != nil {
		parent = c.answering()
	}
	if parent == 0 {
		return 0, from, nil
	}
	pm, err := b.store.MessageByID(ctx, parent)
	if err != nil {
		return 0, "", fmt.Errorf("read message %d, which this ask answers for: %w", parent, err)
	}
	waiting := chainTeams(pm.Chain)
	if len(waiting) == 0 {
		waiting = []string{pm.FromTeam}
	}
	waiting = append(waiting, pm.ToTeam)
	chain = strings.Join(waiting, chainSep)
	for _, t := range waiting {
		if t == to {
			return 0, "", fmt.Errorf("refused: team %s is already waiting in this ask chain (%s → %s would loop); answer from what you know, or say in your answer what %s should find out", to, chain, to, to)
		}
	}
	if depth, limit := len(waiting), b.config().Settings.MaxAskDepth; depth > limit {
		return 0, "", fmt.Errorf("refused: the ask chain %s → %s would be %d asks deep, past settings.maxAskDepth %d; answer from what you know", chain, to, depth, limit)
	}
	return parent, chain, nil
}

const chainSep = " → "

func chainTeams(chain string) []string {
	if chain == "" {
		return nil
	}
	return strings.Split(chain, chainSep)
}

// chainNote is what the answering Claude's header adds after the marker:
// who is waiting for its answer, when more than the asker is.
func chainNote(m *models.Message) string {
	if m.ParentID == 0 || m.Chain == "" {
		return ""
	}
	return fmt.Sprintf(" [ask chain: %s → %s (you); every team before you is waiting for this answer]", m.Chain, m.ToTeam)
}

// askBackStatus says whether team t's Claude can ask other teams, trying
// its host's endpoint (which a remote team's next Claude will reuse).
func (b *Broker) askBackStatus(ctx context.Context, t *configs.Team) string {
	if b.serveSessions == nil {
		return ""
	}
	h, err := b.hosts.For(t)
	if err != nil {
		return "unavailable: " + err.Error()
	}
	ab, ok := h.(askBackHost)
	if !ok {
		return "unavailable: its host cannot serve switchboard's tools"
	}
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, _, err := ab.MCPEndpoint(ectx); err != nil {
		b.noAskBack(t.Name, err)
		return "unavailable: " + err.Error()
	}
	b.asks.mu.Lock()
	delete(b.asks.why, t.Name)
	b.asks.mu.Unlock()
	return "available"
}
