package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// A fleet is several brokers sharing one store (Postgres). Each broker has a
// BrokerRecord it renews (the heartbeat), and the broker that delivers a
// pair's messages holds that pair's Lease. On SQLite there is one broker and
// nobody calls these, but they work the same, so the suite runs on both.

// BrokerRecord is one broker of a fleet sharing this store.
type BrokerRecord struct {
	Name        string `gorm:"primaryKey"`
	Host        string // os.Hostname()
	PID         int    `gorm:"column:pid"`
	ConfigFile  string
	Teams       string // JSON array of the team names this broker can run
	Version     string
	StartedAt   time.Time
	HeartbeatAt time.Time
	StoppedAt   *time.Time // set by a clean shutdown
}

// TeamNames decodes Teams; a record with no or unreadable Teams runs none.
func (r BrokerRecord) TeamNames() []string {
	var names []string
	if r.Teams == "" || json.Unmarshal([]byte(r.Teams), &names) != nil {
		return nil
	}
	return names
}

// Alive reports whether the broker is not stopped and its heartbeat is
// younger than ttl at now.
func (r BrokerRecord) Alive(now time.Time, ttl time.Duration) bool {
	return r.StoppedAt == nil && now.Sub(r.HeartbeatAt) < ttl
}

// ErrBrokerNameTaken is returned (wrapped) by RegisterBroker when a live
// broker of another process already has the name.
var ErrBrokerNameTaken = errors.New("broker name taken")

// RegisterBroker upserts r (StartedAt=HeartbeatAt=now, StoppedAt=nil); it is
// also how a reload updates Teams. ErrBrokerNameTaken (wrapped, saying which
// host/pid holds it and how to pick another name) when a live record with
// the same name has another Host or PID.
//
// One statement, so two brokers registering one name at once cannot both
// win: the row is only overwritten when it is the caller's own, stopped, or
// its heartbeat is older than ttl.
func (s *Store) RegisterBroker(ctx context.Context, r BrokerRecord, now time.Time, ttl time.Duration) error {
	if r.Name == "" {
		return errors.New("register broker: the name is empty (set settings.fleet.name)")
	}
	now = utc(now)
	r.StartedAt, r.HeartbeatAt, r.StoppedAt = now, now, nil
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "name"}},
		DoUpdates: clause.AssignmentColumns([]string{
			"host", "pid", "config_file", "teams", "version", "started_at", "heartbeat_at", "stopped_at"}),
		Where: clause.Where{Exprs: []clause.Expression{clause.Expr{
			SQL: "(broker_records.host = excluded.host AND broker_records.pid = excluded.pid) OR " +
				"broker_records.stopped_at IS NOT NULL OR broker_records.heartbeat_at <= ?",
			Vars: []any{now.Add(-ttl)},
		}}},
	}).Create(&r)
	if res.Error != nil {
		return fmt.Errorf("register broker %s: %w", r.Name, res.Error)
	}
	if res.RowsAffected > 0 {
		return nil
	}
	var held BrokerRecord
	if err := s.db.WithContext(ctx).Take(&held, "name = ?", r.Name).Error; err != nil {
		return fmt.Errorf("register broker %s: %w", r.Name, notFound(err))
	}
	return fmt.Errorf("register broker %s: %w: the broker on host %s (pid %d) uses it and is alive (heartbeat %s ago); "+
		"give this one another name with settings.fleet.name, or stop that one",
		r.Name, ErrBrokerNameTaken, held.Host, held.PID, now.Sub(held.HeartbeatAt).Round(time.Millisecond))
}

// HeartbeatBroker renews the broker's heartbeat and, in the same
// transaction, every lease it owns, to now+ttl. A broker with no record is
// ErrNotFound (register it again).
func (s *Store) HeartbeatBroker(ctx context.Context, name string, now time.Time, ttl time.Duration) error {
	now = utc(now)
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&BrokerRecord{}).Where("name = ?", name).Update("heartbeat_at", now)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		return tx.Model(&Lease{}).Where("owner = ?", name).Update("expires_at", now.Add(ttl)).Error
	})
	if err != nil {
		return fmt.Errorf("heartbeat broker %s: %w", name, err)
	}
	return nil
}

// StopBroker marks a clean shutdown and releases the broker's leases, so
// another broker can take its pairs at once instead of after the lease.
func (s *Store) StopBroker(ctx context.Context, name string, now time.Time) error {
	now = utc(now)
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Model(&BrokerRecord{}).Where("name = ?", name).Update("stopped_at", now).Error; err != nil {
			return err
		}
		return tx.Where("owner = ?", name).Delete(&Lease{}).Error
	})
	if err != nil {
		return fmt.Errorf("stop broker %s: %w", name, err)
	}
	return nil
}

// Brokers returns every broker record, by name.
func (s *Store) Brokers(ctx context.Context) ([]BrokerRecord, error) {
	var out []BrokerRecord
	if err := s.db.WithContext(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list brokers: %w", err)
	}
	return out, nil
}

// Lease says which broker delivers a pair's messages.
type Lease struct {
	FromTeam  string `gorm:"primaryKey"`
	ToTeam    string `gorm:"primaryKey"`
	Owner     string `gorm:"not null;index"`
	ExpiresAt time.Time
}

// AcquireLease gives the pair to owner until now+ttl when the lease is free,
// expired, or already owner's (then renewed), in one atomic statement. It
// returns the lease as it stands; held reports Owner == owner.
func (s *Store) AcquireLease(ctx context.Context, p Pair, owner string, now time.Time, ttl time.Duration) (l Lease, held bool, err error) {
	now = utc(now)
	want := Lease{FromTeam: p.From, ToTeam: p.To, Owner: owner, ExpiresAt: now.Add(ttl)}
	db := s.db.WithContext(ctx)
	err = db.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "from_team"}, {Name: "to_team"}},
		DoUpdates: clause.AssignmentColumns([]string{"owner", "expires_at"}),
		Where: clause.Where{Exprs: []clause.Expression{clause.Expr{
			SQL:  "leases.owner = excluded.owner OR leases.expires_at < ?",
			Vars: []any{now},
		}}},
	}).Create(&want).Error
	if err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease %s->%s for %s: %w", p.From, p.To, owner, err)
	}
	if err := db.Take(&l, "from_team = ? AND to_team = ?", p.From, p.To).Error; err != nil {
		return Lease{}, false, fmt.Errorf("acquire lease %s->%s for %s: %w", p.From, p.To, owner, notFound(err))
	}
	return l, l.Owner == owner, nil
}

// ReleaseLease gives up owner's lease on the pair; a lease another broker
// holds is left alone.
func (s *Store) ReleaseLease(ctx context.Context, p Pair, owner string) error {
	err := s.db.WithContext(ctx).Where("from_team = ? AND to_team = ? AND owner = ?", p.From, p.To, owner).Delete(&Lease{}).Error
	if err != nil {
		return fmt.Errorf("release lease %s->%s of %s: %w", p.From, p.To, owner, err)
	}
	return nil
}

// Leases returns every lease, by pair.
func (s *Store) Leases(ctx context.Context) ([]Lease, error) {
	var out []Lease
	if err := s.db.WithContext(ctx).Order("from_team").Order("to_team").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}

// Shared reports whether other brokers may use this store (Postgres).
func (s *Store) Shared() bool { return s.dsn != "" }

// CheckSchema reports whether the database holds everything this version
// of the store needs: every table and, on Postgres, the trigger that sends
// the queue's notes. Open migrates, so a failure here means someone else's
// migration (an older broker of the fleet) or a manual change undid it.
func (s *Store) CheckSchema(ctx context.Context) error {
	m := s.db.WithContext(ctx).Migrator()
	var missing []string
	for _, t := range []any{&Session{}, &Message{}, &PermissionRequest{}, &BrokerRecord{}, &Lease{}, &MessageTotal{}} {
		if !m.HasTable(t) {
			stmt := &gorm.Statement{DB: s.db}
			if err := stmt.Parse(t); err != nil {
				return fmt.Errorf("check schema: %w", err)
			}
			missing = append(missing, "table "+stmt.Schema.Table)
		}
	}
	if s.Shared() {
		var n int64
		err := s.db.WithContext(ctx).Raw("SELECT count(*) FROM pg_trigger WHERE tgname = 'switchboard_notify' AND tgrelid = 'messages'::regclass").
			Scan(&n).Error
		if err != nil {
			return fmt.Errorf("check schema: %w", err)
		}
		if n == 0 {
			missing = append(missing, "trigger switchboard_notify on messages")
		}
	}
	var totals bool
	if err := s.db.WithContext(ctx).Raw(totalsInstalled[s.Shared()]).Scan(&totals).Error; err != nil {
		return fmt.Errorf("check schema: %w", err)
	}
	if !totals {
		missing = append(missing, "the message_totals triggers on messages")
	}
	if len(missing) > 0 {
		return fmt.Errorf("check schema: missing %s (restart a broker of this version to migrate it)", strings.Join(missing, ", "))
	}
	return nil
}

// RoundTrip times n trivial queries and returns the median: the latency
// every store call pays at least once.
func (s *Store) RoundTrip(ctx context.Context, n int) (time.Duration, error) {
	times := make([]time.Duration, 0, max(n, 1))
	for range max(n, 1) {
		var one int
		t0 := time.Now()
		if err := s.db.WithContext(ctx).Raw("SELECT 1").Scan(&one).Error; err != nil {
			return 0, fmt.Errorf("round trip: %w", err)
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
