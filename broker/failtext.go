package broker

import (
	"fmt"
	"strings"

	"github.com/switchboard-mcp/switchboard/configs"
)

// answerFailure says what happened when Claude ended a turn with an error,
// in words a user can act on. Claude's result subtype ("success",
// "error_during_execution") is not a reason and is never shown.
func answerFailure(team *configs.Team, res turnResult) string {
	text := strings.TrimSpace(res.Text)
	low := strings.ToLower(text)
	switch {
	case strings.Contains(low, "not logged in") || strings.Contains(low, "/login"):
		return fmt.Sprintf("Claude Code in team %s is not logged in: run `claude` in %s once and log in, "+
			"or set ANTHROPIC_API_KEY in the team's env (switchboard doctor checks it)", team.Name, team.Path)
	case strings.Contains(low, "invalid api key"):
		return fmt.Sprintf("Claude Code in team %s has an invalid API key: fix ANTHROPIC_API_KEY (or log in again with `claude` in %s)", team.Name, team.Path)
	case strings.Contains(low, "credit balance"):
		return fmt.Sprintf("Claude Code in team %s cannot answer: its account is out of credit (%s)", team.Name, text)
	case res.Subtype == "error_max_turns":
		return fmt.Sprintf("Claude Code in team %s stopped at its maximum number of turns before answering", team.Name)
	case text == "":
		return fmt.Sprintf("Claude Code in team %s ended the turn with an error and gave no reason; its conversation (session_report) may show why", team.Name)
	}
	return fmt.Sprintf("Claude Code in team %s could not answer: %s", team.Name, text)
}

// publicErrors drops the diagnostics Claude Code adds to a result's errors
// for its own developers ("[ede_diagnostic] result_type=user ..."): they say
// nothing to a user and must never read as an answer.
func publicErrors(errs []string) []string {
	var out []string
	for _, e := range errs {
		if strings.HasPrefix(strings.TrimSpace(e), "[ede_diagnostic]") {
			continue
		}
		out = append(out, e)
	}
	return out
}

// cancelledAnswer is what a cancelled turn leaves as the message's partial
// answer: Claude's result text when it wrote one, nothing for an error
// result (whose text is about the interruption, not an answer).
func cancelledAnswer(res turnResult) string {
	if res.IsError {
		return ""
	}
	return res.Text
}

// timedOutText is send_message's text when the wait ended before the
// answer; it names the id so a caller fetches rather than asks again, and
// the last delivery error when the team has not been reached yet.
func timedOutText(r *Reply) string {
	text := fmt.Sprintf("No answer from %s yet; message %d is %s. Fetch the answer later with message_status messageId=%d (do not send it again).", r.To, r.MessageID, r.Status, r.MessageID)
	if r.Error != "" {
		text += " Last delivery attempt: " + r.Error + "; it is retried until messageTTL."
	}
	return text
}
