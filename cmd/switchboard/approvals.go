package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/models"
)

// approvalsCommands are the operator's side of grantPermission ask: list
// the tool-permission requests waiting in the daemon, allow or deny one.
func (a *app) approvalsCommands() []*cobra.Command {
	var team string
	list := &cobra.Command{
		Use:   "approvals",
		Short: "List the tool-permission requests waiting for a decision",
		Long: "Tool-permission requests of teams in grantPermission ask mode (and forward when the asker cannot be asked),\n" +
			"waiting in the daemon for `switchboard approve ID` or `switchboard deny ID [REASON]` until settings.permissionTimeout.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.approvals(cmd.Context(), team) },
	}
	list.Flags().StringVar(&team, "team", "", "only this team's requests")
	approve := &cobra.Command{
		Use:   "approve ID",
		Short: "Let a team's Claude use the tool it asked for",
		Args:  args(cobra.ExactArgs(1)),
		RunE:  func(cmd *cobra.Command, argv []string) error { return a.decide(cmd.Context(), argv[0], true, "") },
	}
	deny := &cobra.Command{
		Use:   "deny ID [REASON]",
		Short: "Refuse a team's Claude the tool it asked for; REASON is what its Claude reads",
		Args:  args(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			reason := ""
			if len(argv) == 2 {
				reason = argv[1]
			}
			return a.decide(cmd.Context(), argv[0], false, reason)
		},
	}
	return []*cobra.Command{list, approve, deny}
}

// daemonClient connects to a running daemon; without one nothing waits,
// so it is not started.
func (a *app) daemonClient(ctx context.Context) (*client, bool, error) {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return nil, false, err
	}
	if !daemon.Running(ctx, cfg.Settings.Socket) {
		return nil, false, nil
	}
	c, err := a.connectHere(ctx, cfg, path, false, log)
	return c, err == nil, err
}

func (a *app) approvals(ctx context.Context, team string) error {
	if err := checkTeamName("--team", team); err != nil {
		return err
	}
	c, ok, err := a.daemonClient(ctx)
	if err != nil {
		return err
	}
	if !ok {
		_, err := fmt.Fprintln(a.stdout, "no permission requests are waiting (the daemon is not running)")
		return err
	}
	defer c.Close()
	var out broker.PendingResult
	args := map[string]any{}
	if team != "" {
		args["team"] = team
	}
	if err := c.callJSON(ctx, "permissions_pending", args, &out); err != nil {
		return err
	}
	if len(out.Requests) == 0 {
		_, err := fmt.Fprintln(a.stdout, "no permission requests are waiting")
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTEAM\tASKED-BY\tTOOL\tWAITING\tMESSAGE\tINPUT")
	for _, r := range out.Requests {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.To, r.From, r.Tool, time.Since(r.Created).Round(time.Second), r.MessageID, clip(oneLine(r.Input), 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, "\ndecide with: switchboard approve ID | switchboard deny ID [REASON]")
	return err
}

func (a *app) decide(ctx context.Context, idText string, allow bool, reason string) error {
	id, err := strconv.ParseUint(idText, 10, 64)
	if err != nil || id == 0 {
		return usageError{fmt.Errorf("%q is not a permission request id; list them with: switchboard approvals", idText)}
	}
	c, ok, err := a.daemonClient(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("the daemon is not running, so no permission request %d is waiting", id)
	}
	defer c.Close()
	args := map[string]any{"requestId": id, "allow": allow}
	if strings.TrimSpace(reason) != "" {
		args["reason"] = reason
	}
	res, err := c.call(ctx, &mcp.CallToolParams{Name: "permissions_decide", Arguments: args})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, resultText(res))
	return err
}

// permissionLines prints the permission requests of msgs (sessions show).
func (a *app) permissionLines(ctx context.Context, store *models.Store, msgs []models.Message) error {
	var rows []models.PermissionRequest
	for _, m := range msgs {
		ps, err := store.PermissionsForMessage(ctx, m.ID)
		if err != nil {
			return err
		}
		rows = append(rows, ps...)
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout, "\npermission requests:")
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMESSAGE\tTOOL\tMODE\tSTATUS\tBY\tLATENCY\tINPUT\tREASON")
	for _, r := range rows {
		latency := "-"
		if r.DecidedAt != nil {
			latency = r.DecidedAt.Sub(r.CreatedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.MessageID, r.Tool, r.Mode, r.Status, orDash(r.DecidedBy), latency, clip(oneLine(r.Input), 50), clip(oneLine(r.Reason), 60))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
