package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

func (a *app) installCommand() *cobra.Command {
	var (
		scope  string
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "install [--scope user|project] [--dry-run]",
		Short: "Register `switchboard mcp` with Claude Code",
		Long: "Register `switchboard mcp` as the MCP server \"switchboard\" of Claude Code: through `claude mcp add` when the\n" +
			"claude CLI is on PATH, else by writing the documented config (user scope: ~/.claude.json, project scope:\n" +
			"./.mcp.json), keeping everything else in the file. Running it again changes nothing. --config, when given,\n" +
			"is registered too.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scope != "user" && scope != "project" {
				return usageError{fmt.Errorf("--scope %q: use user or project", scope)}
			}
			return a.install(cmd.Context(), scope, dryRun)
		},
	}
	cmd.Flags().StringVar(&scope, "scope", "user", "where to register: user (every project) or project (./.mcp.json)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be done and change nothing")
	return cmd
}

// mcpServer is a stdio server entry as Claude Code writes it.
type mcpServer struct {
	Type    string            `json:"type"`
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
}

func (a *app) install(ctx context.Context, scope string, dryRun bool) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this program: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	entry := mcpServer{Type: "stdio", Command: exe, Args: []string{"mcp"}, Env: map[string]string{}}
	if a.configFlag != "" {
		cfg, err := filepath.Abs(a.configFlag)
		if err != nil {
			return err
		}
		entry.Args = append(entry.Args, "--config", cfg)
	}
	file, err := claudeConfigFile(scope)
	if err != nil {
		return err
	}
	current, err := readServer(file)
	if err != nil {
		return err
	}
	if current != nil && sameServer(*current, entry) {
		_, err := fmt.Fprintf(a.stdout, "switchboard is already registered with Claude Code (%s scope, %s): %s\n", scope, file, commandLine(entry))
		return err
	}

	if claude, err := exec.LookPath("claude"); err == nil {
		// `claude mcp get` would launch the server to test it, so the file
		// read above decides; remove first so a changed entry is replaced.
		add := append([]string{"mcp", "add", "--scope", scope, "switchboard", "--", entry.Command}, entry.Args...)
		if dryRun {
			if current != nil {
				fmt.Fprintf(a.stdout, "would run: %s mcp remove --scope %s switchboard\n", claude, scope)
			}
			_, err := fmt.Fprintf(a.stdout, "would run: %s %s\n", claude, strings.Join(add, " "))
			return err
		}
		if current != nil {
			if out, err := exec.CommandContext(ctx, claude, "mcp", "remove", "--scope", scope, "switchboard").CombinedOutput(); err != nil {
				return fmt.Errorf("claude mcp remove: %v: %s", err, oneLine(string(out)))
			}
		}
		cmd := exec.CommandContext(ctx, claude, add...)
		if scope == "project" {
			cmd.Dir, _ = os.Getwd()
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("claude mcp add: %v: %s", err, oneLine(string(out)))
		}
		_, err = fmt.Fprintf(a.stdout, "registered switchboard with Claude Code (%s scope) through %s: %s\n", scope, claude, commandLine(entry))
		return err
	}

	if dryRun {
		b, _ := json.Marshal(entry)
		_, err := fmt.Fprintf(a.stdout, "would write %s: mcpServers.switchboard = %s (the claude CLI is not on PATH)\n", file, b)
		return err
	}
	if err := writeServer(file, entry); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "registered switchboard with Claude Code (%s scope) in %s: %s\n", scope, file, commandLine(entry))
	return err
}

// claudeConfigFile is where Claude Code keeps MCP servers of a scope.
func claudeConfigFile(scope string) (string, error) {
	if scope == "project" {
		wd, err := os.Getwd()
		if err != nil {
			return "", err
		}
		return filepath.Join(wd, ".mcp.json"), nil
	}
	if dir := os.Getenv("CLAUDE_CONFIG_DIR"); dir != "" {
		return filepath.Join(dir, ".claude.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory for ~/.claude.json: %w", err)
	}
	return filepath.Join(home, ".claude.json"), nil
}

func readConfigFile(file string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(bytes.TrimSpace(data)) == 0) {
		return map[string]json.RawMessage{}, nil
	}
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s is not a JSON object (%v); fix or move it, then run install again", file, err)
	}
	if doc == nil {
		doc = map[string]json.RawMessage{}
	}
	return doc, nil
}

func readServer(file string) (*mcpServer, error) {
	doc, err := readConfigFile(file)
	if err != nil {
		return nil, err
	}
	var servers map[string]json.RawMessage
	if raw, ok := doc["mcpServers"]; ok {
		if err := json.Unmarshal(raw, &servers); err != nil {
			return nil, fmt.Errorf("%s: mcpServers is not an object: %v", file, err)
		}
	}
	raw, ok := servers["switchboard"]
	if !ok {
		return nil, nil
	}
	var s mcpServer
	if err := json.Unmarshal(raw, &s); err != nil {
		// Something else by that name: it gets replaced.
		return &mcpServer{}, nil
	}
	return &s, nil
}

func sameServer(a, b mcpServer) bool {
	return (a.Type == b.Type || a.Type == "") && a.Command == b.Command && strings.Join(a.Args, "\x00") == strings.Join(b.Args, "\x00")
}

// writeServer sets mcpServers.switchboard in file, keeping every other key,
// and replaces the file atomically with its mode kept (0600 when new).
func writeServer(file string, entry mcpServer) error {
	doc, err := readConfigFile(file)
	if err != nil {
		return err
	}
	servers := map[string]json.RawMessage{}
	if raw, ok := doc["mcpServers"]; ok {
		if err := json.Unmarshal(raw, &servers); err != nil || servers == nil {
			return fmt.Errorf("%s: mcpServers is not an object; fix it, then run install again", file)
		}
	}
	if servers["switchboard"], err = json.Marshal(entry); err != nil {
		return err
	}
	if doc["mcpServers"], err = json.Marshal(servers); err != nil {
		return err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	mode := fs.FileMode(0o600)
	if fi, err := os.Stat(file); err == nil {
		mode = fi.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".switchboard-install-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(out, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

func commandLine(s mcpServer) string {
	return strings.Join(append([]string{s.Command}, s.Args...), " ")
}
