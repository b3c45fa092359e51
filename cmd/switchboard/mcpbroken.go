package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
)

// serveConfigError is `switchboard mcp` when the config cannot be loaded. It
// still starts and speaks MCP, so Claude Code shows the server connected
// (not "Failed to connect", with the reason hidden in a log) and every tool
// call answers with the config's problems at file:line and how to fix them:
// the model, and the user reading along, see them where they work.
func (a *app) serveConfigError(ctx context.Context, loadErr error) error {
	log := a.logger(slog.LevelWarn)
	log.Error("config error: answering every tool call with it", "err", loadErr)
	srv := broker.NewMCPServer(nil, "")
	srv.AddReceivingMiddleware(func(next mcp.MethodHandler) mcp.MethodHandler {
		return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
			if method == "tools/call" {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: a.configErrorText()}}}, nil
			}
			return next(ctx, method, req)
		}
	})
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := srv.Run(ctx, &mcp.IOTransport{Reader: io.NopCloser(a.stdin), Writer: nopWriteCloser{a.stdout}})
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// configErrorText loads the config again (the user may have fixed it since
// this server started) and says what is wrong and what to do.
func (a *app) configErrorText() string {
	path, err := configs.Discover(a.configFlag)
	if err == nil {
		_, err = configs.Load(path)
	}
	if err == nil {
		return fmt.Sprintf("The switchboard config %s was broken when this MCP server started and is fixed now: "+
			"reconnect the switchboard MCP server (in Claude Code: /mcp, then reconnect switchboard) to use it.", path)
	}
	var b strings.Builder
	b.WriteString("The switchboard config cannot be loaded, so no team can be asked until it is fixed:\n")
	var ce *configs.Error
	if errors.As(err, &ce) {
		for _, p := range ce.Problems {
			b.WriteString("- " + p.String() + "\n")
		}
	} else {
		b.WriteString("- " + err.Error() + "\n")
	}
	b.WriteString("Fix the file (each line above names file:line and what to write), check it with `switchboard doctor`, " +
		"then reconnect the switchboard MCP server (in Claude Code: /mcp).")
	return b.String()
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
