package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"

	"github.com/switchboard-mcp/switchboard/proc"
)

// Files reaches the host's files over SFTP on the shared connection.
func (r *Runner) Files() proc.Files { return files{r} }

// files implements proc.Files over SFTP. Paths starting with "~/" (and
// relative paths) are taken from the login directory.
type files struct{ r *Runner }

func (f files) Stat(ctx context.Context, p string) (fs.FileInfo, error) {
	var fi fs.FileInfo
	err := f.do(ctx, "stat", p, func(c *sftp.Client, p string) (err error) {
		fi, err = c.Stat(p)
		return err
	})
	return fi, err
}

func (f files) ReadFile(ctx context.Context, p string) ([]byte, error) {
	var b []byte
	err := f.do(ctx, "read", p, func(c *sftp.Client, p string) error {
		fh, err := c.Open(p)
		if err != nil {
			return err
		}
		defer fh.Close()
		b, err = io.ReadAll(fh)
		return err
	})
	return b, err
}

func (f files) Remove(ctx context.Context, p string) error {
	return f.do(ctx, "remove", p, func(c *sftp.Client, p string) error {
		return c.Remove(p)
	})
}

func (f files) WriteFile(ctx context.Context, p string, data []byte) error {
	return f.do(ctx, "write", p, func(c *sftp.Client, p string) error {
		if err := c.MkdirAll(path.Dir(p)); err != nil {
			return err
		}
		// SFTP creates files with the server's umask first: the directory
		// is closed to others before the file exists, so the moment before
		// its chmod exposes nothing.
		if err := c.Chmod(path.Dir(p), 0o700); err != nil {
			return err
		}
		fh, err := c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		if err := fh.Chmod(0o600); err != nil {
			fh.Close()
			return err
		}
		if _, err := fh.Write(data); err != nil {
			fh.Close()
			return err
		}
		return fh.Close()
	})
}

func (f files) Home(ctx context.Context) (string, error) {
	var home string
	err := f.do(ctx, "home", "~", func(_ *sftp.Client, p string) error {
		home = p
		return nil
	})
	return home, err
}

// do runs op with the shared SFTP client and p resolved against the home
// directory. When the connection or the SFTP session turns out to be gone,
// it reopens them and tries once more.
func (f files) do(ctx context.Context, what, p string, op func(*sftp.Client, string) error) error {
	r := f.r
	for attempt := 0; ; attempt++ {
		c, err := r.pool.get(ctx, r.target)
		if err != nil {
			return fmt.Errorf("%s %s on %s: %w", what, p, r.Where(), err)
		}
		var sc *sftp.Client
		err = r.pool.await(ctx, func() error {
			s, home, err := c.sftpClient()
			if err != nil {
				return err
			}
			sc = s
			return op(s, resolvePath(home, p))
		})
		if err == nil {
			return nil
		}
		var status *sftp.StatusError
		if attempt == 0 && ctx.Err() == nil && !errors.As(err, &status) && !errors.Is(err, fs.ErrNotExist) &&
			!errors.Is(err, fs.ErrPermission) && r.pool.stale(ctx, c) {
			if sc != nil {
				c.dropSFTP(sc)
			}
			continue
		}
		return fmt.Errorf("%s %s on %s: %w", what, p, r.Where(), err)
	}
}

// stale reports whether c should be replaced after a failure: the
// connection is dead (then it waits until the pool has dropped it) or only
// its SFTP session is.
func (p *Pool) stale(ctx context.Context, c *conn) bool {
	err := p.await(ctx, func() error {
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		return err
	})
	if err != nil {
		select {
		case <-c.dead:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func resolvePath(home, p string) string {
	switch {
	case p == "~":
		return home
	case strings.HasPrefix(p, "~/"):
		return path.Join(home, p[2:])
	case !path.IsAbs(p):
		return path.Join(home, p)
	}
	return p
}
