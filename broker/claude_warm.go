package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Warming a standby Claude process up (PROTOCOL.md, "Warming a process up
// without a model call"): Claude Code does much of a turn's work for the
// first time only when the first prompt arrives, and a standby exists to
// have paid for it before the first real message. Nothing here may reach
// the Messages API.
//
// The best warm-up measured on 2.1.332 is a prompt that a UserPromptSubmit
// hook blocks: it runs the prompt pipeline (input processing, the first
// attachments, the hook runner) and is dropped before the model sees it;
// Claude records only a system line for it, which no reader takes for a
// message. The hook exists for that one prompt: it is added through the
// flag-settings layer and removed again, so later turns run no hook. Before
// it, a context-usage summary builds the system prompt and the tool
// schemas, locally; both run twice. The first real turn after them costs
// about half the extra time (over a warm turn) it costs after /cost.
//
// The prompt reaches the model if the hook does not run (hooks disabled by
// a setting or a policy, another Claude Code version), so it is sent only
// once Claude lists the hook as the only, enabled UserPromptSubmit hook;
// otherwise the process is warmed with the local command /cost, which makes
// no request either.

// warmHookCommand blocks whatever prompt it is asked about. A shell
// builtin: it runs on every host.
const warmHookCommand = `echo '{"decision":"block","reason":"switchboard standby warm-up"}'`

// contextSummary asks for the context usage without the token counts the
// full answer gets from the API.
var contextSummary = map[string]any{"subtype": "get_context_usage", "detail": "summary"}

// warmRounds is how many times the summary and the blocked prompt run.
const warmRounds = 2

// warmPrompt is the prompt warmHookCommand blocks.
const warmPrompt = "switchboard standby warm-up (blocked by a hook; never sent to the model)"

// warmCommand is a local slash command: Claude Code answers it itself.
const warmCommand = "/cost"

// Warm-up methods, as standby.warmedBy records them.
const (
	warmedByHook    = "blocked prompt"
	warmedByCommand = warmCommand
)

// errWarmUnsafe is a warm-up that left the process in a state a pair must
// not get: the hook may still be in place, or the prompt reached the model.
var errWarmUnsafe = errors.New("warm-up left the process unusable")

// warmUp pays for a first turn's work ahead of the first real message
// without a request to the Messages API, and says how.
func warmUp(ctx context.Context, cl *claude) (string, error) {
	err := warmByBlockedPrompt(ctx, cl)
	if err == nil {
		return warmedByHook, nil
	}
	if errors.Is(err, errWarmUnsafe) || ctx.Err() != nil {
		return "", err
	}
	res, err := cl.turn(ctx, warmCommand, 0, nil, nil)
	if err == nil && (res.IsError || res.NumTurns != 0) {
		err = fmt.Errorf("%s: %s (model calls %d)", warmCommand, res.Text, res.NumTurns)
	}
	return warmedByCommand, err
}

// warmByBlockedPrompt warms cl with a prompt its own hook blocks. An error
// without errWarmUnsafe means the process is as it was: no hook and no
// turn.
func warmByBlockedPrompt(ctx context.Context, cl *claude) error {
	// Builds the system prompt and the tool schemas and counts them
	// locally (the summary asks the API for no token count). Best effort;
	// first, so that the blocked prompt is the warm-up's last trace in the
	// session file.
	_, _ = cl.call(ctx, contextSummary)
	// Only a Claude that lists its hooks can show the hook is in place and,
	// afterwards, gone; and a team's own prompt hooks must not run for the
	// warm-up prompt.
	ours, others, err := promptHooks(ctx, cl)
	if err != nil {
		return err
	}
	if ours != 0 || others != 0 {
		return fmt.Errorf("claude already lists %d prompt hooks", ours+others)
	}
	hook := map[string]any{"UserPromptSubmit": []any{map[string]any{
		"hooks": []any{map[string]any{"type": "command", "command": warmHookCommand}},
	}}}
	if _, err := cl.call(ctx, applyHooks(hook)); err != nil {
		return err
	}
	ours, others, err = promptHooks(ctx, cl)
	if err == nil && (ours != 1 || others != 0) {
		err = fmt.Errorf("claude lists %d enabled warm-up hooks and %d other prompt hooks", ours, others)
	}
	if err != nil {
		// Not sure to block: no prompt, and no hook left behind.
		if rerr := removeWarmHook(ctx, cl); rerr != nil {
			return fmt.Errorf("%w: %w (after %w)", errWarmUnsafe, rerr, err)
		}
		return err
	}
	// A second round runs the same code again, further from cold: measured
	// 46 ms against 60 ms first turn minus warm turn (PROTOCOL.md).
	for round := range warmRounds {
		if round > 0 {
			_, _ = cl.call(ctx, contextSummary)
		}
		res, err := cl.turn(ctx, warmPrompt, 0, nil, nil)
		if err != nil {
			return fmt.Errorf("%w: warm-up prompt: %w", errWarmUnsafe, err)
		}
		if res.NumTurns != 0 || res.IsError {
			return fmt.Errorf("%w: the warm-up prompt was not blocked (model calls %d): %.200s", errWarmUnsafe, res.NumTurns, res.Text)
		}
	}
	if err := removeWarmHook(ctx, cl); err != nil {
		return fmt.Errorf("%w: %w", errWarmUnsafe, err)
	}
	return nil
}

func applyHooks(hooks map[string]any) map[string]any {
	return map[string]any{"subtype": "apply_flag_settings", "settings": map[string]any{"hooks": hooks}}
}

// removeWarmHook empties the flag-settings hooks (the broker sets none
// otherwise) and checks that Claude no longer lists the warm-up hook: a
// hook left in place would block every real message.
func removeWarmHook(ctx context.Context, cl *claude) error {
	if _, err := cl.call(ctx, applyHooks(map[string]any{})); err != nil {
		return fmt.Errorf("remove the warm-up hook: %w", err)
	}
	ours, _, err := promptHooks(ctx, cl)
	if err != nil {
		return fmt.Errorf("check the warm-up hook is gone: %w", err)
	}
	if ours != 0 {
		return errors.New("claude still lists the warm-up hook after its removal")
	}
	return nil
}

// promptHooks counts the enabled UserPromptSubmit hooks Claude lists: the
// warm-up hook and others.
func promptHooks(ctx context.Context, cl *claude) (ours, others int, err error) {
	raw, err := cl.call(ctx, map[string]any{"subtype": "get_hooks_listing"})
	if err != nil {
		return 0, 0, err
	}
	var listing struct {
		Hooks *[]struct {
			Event       string `json:"event"`
			Source      string `json:"source"`
			CommandText string `json:"commandText"`
			Disabled    bool   `json:"disabled"`
		} `json:"hooks"`
	}
	if err := json.Unmarshal(raw, &listing); err != nil || listing.Hooks == nil {
		return 0, 0, fmt.Errorf("hooks listing without hooks: %.200s", raw)
	}
	for _, h := range *listing.Hooks {
		switch {
		case h.Event != "UserPromptSubmit" || h.Disabled:
		case h.Source == "flagSettings" && h.CommandText == warmHookCommand:
			ours++
		default:
			others++
		}
	}
	return ours, others, nil
}
