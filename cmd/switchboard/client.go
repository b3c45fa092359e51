package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
)

// daemonLogName is the daemon's log file, next to its socket, when a client
// starts it in the background.
const daemonLogName = "daemon.log"

// starter returns a daemon.StartFunc that runs this binary's `serve` for
// configPath, detached from the caller (its own session, stdin /dev/null,
// output to daemon.log next to the socket), so it outlives the proxy or CLI
// command that started it.
func (a *app) starter(cfg *configs.Config, configPath string) daemon.StartFunc {
	return func(context.Context) (<-chan error, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this program to start the daemon: %w", err)
		}
		dir := filepath.Dir(cfg.Settings.Socket)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create the daemon socket directory: %w", err)
		}
		logPath := filepath.Join(dir, daemonLogName)
		if err := rotateLog(logPath, maxDaemonLog); err != nil {
			return nil, fmt.Errorf("rotate the daemon log: %w", err)
		}
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open the daemon log: %w", err)
		}
		defer logf.Close()
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, err
		}
		defer null.Close()
		argv := []string{"serve", "--config", configPath, "--log-format", a.logFormat}
		if a.logLevel != "" {
			argv = append(argv, "--log-level", a.logLevel)
		}
		// Not CommandContext: the daemon must survive whoever started it.
		cmd := exec.Command(exe, argv...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = null, logf, logf
		cmd.Dir = "/" // pin no project directory
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start %s serve: %w", exe, err)
		}
		exited := make(chan error, 1)
		go func() {
			err := cmd.Wait()
			if last := lastLine(logPath); last != "" {
				err = fmt.Errorf("%s (log: %s)", last, logPath)
			} else if err == nil {
				err = fmt.Errorf("it exited without an error (log: %s)", logPath)
			}
			exited <- err
		}()
		return exited, nil
	}
}

// maxDaemonLog is the size past which a starting daemon's log is rotated.
const maxDaemonLog = 10 << 20

// rotateLog moves path to path.1 (replacing an older one) once it is larger
// than max, so a daemon restarted now and then keeps at most two logs.
func rotateLog(path string, max int64) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Size() <= max) {
		return nil
	}
	if err != nil {
		return err
	}
	return os.Rename(path, path+".1")
}

// lastLine is the last non-empty line of a file, trimmed of the "switchboard: "
// prefix the daemon's failure line has.
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	last := strings.TrimSpace(string(lines[len(lines)-1]))
	return strings.TrimPrefix(last, "switchboard: ")
}

// callerFor is the default fromTeam: as when given, else the local team
// whose path holds dir (the deepest), else "user".
func callerFor(cfg *configs.Config, as, dir string) string {
	if as != "" {
		return as
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	best, bestLen := "user", -1
	for _, name := range cfg.TeamNames() {
		t, _ := cfg.Team(name)
		if t.IsRemote() || t.Path == "" {
			continue
		}
		p := t.Path
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		if within(dir, p) && len(p) > bestLen {
			best, bestLen = name, len(p)
		}
	}
	return best
}

func within(dir, root string) bool {
	rel, err := filepath.Rel(root, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// checkTeamName refuses a malformed --as or --from as bad usage.
func checkTeamName(flag, name string) error {
	if name == "" {
		return nil
	}
	if err := configs.ValidTeamName(name); err != nil {
		return usageError{fmt.Errorf("%s %q: %w", flag, name, err)}
	}
	return nil
}

// client is an MCP session with the daemon, for the CLI commands.
type client struct {
	sess *mcp.ClientSession
	// daemon is what the daemon said about itself on connecting.
	daemon daemon.Welcome
}

// connect opens an MCP session with the daemon as caller, starting the
// daemon when start is set and none runs.
func (a *app) connect(ctx context.Context, cfg *configs.Config, configPath, caller string, start bool, opts *mcp.ClientOptions, log *slog.Logger) (*client, error) {
	co := daemon.ConnectOptions{Socket: cfg.Settings.Socket, Caller: caller, Version: version, Config: configPath, Logger: log}
	if start {
		co.Start = a.starter(cfg, configPath)
	}
	conn, err := daemon.Connect(ctx, co)
	if err != nil {
		return nil, err
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "switchboard-cli", Version: version}, opts)
	sess, err := c.Connect(ctx, &mcp.IOTransport{Reader: conn, Writer: conn}, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("start an MCP session with the daemon: %w", err)
	}
	return &client{sess: sess, daemon: conn.Daemon}, nil
}

// connectHere connects as the team whose path holds the working directory
// (or the operator), as a terminal command run there speaks for.
func (a *app) connectHere(ctx context.Context, cfg *configs.Config, configPath string, start bool, log *slog.Logger) (*client, error) {
	wd, _ := os.Getwd()
	return a.connect(ctx, cfg, configPath, callerFor(cfg, "", wd), start, nil, log)
}

func (c *client) Close() error { return c.sess.Close() }

// call runs a tool; a tool error comes back as an error with its text.
func (c *client) call(ctx context.Context, params *mcp.CallToolParams) (*mcp.CallToolResult, error) {
	res, err := c.sess.CallTool(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", params.Name, err)
	}
	if res.IsError {
		return nil, errors.New(oneLine(resultText(res)))
	}
	return res, nil
}

// callJSON runs a tool and decodes its JSON text into out.
func (c *client) callJSON(ctx context.Context, name string, args map[string]any, out any) error {
	res, err := c.call(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(resultText(res)), out); err != nil {
		return fmt.Errorf("%s: unexpected answer from the daemon: %w", name, err)
	}
	return nil
}

func resultText(res *mcp.CallToolResult) string {
	var sb strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(*mcp.TextContent); ok {
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(t.Text)
		}
	}
	return sb.String()
}
