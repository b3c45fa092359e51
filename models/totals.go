package models

import (
	"context"
	"fmt"
	"slices"

	"gorm.io/gorm"
)

// MessageTotal is how many messages sent to ToTeam ended in Status, a final
// status. Messages are never deleted and a final status never changes, so a
// total only grows, by one in the statement that finishes a message: a
// trigger on messages keeps it, so no write path can forget it and it costs
// no round trip. MessageCounts reads these rows instead of counting a
// team's whole history, which took 30 ms a call at a million messages and
// grew with every ask.
type MessageTotal struct {
	ToTeam string        `gorm:"primaryKey"`
	Status MessageStatus `gorm:"primaryKey"`
	N      int64         `gorm:"not null"`
}

// finalCond selects messages in a final status; the triggers and the
// backfill repeat MessageStatus.Final in SQL.
const finalCond = "status IN ('answered', 'failed', 'expired')"

// totalsUpsert adds one to NEW's total.
const totalsUpsert = `INSERT INTO message_totals (to_team, status, n) VALUES (NEW.to_team, NEW.status, 1)
	ON CONFLICT (to_team, status) DO UPDATE SET n = message_totals.n + 1;`

// totalsTriggers are the triggers that keep message_totals, per engine. A
// message counts when it turns final, which every finishing write marks by
// setting finished_at; the trigger watches that column, not status, so that
// the writes that only take a message for delivery or retry it do not carry
// it (SQLite compiles a statement's triggers each time it prepares it, and
// the driver prepares on every call). Messages are inserted queued
// (EnqueueMessage), so inserts need no trigger.
var totalsTriggers = map[bool][]string{
	false: { // SQLite
		`CREATE TRIGGER message_totals_finish AFTER UPDATE OF finished_at ON messages
		WHEN NEW.` + finalCond + ` AND NOT OLD.` + finalCond + ` BEGIN ` + totalsUpsert + ` END`,
	},
	true: { // Postgres
		`CREATE OR REPLACE FUNCTION switchboard_message_totals() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.` + finalCond + ` AND NOT OLD.` + finalCond + ` THEN
				` + totalsUpsert + `
			END IF;
			RETURN NULL;
		END $$`,
		`CREATE TRIGGER message_totals AFTER UPDATE OF finished_at ON messages
		FOR EACH ROW EXECUTE FUNCTION switchboard_message_totals()`,
	},
}

// totalsInstalled tells whether every trigger totalsTriggers makes is
// there, per engine; totalsDrop removes them.
var (
	totalsInstalled = map[bool]string{
		false: `SELECT count(*) = 1 FROM sqlite_master WHERE type = 'trigger' AND name = 'message_totals_finish'`,
		true:  `SELECT count(*) = 1 FROM pg_trigger WHERE tgname = 'message_totals' AND tgrelid = 'messages'::regclass`,
	}
	totalsDrop = map[bool][]string{
		false: {`DROP TRIGGER IF EXISTS message_totals_finish`},
		true:  {`DROP TRIGGER IF EXISTS message_totals ON messages`},
	}
)

// migrateTotals creates message_totals and its triggers where they are
// missing, and fills it from the messages already stored, in one
// transaction: a message finished meanwhile is counted by the backfill or
// by the trigger, never by both. On Postgres migrate holds the schema lock
// around it.
func migrateTotals(db *gorm.DB, postgres bool) error {
	if db.Migrator().HasTable(&MessageTotal{}) {
		var installed bool
		if err := db.Raw(totalsInstalled[postgres]).Scan(&installed).Error; err != nil {
			return fmt.Errorf("migrate schema: message totals: %w", err)
		}
		if installed {
			return nil
		}
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.AutoMigrate(&MessageTotal{}); err != nil {
			return err
		}
		for _, ddl := range slices.Concat(totalsDrop[postgres], totalsTriggers[postgres]) {
			if err := tx.Exec(ddl).Error; err != nil {
				return err
			}
		}
		return recountTotals(tx)
	})
	if err != nil {
		return fmt.Errorf("migrate schema: message totals: %w", err)
	}
	return nil
}

// recountTotals sets message_totals from a count of the messages.
func recountTotals(tx *gorm.DB) error {
	if err := tx.Exec(`DELETE FROM message_totals`).Error; err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO message_totals (to_team, status, n)
		SELECT to_team, status, COUNT(*) FROM messages WHERE ` + finalCond + ` GROUP BY to_team, status`).Error
}

// MessageCounts counts the messages sent to team by status; an empty team
// counts every message. Final statuses come from message_totals, the
// queued and running ones from idx_messages_unfinished, in one statement
// so that a message finishing meanwhile is counted once.
func (s *Store) MessageCounts(ctx context.Context, team string) (map[MessageStatus]int64, error) {
	totals := `SELECT status AS grp, CAST(SUM(n) AS BIGINT) AS n FROM message_totals`
	live := `SELECT status AS grp, COUNT(*) AS n FROM messages WHERE ` + unfinishedCond
	var args []any
	if team != "" {
		totals += ` WHERE to_team = ?`
		live += ` AND to_team = ?`
		args = []any{team, team}
	}
	var rows []struct {
		Grp string
		N   int64
	}
	q := totals + ` GROUP BY status UNION ALL ` + live + ` GROUP BY status`
	if err := s.read(ctx).Raw(q, args...).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("message counts for %q: %w", team, err)
	}
	counts := make(map[MessageStatus]int64, len(rows))
	for _, r := range rows {
		if r.N > 0 {
			counts[MessageStatus(r.Grp)] += r.N
		}
	}
	return counts, nil
}
