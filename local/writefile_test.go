package local_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-mcp/switchboard/local"
)

// WriteFile carries session credentials: only the owner may read them,
// whatever the umask or an earlier file's mode.
func TestWriteFileIsPrivate(t *testing.T) {
	home := t.TempDir()
	files := local.New(local.Options{Env: []string{"HOME=" + home}}).Files()
	ctx := context.Background()
	if err := os.WriteFile(filepath.Join(home, "old"), []byte("loose"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"~/.switchboard/run/cred.json", "~/old"} {
		if err := files.WriteFile(ctx, p, []byte("secret")); err != nil {
			t.Fatalf("WriteFile(%s): %v", p, err)
		}
		full := filepath.Join(home, p[2:])
		fi, err := os.Stat(full)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v, %v; want 0600", full, fi.Mode().Perm(), err)
		}
		if b, _ := os.ReadFile(full); string(b) != "secret" {
			t.Errorf("%s holds %q", full, b)
		}
	}
	if fi, err := os.Stat(filepath.Join(home, ".switchboard", "run")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("created directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}
