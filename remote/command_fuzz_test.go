package remote

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-mcp/switchboard/proc"
)

// argvHelper prints, NUL-terminated: its working directory as the shell
// sees it, the value of FUZZ_V, $0 (the program that ran) and every
// argument, byte for byte.
const argvHelper = "#!/bin/sh\nprintf '%s\\0' \"$PWD\" \"$FUZZ_V\" \"$0\" \"$@\"\n"

// How the fuzzed program name is written in the spec.
const (
	nameAbsolute = iota // /tmp/.../name
	nameHome            // ~/name, expanded to the remote $HOME
	nameBare            // sb-fuzz-name, found on the PATH ~/.profile sets
	nameModes
)

// FuzzBuildCommand runs the command line buildCommand makes through
// /bin/sh -c, as sshd would (with SHELL=/bin/sh as the login shell), and
// checks that the program sees exactly the directory, environment value,
// program and arguments of the spec. Args are the fuzzed string split on
// NUL, the one byte a spec cannot hold.
func FuzzBuildCommand(f *testing.F) {
	for _, seed := range []struct {
		dir, name string
		mode      uint8
		args, env string
	}{
		{"d", "p", nameAbsolute, "", ""},
		{"d", "p", nameHome, "a\x00b c\x00", "v"},
		{"d", "p", nameBare, "--flag=1", "x y"},
		{"with space", "it's", nameAbsolute, "'\x00\"\x00\\\x00$HOME\x00`id`\x00$(id)\x00;touch x", "${FUZZ_V}"},
		{"-dash", "-p", nameHome, "-\x00--\x00-c", "-"},
		{"~", "~", nameAbsolute, "~\x00~/x\x00*\x00?\x00[a]", "~"},
		{"new\nline", "tab\tname", nameBare, "a\nb\x00\t\x00\r\n", "multi\nline"},
		{"ünïcode", "π", nameAbsolute, "\xff\xfe\x00日本", "\x1eswitchboard-ready 1"},
		{"a/b", "c/d", nameHome, "'\\''\x00'\x00''", "'"},
		{"glob*", "x", nameBare, "$(printf x)\x00${IFS}\x00!\x00#c", "$$"},
		{"%s", "%d", nameAbsolute, "%s\x00%%\x00\\n", "\\0"},
	} {
		f.Add(seed.dir, seed.name, seed.mode, seed.args, seed.env)
	}
	f.Fuzz(func(t *testing.T, dirName, name string, mode uint8, args, envVal string) {
		if strings.IndexByte(dirName+name+envVal, 0) >= 0 {
			return // a spec cannot hold NUL; buildCommand refuses it (tested elsewhere)
		}
		home := t.TempDir()
		dir := filepath.Join(home, component(dirName))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(home, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		// sshd runs a non-login shell; buildCommand re-runs a login shell so
		// PATH additions in ~/.profile apply, which the bare name relies on.
		if err := os.WriteFile(filepath.Join(home, ".profile"), []byte(`PATH="$HOME/bin:$PATH"`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}

		var command, want0 string
		switch mode % nameModes {
		case nameAbsolute:
			command = filepath.Join(bin, component(name))
			want0 = command
		case nameHome:
			command = "~/bin/" + component(name)
			want0 = filepath.Join(bin, component(name))
		case nameBare:
			command = "sb-fuzz-" + component(name)
			want0 = filepath.Join(bin, command)
		}
		if err := os.WriteFile(filepath.Join(bin, filepath.Base(want0)), []byte(argvHelper), 0o755); err != nil {
			t.Fatal(err)
		}

		spec := proc.Spec{Dir: dir, Command: command, Env: map[string]string{"FUZZ_V": envVal}}
		if args != "" {
			spec.Args = strings.Split(args, "\x00")
		}
		line, err := buildCommand(spec)
		if err != nil {
			t.Fatalf("buildCommand(%+v): %v", spec, err)
		}

		cmd := exec.Command("/bin/sh", "-c", line)
		cmd.Dir = "/"
		cmd.Env = []string{"HOME=" + home, "SHELL=/bin/sh", "PATH=/usr/bin:/bin", "LC_ALL=C"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("running %q: %v\nstderr: %s", line, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), readyMarker) {
			t.Errorf("stderr %q has no ready marker", stderr.String())
		}

		var want bytes.Buffer
		for _, s := range append([]string{dir, envVal, want0}, spec.Args...) {
			want.WriteString(s)
			want.WriteByte(0)
		}
		if !bytes.Equal(stdout.Bytes(), want.Bytes()) {
			t.Errorf("command line %q\nprogram saw (dir, FUZZ_V, $0, args...):\n  %q\nwant\n  %q",
				line, strings.Split(stdout.String(), "\x00"), strings.Split(want.String(), "\x00"))
		}
	})
}

// component turns s into a usable file name: no '/', not empty, not a dot
// name, short enough for any file system.
func component(s string) string {
	s = strings.ReplaceAll(s, "/", "_")
	if len(s) > 100 {
		s = s[:100]
	}
	if s == "" || s == "." || s == ".." {
		s = "_" + s
	}
	return s
}
