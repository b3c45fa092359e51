package main

import (
	"context"
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/models"
)

func (a *app) teamsCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "teams",
		Short: "List the teams and their status",
		Long:  "List every configured team with where it runs, its path, its Claude process state and its session count, as the daemon sees them (starting the daemon when needed).",
		Args:  args(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return a.teams(cmd.Context()) },
	}
}

func (a *app) teams(ctx context.Context) error {
	log := a.logger(slog.LevelWarn)
	cfg, path, err := a.loadConfig()
	if err != nil {
		return err
	}
	c, err := a.connectHere(ctx, cfg, path, true, log)
	if err != nil {
		return err
	}
	defer c.Close()
	var out broker.TeamStatusResult
	if err := c.callJSON(ctx, "team_status", map[string]any{}, &out); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tWHERE\tPATH\tSTATE\tSESSIONS")
	var problems []string
	for _, t := range out.Teams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", t.Name, t.Where, t.Path, teamState(t), t.SessionCount)
		if t.Problem != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", t.Name, t.Problem))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(problems) > 0 {
		fmt.Fprintln(a.stdout)
		for _, p := range problems {
			fmt.Fprintln(a.stdout, p)
		}
	}
	return nil
}

// teamState sums up a team's processes: the busiest state of any session,
// or unreachable.
func teamState(t broker.TeamStatus) string {
	if !t.Reachable {
		return "unreachable"
	}
	if len(t.Waiting) > 0 {
		return broker.WaitingForPermission
	}
	rank := map[models.ProcessState]int{models.ProcessStopped: 0, models.ProcessIdle: 1, models.ProcessStarting: 2, models.ProcessBusy: 3, models.ProcessError: 4}
	state := models.ProcessStopped
	for _, s := range t.Sessions {
		if rank[s.State] > rank[state] {
			state = s.State
		}
	}
	return string(state)
}
