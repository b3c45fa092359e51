package main

import (
	"context"
	"time"
)

// basePath is the full product path of a baseline switchboard binary (the
// -baseline flag): its own daemon, config and store, and a `switchboard mcp`
// proxy of that binary, so that the warm phases can ask the two builds
// interleaved in one run and the difference is the change, not the load.
type basePath struct {
	d  *daemonProc
	cl *client
}

// startBase starts bin's daemon with a config of its own: the asker
// "bench" and one warm team locally (bwarm) and one over SSH (brwarm), each
// in a directory of its own, so no Claude process is shared with the
// subject's daemon. env is added to the baseline daemon's environment,
// proxyEnv to its proxy's.
func (w *world) startBase(ctx context.Context, bin string, env, proxyEnv []string) (*basePath, error) {
	cfg, err := w.config("baseline", []teamSpec{{name: "bench"}, {name: "bwarm"}, {name: "brwarm", host: w.hosts[0].Alias}})
	if err != nil {
		return nil, err
	}
	d, err := w.startDaemonBin(ctx, bin, cfg, env...)
	if err != nil {
		return nil, err
	}
	cl, err := w.connectBin(ctx, bin, cfg, "bench", proxyEnv...)
	if err != nil {
		d.Stop()
		return nil, err
	}
	return &basePath{d: d, cl: cl}, nil
}

func (p *basePath) Close() {
	p.cl.Close()
	p.d.Stop()
}

// pids are the baseline's switchboard processes, whose hop marks the warm
// phases collect; none without a baseline.
func (p *basePath) pids() []int {
	if p == nil {
		return nil
	}
	return []int{p.d.Pid(), p.cl.pid}
}

// arm adds the baseline's full product path, asking team to, as an arm
// named after the subject's arm of the same path; without a baseline it
// returns own and arms unchanged.
func (p *basePath) arm(own []*ownArm, arms []*arm, to, name string) ([]*ownArm, []*arm) {
	if p == nil {
		return own, arms
	}
	o := newOwnArm(name+" — baseline binary (-baseline)", "the same path, through the baseline build's `switchboard mcp` and daemon", productHops,
		func(ctx context.Context, i int) (time.Duration, error) {
			return p.cl.askAsClaude(ctx, "bench", to, question("baseline", i))
		})
	return append(own, o), append(arms, o.arm)
}
