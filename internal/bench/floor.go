package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// streamArgs are the flags switchboard itself starts Claude Code with.
var streamArgs = []string{"-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"}

// streamProc is a Claude Code stream-json process driven directly, with
// nothing between the caller and its stdin/stdout: the floor a broker can
// only add to.
type streamProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr bytes.Buffer
}

// startStream starts cmd (claude, or ssh running claude) and leaves it
// waiting for its first user line.
func startStream(cmd *exec.Cmd) (*streamProc, error) {
	p := &streamProc{cmd: cmd}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.stdout = bufio.NewReaderSize(out, 1<<20)
	cmd.Stderr = &p.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return p, nil
}

// localStream starts Claude Code in dir with env, as switchboard would.
func localStream(claude, dir string, env []string) (*streamProc, error) {
	cmd := exec.Command(claude, append(streamArgs, "--session-id", uuid.NewString())...)
	cmd.Dir, cmd.Env = dir, env
	return startStream(cmd)
}

// sshStream starts Claude Code on host through the OpenSSH client, one
// connection for the life of the process.
func sshStream(sshConfig, host, claude, dir string, env map[string]string) (*streamProc, error) {
	remote := remoteCommand(claude, dir, env, append(streamArgs, "--session-id", uuid.NewString()))
	return startStream(exec.Command("ssh", "-F", sshConfig, "-T", host, remote))
}

// ask writes one user message and reads until its result line.
func (p *streamProc) ask(ctx context.Context, text string) (string, error) {
	line, _ := json.Marshal(map[string]any{
		"type":    "user",
		"message": map[string]any{"role": "user", "content": []map[string]string{{"type": "text", "text": text}}},
	})
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		return "", fmt.Errorf("write to claude: %w (stderr: %s)", err, p.stderr.String())
	}
	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		for {
			l, err := p.stdout.ReadBytes('\n')
			if err != nil {
				done <- result{err: fmt.Errorf("read from claude: %w (stderr: %s)", err, p.stderr.String())}
				return
			}
			var ev struct {
				Type    string `json:"type"`
				IsError bool   `json:"is_error"`
				Result  string `json:"result"`
			}
			if json.Unmarshal(l, &ev) != nil || ev.Type != "result" {
				continue
			}
			if ev.IsError {
				done <- result{err: fmt.Errorf("claude turn failed: %s", l)}
				return
			}
			done <- result{text: ev.Result}
			return
		}
	}()
	select {
	case r := <-done:
		return r.text, r.err
	case <-ctx.Done():
		// The reader goroutine ends when Close kills the process.
		return "", ctx.Err()
	}
}

// Close ends the process: stdin closed, then killed if it lingers.
func (p *streamProc) Close() {
	p.stdin.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// oneShot runs `claude -p` with the message on stdin and waits for the
// answer: what a person does by hand for one question.
func oneShot(ctx context.Context, cmd *exec.Cmd, text string) (string, error) {
	cmd.Stdin = strings.NewReader(text)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w (stderr: %s)", strings.Join(cmd.Args, " "), err, errb.String())
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return out.String(), nil
}

// localOneShot is `cd dir && claude -p` on this machine.
func localOneShot(ctx context.Context, claude, dir string, env []string, text string) (string, error) {
	cmd := exec.CommandContext(ctx, claude, "-p")
	cmd.Dir, cmd.Env = dir, env
	return oneShot(ctx, cmd, text)
}

// sshOneShot is `ssh host 'cd dir && claude -p'` with the OpenSSH client: a
// new connection, a new process and a new session per message.
func sshOneShot(ctx context.Context, sshConfig, host, claude, dir string, env map[string]string, text string) (string, error) {
	cmd := exec.CommandContext(ctx, "ssh", "-F", sshConfig, "-T", host, remoteCommand(claude, dir, env, []string{"-p"}))
	return oneShot(ctx, cmd, text)
}

// remoteCommand is the shell line the OpenSSH client sends: cd, then claude
// with env set. Only fixed flags are on it; messages go on stdin.
func remoteCommand(claude, dir string, env map[string]string, args []string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s && exec env", shellQuote(dir))
	for _, k := range keys {
		fmt.Fprintf(&b, " %s", shellQuote(k+"="+env[k]))
	}
	fmt.Fprintf(&b, " %s", shellQuote(claude))
	for _, a := range args {
		fmt.Fprintf(&b, " %s", shellQuote(a))
	}
	return b.String()
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
