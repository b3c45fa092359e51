package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/switchboard-mcp/switchboard/configs"
	"github.com/switchboard-mcp/switchboard/daemon"
	"github.com/switchboard-mcp/switchboard/models"
)

// reclaimFleetName takes this daemon's fleet name back from an earlier
// daemon on this host that died without stopping (SIGKILL, a crash, a power
// cut): its record still looks alive until its heartbeat is leaseTTL old, and
// the store would refuse the name for that long, so the first command after
// a crash, which starts the daemon again, would fail. The earlier daemon is
// known dead when it served this same config file (this daemon holds that
// config's socket lock, which a live one would hold) or when its pid is gone.
// Marking it stopped releases its leases; this daemon takes its pairs again
// as it delivers. A live holder of the name, anywhere, is left alone: the
// broker then refuses to start and says who holds it.
func reclaimFleetName(ctx context.Context, store *models.Store, cfg *configs.Config, configFile string, log *slog.Logger) error {
	name, ttl := cfg.Settings.Fleet.Name, cfg.Settings.Fleet.LeaseTTL.Duration
	if !store.Shared() || name == "" {
		return nil
	}
	host, err := os.Hostname()
	if err != nil {
		return nil // the broker's own registration reports a clash, if any
	}
	recs, err := store.Brokers(ctx)
	if err != nil {
		return fmt.Errorf("read the fleet's brokers from the shared store: %w", err)
	}
	now := time.Now()
	for _, r := range recs {
		if r.Name != name || r.Host != host || r.PID == os.Getpid() || !r.Alive(now, ttl) {
			continue
		}
		if r.ConfigFile != configFile && daemon.ProcessAlive(r.PID) {
			return nil
		}
		log.Info("taking this broker's fleet name back from a daemon on this host that stopped without saying so",
			"broker", name, "pid", r.PID, "config", r.ConfigFile)
		if err := store.StopBroker(ctx, name, now); err != nil {
			return fmt.Errorf("take fleet name %q back from the dead daemon (pid %d) in the shared store: %w", name, r.PID, err)
		}
	}
	return nil
}
