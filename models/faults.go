package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// ErrStoreFull is returned (wrapped, test with errors.Is) when a write
// failed because the database's disk is full: SQLITE_FULL, ENOSPC, or
// Postgres's disk_full (53100). Nothing was written; the same write
// succeeds once there is space again, so callers back off and retry, and
// say "store is full" where the user looks (team_status, doctor).
var ErrStoreFull = errors.New("store is full")

// ErrCorrupt is returned (wrapped) when the SQLite database file is
// damaged. The error's text names the file and what to do.
var ErrCorrupt = errors.New("database file is corrupt")

// SQLite primary result codes (https://sqlite.org/rescode.html).
const (
	sqliteCorrupt = 11
	sqliteFull    = 13
	sqliteNotADB  = 26
)

// pgDiskFull is Postgres's SQLSTATE for disk_full.
const pgDiskFull = "53100"

// classify marks err with ErrStoreFull or ErrCorrupt when it is one of
// those faults, so callers can tell them from other failures whatever the
// engine; other errors are returned unchanged.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrStoreFull) || errors.Is(err, ErrCorrupt) {
		return err
	}
	// The SQLite driver's error; an interface, so this file names no driver.
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		switch coded.Code() & 0xff { // extended codes keep the primary in the low byte
		case sqliteFull:
			return fmt.Errorf("%w: %w", ErrStoreFull, err)
		case sqliteCorrupt, sqliteNotADB:
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == pgDiskFull {
		return fmt.Errorf("%w: %w", ErrStoreFull, err)
	}
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrStoreFull, err)
	}
	return err
}

// registerClassify makes every statement's error go through classify, so
// each store method's wrapped error carries ErrStoreFull or ErrCorrupt
// without each one checking.
func registerClassify(db *gorm.DB) error {
	fn := func(tx *gorm.DB) {
		if tx.Error != nil {
			tx.Error = classify(tx.Error)
		}
	}
	cb := db.Callback()
	for name, err := range map[string]error{
		"create": cb.Create().After("*").Register("switchboard:classify", fn),
		"query":  cb.Query().After("*").Register("switchboard:classify", fn),
		"update": cb.Update().After("*").Register("switchboard:classify", fn),
		"delete": cb.Delete().After("*").Register("switchboard:classify", fn),
		"row":    cb.Row().After("*").Register("switchboard:classify", fn),
		"raw":    cb.Raw().After("*").Register("switchboard:classify", fn),
	} {
		if err != nil {
			return fmt.Errorf("register %s error callback: %w", name, err)
		}
	}
	return nil
}

// transaction runs fn in a transaction; a commit that fails for want of
// space is ErrStoreFull too.
func (s *Store) transaction(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return classify(s.db.WithContext(ctx).Transaction(fn))
}

// corruptError explains a damaged database file and how to recover.
func corruptError(path, detail string) error {
	return fmt.Errorf("%w: %s: %s.\n"+
		"Stop the daemon, then either restore %s from a backup, or move it aside "+
		"(mv %s %s.corrupt, and its -wal and -shm files if any) and start again with a fresh database. "+
		"A fresh database loses the pairs' session records and any queued messages; "+
		"Claude's own session files (under ~/.claude/projects) stay",
		ErrCorrupt, path, detail, path, path, path)
}

// quickCheck runs SQLite's PRAGMA quick_check, which reads every page of
// the file (without the index cross-checks of integrity_check, so it is
// O(size)). A damaged page would otherwise surface only when a write
// touched it, as a failed message.
func (s *Store) quickCheck(ctx context.Context, path string) error {
	var rows []string
	// Scan reads rows after the callbacks ran, so classify here.
	err := classify(s.db.WithContext(ctx).Raw("PRAGMA quick_check").Scan(&rows).Error)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return corruptError(path, "quick_check failed: "+err.Error())
		}
		return fmt.Errorf("check database %s: %w", path, err)
	}
	if len(rows) == 1 && rows[0] == "ok" {
		return nil
	}
	const show = 5
	detail := rows
	if len(detail) > show {
		detail = append(detail[:show:show], fmt.Sprintf("… %d more", len(rows)-show))
	}
	return corruptError(path, "quick_check found: "+strings.Join(detail, "; "))
}
