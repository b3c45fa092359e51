package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvConfig names the environment variable that points at the config file.
const EnvConfig = "SWITCHBOARD_CONFIG"

// Discover finds the config file: flagPath (--config) if given, else
// $SWITCHBOARD_CONFIG, else ./switchboard.yaml, else
// ~/.switchboard/config.yaml. A file named explicitly (flag or variable)
// must exist; the search does not fall through past it.
func Discover(flagPath string) (string, error) {
	home, _ := os.UserHomeDir()
	if flagPath != "" {
		return explicit(expandHome(flagPath, home), "--config")
	}
	if p := os.Getenv(EnvConfig); p != "" {
		return explicit(expandHome(p, home), "$"+EnvConfig)
	}
	tried := []string{"./switchboard.yaml"}
	candidates := []string{"switchboard.yaml"}
	if home != "" {
		p := filepath.Join(home, ".switchboard", "config.yaml")
		tried = append(tried, p)
		candidates = append(candidates, p)
	} else {
		tried = append(tried, "~/.switchboard/config.yaml (home directory unknown)")
	}
	for _, p := range candidates {
		if isFile(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("no config file found; tried --config (not given), $%s (not set), %s (create one, or pass --config ~/.iris/config.yaml to use an iris-mcp config)",
		EnvConfig, strings.Join(tried, ", "))
}

func explicit(p, from string) (string, error) {
	info, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("config file %s (from %s) does not exist", p, from)
	case err != nil:
		return "", fmt.Errorf("config file %s (from %s): %w", p, from, err)
	case info.IsDir():
		return "", fmt.Errorf("config file %s (from %s) is a directory (name the YAML file)", p, from)
	}
	return p, nil
}

func isFile(p string) bool {
	info, err := os.Stat(p)
	return err == nil && !info.IsDir()
}
