// Command switchboard lets Claude Code sessions in different project
// directories ask each other questions through one broker daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// usageError marks bad usage, which exits 2.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitError carries an exit status whose message has already been printed
// (doctor's failed checks).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// app holds the global flags and the streams every command writes to.
type app struct {
	configFlag string
	logFormat  string
	logLevel   string

	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// ran is set once flags and arguments were accepted; an error before
	// that is bad usage.
	ran bool
}

// run executes the command line and returns the exit status: 0 success,
// 1 failure (one line on stderr), 2 bad usage.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	version = buildVersion()
	broker.Version = version
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) || !a.ran {
		help := "switchboard"
		if cmd != nil {
			help = cmd.CommandPath()
		}
		fmt.Fprintf(stderr, "switchboard: %v (see %s --help)\n", err, help)
		return 2
	}
	fmt.Fprintf(stderr, "switchboard: %v\n", err)
	return 1
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "switchboard",
		Short: "Let Claude Code sessions in different projects ask each other questions",
		Long: "switchboard is a broker that lets Claude Code instances in different project directories (teams),\n" +
			"on this machine or over SSH, ask each other questions through MCP tools.\n" +
			"Register it with Claude Code once (switchboard install); Claude Code then runs `switchboard mcp`.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			switch a.logFormat {
			case "text", "json":
			default:
				return usageError{fmt.Errorf("--log-format %q: use text or json", a.logFormat)}
			}
			if a.logLevel != "" {
				var l slog.Level
				if err := l.UnmarshalText([]byte(a.logLevel)); err != nil {
					return usageError{fmt.Errorf("--log-level %q: use debug, info, warn or error", a.logLevel)}
				}
			}
			return nil
		},
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFlag, "config", "", "config file (default: $SWITCHBOARD_CONFIG, ./switchboard.yaml, ~/.switchboard/config.yaml)")
	pf.StringVar(&a.logFormat, "log-format", "text", "log format on stderr: text or json")
	pf.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn or error (default: the config's logLevel for serve, warn otherwise)")
	root.AddCommand(
		a.serveCommand(),
		a.mcpCommand(),
		a.askCommand(),
		a.teamsCommand(),
		a.sessionsCommand(),
		a.doctorCommand(),
		a.installCommand(),
		a.versionCommand(),
		a.stopCommand(),
		a.restartCommand(),
		a.statusCommand(),
		a.initCommand(),
		a.dashboardCommand(),
	)
	root.AddCommand(a.approvalsCommands()...)
	return root
}

// args wraps a cobra argument check so its failure is bad usage.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// loadConfig finds and loads the config; the path is absolute so a daemon
// started from here finds the same file.
func (a *app) loadConfig() (*configs.Config, string, error) {
	path, err := configs.Discover(a.configFlag)
	if err != nil {
		return nil, "", err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	cfg, err := configs.Load(path)
	if err != nil {
		return nil, "", err
	}
	// configs returns warnings rather than logging them, so they come out
	// in the same format as every other line.
	log := a.logger(cfg.Settings.Level())
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "file", w.File, "line", w.Line, "key", w.Key, "reason", w.Msg)
	}
	return cfg, path, nil
}

// logger logs to stderr in the chosen format; def is the level when
// --log-level is not given.
func (a *app) logger(def slog.Level) *slog.Logger {
	return slog.New(a.handler(def))
}

func (a *app) handler(def slog.Level) slog.Handler {
	level := def
	if a.logLevel != "" {
		_ = level.UnmarshalText([]byte(a.logLevel))
	}
	opts := &slog.HandlerOptions{Level: level}
	if a.logFormat == "json" {
		return slog.NewJSONHandler(a.stderr, opts)
	}
	return slog.NewTextHandler(a.stderr, opts)
}

// oneLine keeps a multi-line tool error to the single line the CLI prints.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
