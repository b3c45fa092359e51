package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/switchboard-mcp/switchboard/broker"
	"github.com/switchboard-mcp/switchboard/configs"
)

// reloadSettle is how long the watcher waits after the last change to the
// config file before reading it: editors write in several steps.
const reloadSettle = 150 * time.Millisecond

// followConfig reloads the broker's config when the file at path changes and
// on SIGHUP, until ctx ends. It watches the file's directory, not the file:
// editors that save by writing a new file and renaming it over the old one
// would otherwise leave the watch on a file that no longer exists.
func followConfig(ctx context.Context, path string, b *broker.Broker, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(filepath.Dir(path))
	}
	if err != nil {
		log.Warn("cannot watch the config file; reload with SIGHUP (switchboard restart applies it too)", "config", path, "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}

	base := filepath.Base(path)
	var settle *time.Timer
	var due <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the config", "config", path)
			reloadConfig(path, b, log)
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if filepath.Base(ev.Name) != base || ev.Op == fsnotify.Chmod {
				continue
			}
			if settle == nil {
				settle = time.NewTimer(reloadSettle)
			} else {
				settle.Reset(reloadSettle)
			}
			due = settle.C
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			log.Warn("watching the config file", "config", path, "err", err)
		case <-due:
			due = nil
			if _, err := os.Stat(path); err != nil {
				// Mid-rename, or deleted: the next event brings it back.
				log.Debug("config file not there to reload", "config", path, "err", err)
				continue
			}
			reloadConfig(path, b, log)
		}
	}
}

// reloadConfig loads path and applies it; a config with problems is not
// applied, and each problem is logged at its file:line.
func reloadConfig(path string, b *broker.Broker, log *slog.Logger) {
	cfg, err := configs.Load(path)
	if err != nil {
		var ce *configs.Error
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				log.Error("config not reloaded: keeping the running one", "problem", p.String())
			}
		} else {
			log.Error("config not reloaded: keeping the running one", "config", path, "err", err)
		}
		return
	}
	for _, w := range cfg.Warnings {
		log.Warn("config warning", "file", w.File, "line", w.Line, "key", w.Key, "reason", w.Msg)
	}
	res, err := b.Reload(cfg)
	if err != nil {
		log.Error("config not reloaded", "config", path, "err", err)
		return
	}
	if res.Empty() {
		log.Info("config reloaded: no change", "config", path)
		return
	}
	log.Info("config reloaded", "config", path,
		"added", strings.Join(res.Added, ","), "removed", strings.Join(res.Removed, ","), "changed", strings.Join(res.Changed, ","))
	if len(res.NeedRestart) > 0 {
		log.Warn("these settings changed but apply only after `switchboard restart`", "settings", strings.Join(res.NeedRestart, ","))
	}
}
