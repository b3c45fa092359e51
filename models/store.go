package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/glebarez/sqlite"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ErrNotFound is returned (wrapped) when a session or message does not exist.
var ErrNotFound = errors.New("not found")

// ErrFinished is returned (wrapped) when a message that is already answered,
// failed or expired would be moved back into the queue.
var ErrFinished = errors.New("message already finished")

// Options says which database to open.
type Options struct {
	// Path is the SQLite database file, used when DSN is empty.
	Path string
	// DSN selects Postgres when it starts with postgres:// or postgresql://.
	DSN string
	// Logger receives slow-query and error logs; nil means slog.Default().
	Logger *slog.Logger
	// SkipQuickCheck skips SQLite's PRAGMA quick_check at open. The check
	// reads the whole file (about a second per few hundred MB), so that a
	// damaged file is refused at start with the way out, not found when a
	// write fails; skip it only where the file was just checked.
	SkipQuickCheck bool
}

// Store is switchboard's database. It is safe for concurrent use.
type Store struct {
	// db is the one connection that writes on SQLite (and reads in
	// transactions and read-then-write methods); on Postgres, the pool.
	db *gorm.DB
	// rdb, on SQLite, is a pool of read-only connections for the methods
	// that only read (see read), so that a worker reading its queue, or a
	// status tool, does not queue behind every write for the one writer.
	// In WAL mode a read transaction begun after a write committed sees
	// it, so a read after a write returned always sees that write. nil on
	// Postgres and inside transactions: read then uses db.
	rdb *gorm.DB
	// wq batches the hot path's writes on SQLite (groupcommit.go); nil on
	// Postgres and inside transactions.
	wq *committer
	// dsn is the Postgres connection string (Listen opens its own
	// connection with it); "" on SQLite. It holds the password: never log
	// it or put it in an error.
	dsn string
	log *slog.Logger
}

// sqlitePragmas are run on every new SQLite connection. WAL lets readers in
// other processes (switchboard sessions ls) work while the daemon writes;
// busy_timeout makes those processes wait for each other instead of failing;
// NORMAL is durable across application crashes in WAL mode, which is the
// failure the queue must survive.
var sqlitePragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

// slowStatement is how long a statement runs before the log warns of it.
const slowStatement = 500 * time.Millisecond

// quietTrace hands a statement to GORM's slog logger only when that logger
// would log it (it failed, or was slow): the slog logger renders the SQL
// text and formats the duration of every statement before it decides, a
// cost each ask paid several times over for nothing.
type quietTrace struct{ logger.Interface }

func (q quietTrace) LogMode(l logger.LogLevel) logger.Interface {
	return quietTrace{q.Interface.LogMode(l)}
}

func (q quietTrace) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if (err != nil && !errors.Is(err, gorm.ErrRecordNotFound)) || time.Since(begin) > slowStatement {
		q.Interface.Trace(ctx, begin, fc, err)
	}
}

// sqliteReaders is the size of the SQLite read-only pool: a few readers
// run beside the writer on a small machine; more would only add threads
// competing for the same cores.
const sqliteReaders = 4

// postgresMaxConns caps the connections one store opens to a Postgres
// server.
const postgresMaxConns = 8

// Open connects to the database described by opts and migrates the schema.
func Open(ctx context.Context, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	cfg := &gorm.Config{
		// Every write here is a single statement or an explicit transaction;
		// GORM's implicit transaction around each one only costs a round trip.
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return utc(time.Now()) },
		Logger: quietTrace{logger.NewSlogLogger(log, logger.Config{
			SlowThreshold:             slowStatement,
			LogLevel:                  logger.Warn,
			IgnoreRecordNotFoundError: true,
			// Message texts are user data: never put them in the log.
			ParameterizedQueries: true,
		})},
	}

	var (
		db       *gorm.DB
		err      error
		isSQLite bool
	)
	switch {
	case strings.HasPrefix(opts.DSN, "postgres://"), strings.HasPrefix(opts.DSN, "postgresql://"):
		// gorm.Open logs a failure itself, with the driver's error text,
		// which might carry the dsn: stay silent until it returned, and
		// return the error redacted instead.
		gormLog := cfg.Logger
		cfg.Logger = logger.Discard
		db, err = gorm.Open(postgres.New(postgres.Config{
			DSN:          opts.DSN,
			OptionOpenDB: []stdlib.OptionOpenDB{stdlib.OptionShouldPing(shouldPing)},
		}), cfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres %s: %w", RedactDSN(opts.DSN), redactErr(err, opts.DSN))
		}
		db.Logger = gormLog
	case opts.DSN != "":
		return nil, errors.New("open database: dsn must start with postgres:// or postgresql://; use path for SQLite")
	default:
		pinSQLiteHeap()
		dsn, err := prepareSQLiteFile(opts.Path)
		if err != nil {
			return nil, err
		}
		db, err = gorm.Open(sqlite.Open(dsn), cfg)
		if err != nil {
			// The pragmas in the DSN are the first reads of the file.
			if err := classify(err); errors.Is(err, ErrCorrupt) {
				return nil, corruptError(opts.Path, err.Error())
			}
			return nil, fmt.Errorf("open sqlite %s: %w", opts.Path, classify(err))
		}
		isSQLite = true
	}

	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if !isSQLite {
		// Every waiting goroutine would otherwise open its own connection:
		// slow to start, and a busy daemon could use up the server's
		// max_connections (100 by default) that other brokers share.
		sqlDB.SetMaxOpenConns(postgresMaxConns)
		sqlDB.SetMaxIdleConns(postgresMaxConns)
	}
	if isSQLite {
		// SQLite allows one writer at a time. One connection serialises the
		// daemon's goroutines in database/sql's pool instead of letting them
		// collide as SQLITE_BUSY; busy_timeout covers other processes.
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetMaxIdleConns(1)
		sqlDB.SetConnMaxLifetime(0)
	}

	if err := registerClassify(db); err != nil {
		sqlDB.Close()
		return nil, err
	}
	s := &Store{db: db, log: log}
	if !isSQLite {
		s.dsn = opts.DSN
	}
	if isSQLite && !opts.SkipQuickCheck {
		if err := s.quickCheck(ctx, opts.Path); err != nil {
			sqlDB.Close()
			return nil, err
		}
	}
	if err := s.migrate(ctx); err != nil {
		sqlDB.Close()
		if isSQLite && errors.Is(err, ErrCorrupt) {
			return nil, corruptError(opts.Path, err.Error())
		}
		return nil, redactErr(err, opts.DSN)
	}
	if isSQLite {
		// After migrate: the readers' first query finds the schema.
		if s.rdb, err = openSQLiteReaders(opts.Path, cfg); err != nil {
			sqlDB.Close()
			return nil, err
		}
		s.wq = &committer{db: db}
	}
	return s, nil
}

// openSQLiteReaders opens the read-only pool of the SQLite file at path
// (Store.rdb). Its transactions are deferred: an immediate one would take
// the write lock, which no read needs.
func openSQLiteReaders(path string, cfg *gorm.Config) (*gorm.DB, error) {
	// A small page cache: the writer's every commit empties a reader's
	// cache (WAL), so a large one would hold memory, not save reads.
	q := []string{"_pragma=busy_timeout(5000)", "_pragma=foreign_keys(1)", "_pragma=query_only(1)", "_pragma=cache_size(-256)"}
	rdb, err := gorm.Open(sqlite.Open(path+"?"+strings.Join(q, "&")), cfg)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, classify(err))
	}
	sqlDB, err := rdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s for reading: %w", path, err)
	}
	sqlDB.SetMaxOpenConns(sqliteReaders)
	// Readers beyond one are for bursts; idle, each holds its own heap.
	sqlDB.SetMaxIdleConns(1)
	sqlDB.SetConnMaxLifetime(0)
	if err := registerClassify(rdb); err != nil {
		sqlDB.Close()
		return nil, err
	}
	return rdb, nil
}

// reader is the handle of the methods that only read: the read-only pool
// on SQLite, db elsewhere.
func (s *Store) reader() *gorm.DB {
	if s.rdb != nil {
		return s.rdb
	}
	return s.db
}

func (s *Store) read(ctx context.Context) *gorm.DB { return s.reader().WithContext(ctx) }

// write runs fn, a write: through the committer on SQLite, as a
// transaction when atomic (fn is more than one statement), else as one
// statement. fn gets the context to use: on SQLite one that ctx's
// cancellation does not reach, as a write taken into a batch must not be
// cut off half way (see committer.do).
func (s *Store) write(ctx context.Context, atomic bool, fn func(ctx context.Context, tx *gorm.DB) error) error {
	if s.wq != nil {
		return s.wq.do(ctx, atomic, func(tx *gorm.DB) error { return fn(context.WithoutCancel(ctx), tx) })
	}
	if atomic {
		return s.transaction(ctx, func(tx *gorm.DB) error { return fn(ctx, tx) })
	}
	return fn(ctx, s.db.WithContext(ctx))
}

// prepareSQLiteFile creates the database file's directory (0700) and the
// file itself (0600) before SQLite does, so it is never readable by others,
// and returns the driver DSN.
func prepareSQLiteFile(path string) (string, error) {
	if path == "" {
		return "", errors.New("open sqlite: database path is empty")
	}
	// The driver splits its DSN at the first '?'.
	if strings.ContainsAny(path, "?#") {
		return "", fmt.Errorf("open sqlite: database path %q must not contain '?' or '#'", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create database directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("create database file: %w", err)
	}
	f.Close()
	// A file created by an older version or by hand may be wider; SQLite
	// gives the -wal and -shm files the database file's mode, so fix it first.
	if err := os.Chmod(path, 0o600); err != nil {
		return "", fmt.Errorf("restrict database file mode: %w", err)
	}
	q := make([]string, 0, len(sqlitePragmas)+1)
	for _, p := range sqlitePragmas {
		q = append(q, "_pragma="+p)
	}
	// Take the write lock when a transaction begins, so a read-then-write
	// transaction cannot deadlock with another process's.
	q = append(q, "_txlock=immediate")
	return path + "?" + strings.Join(q, "&"), nil
}

// migrateLock is the Postgres advisory lock key migrate holds, so brokers
// of a fleet starting at once do not run the same DDL concurrently (two
// CREATE TABLE IF NOT EXISTS can both pass the check and one fail).
const migrateLock = 0x5377_6974_6368 // "Switch"

func (s *Store) migrate(ctx context.Context) error {
	if !s.Shared() {
		return migrateIn(s.db.WithContext(ctx), false)
	}
	// Postgres DDL is transactional: the lock holds until commit.
	return s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrateLock).Error; err != nil {
			return fmt.Errorf("migrate schema: lock: %w", err)
		}
		if err := migrateIn(tx, true); err != nil {
			return err
		}
		var current bool
		if err := tx.Raw(notifyCurrent, notifyBody).Scan(&current).Error; err != nil {
			return fmt.Errorf("migrate schema: notify trigger: %w", err)
		}
		if current {
			return nil
		}
		for _, ddl := range notifyDDL {
			if err := tx.Exec(ddl).Error; err != nil {
				return fmt.Errorf("migrate schema: notify trigger: %w", err)
			}
		}
		return nil
	})
}

func migrateIn(db *gorm.DB, postgres bool) error {
	if err := db.AutoMigrate(&Session{}, &Message{}, &PermissionRequest{}, &BrokerRecord{}, &Lease{}); err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	// ListSessions orders by recentExpr; GORM tags cannot declare
	// expression indexes. The parenthesised expression is what Postgres
	// requires and SQLite accepts. The status index lets "sessions in error,
	// most recent first" read 50 rows instead of sorting every match.
	//
	// The team indexes serve "sessions of team X since T" (sessions ls
	// --team --since, team_status): the team matches either column, so each
	// side needs its own (team, recent) index for the planner to range-scan
	// both and merge them (SQLite's MULTI-INDEX OR, Postgres's BitmapOr);
	// with team-only indexes the query read every session of the team, 13x
	// slower at 100k sessions than at 10k. idx_sessions_to_recent also
	// serves what idx_sessions_to_team did, which is dropped.
	indexes := []string{
		`CREATE INDEX IF NOT EXISTS idx_sessions_recent ON sessions ((` + recentExpr + `))`,
		`CREATE INDEX IF NOT EXISTS idx_sessions_status_recent ON sessions (status, (` + recentExpr + `))`,
		`CREATE INDEX IF NOT EXISTS idx_sessions_from_recent ON sessions (from_team, (` + recentExpr + `))`,
		`CREATE INDEX IF NOT EXISTS idx_sessions_to_recent ON sessions (to_team, (` + recentExpr + `))`,
		`DROP INDEX IF EXISTS idx_sessions_to_team`,
		// RecentMessages: a team's newest messages on each side in id order.
		// idx_messages_from_recent serves every from_team lookup the
		// team-only idx_messages_from_team did (which the planner could
		// pick instead, losing the id order), so that one is dropped.
		`CREATE INDEX IF NOT EXISTS idx_messages_from_recent ON messages (from_team, id)`,
		`CREATE INDEX IF NOT EXISTS idx_messages_to_recent ON messages (to_team, id)`,
		`DROP INDEX IF EXISTS idx_messages_from_team`,
		// QueueHead: a pair's unfinished messages in id order, however
		// long the pair's history. Without it, once ANALYZE has seen a
		// long history the planner walks idx_messages_from_recent in id
		// order through every message the asking team ever sent (100 ms
		// per ask at 1M messages) rather than sort the few unfinished.
		`CREATE INDEX IF NOT EXISTS idx_messages_unfinished ON messages (to_team, from_team, id) WHERE ` + unfinishedCond,
	}
	for _, ddl := range indexes {
		if err := db.Exec(ddl).Error; err != nil {
			return fmt.Errorf("migrate schema: %s: %w", ddl, err)
		}
	}
	return migrateTotals(db, postgres)
}

// Close closes the database.
func (s *Store) Close() error {
	if s.rdb != nil {
		if r, err := s.rdb.DB(); err == nil {
			r.Close()
		}
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	if err := sqlDB.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// DB exposes the underlying handle for tests and benchmarks.
func (s *Store) DB() *gorm.DB { return s.db }

// NewSessionID returns a fresh random (v4) Claude Code session id.
func NewSessionID() string {
	return uuid.NewString()
}

// notFound turns GORM's not-found error into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

// utc normalises a time before it is stored: SQLite keeps times as text and
// compares them as text, which is only chronological in a single zone; and
// Postgres keeps microseconds, so a time is cut to them here, on both
// engines, for a row read back to equal the one written.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// text makes s storable on both engines: Postgres's text type refuses NUL
// and invalid UTF-8 (SQLSTATE 22021), which would make a message whose
// answer held one fail there and succeed on SQLite. Both become U+FFFD,
// on both engines, so the queue behaves the same on either.
func text(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// whereTeams narrows q, a query on sessions or messages, to team (as sender
// or recipient), from, to and status; empty values do not narrow.
func whereTeams(q *gorm.DB, team, from, to, status string) *gorm.DB {
	if team != "" {
		q = q.Where("from_team = ? OR to_team = ?", team, team)
	}
	if from != "" {
		q = q.Where("from_team = ?", from)
	}
	if to != "" {
		q = q.Where("to_team = ?", to)
	}
	if status != "" {
		q = q.Where("status = ?", status)
	}
	return q
}
