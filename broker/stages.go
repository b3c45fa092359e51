package broker

import "time"

// Stage is a point on a message's way through the broker. Options.Stages
// hears of each, so that a benchmark can tell where an ask's own time goes
// (internal/bench publishes the breakdown of the 20-teams load): points,
// not durations, so the observer subtracts what it needs.
type Stage uint8

const (
	// StageSend: Send was called (reported with the message id once
	// stored, with the time of the call).
	StageSend Stage = iota
	// StageStored: EnqueueMessage committed the message.
	StageStored
	// StageHead: the pair's worker read it as the head of its queue.
	StageHead
	// StageBegun: BeginTurn committed; the message is on record as being
	// delivered.
	StageBegun
	// StageWritten: the turn starts: the message is about to be written to
	// Claude's stdin.
	StageWritten
	// StageResult: Claude's result line was read; the turn ended.
	StageResult
	// StageEnded: EndTurn committed.
	StageEnded
	// StageFinished: CompleteMessage committed; the waiters are told next.
	StageFinished
	// StageReplied: Send has the outcome and returns it.
	StageReplied
)

// StageNames names the stages, in order, for reports.
var StageNames = [...]string{"send", "stored", "head", "begun", "written", "result", "ended", "finished", "replied"}

// stage reports that message id reached s at at; a no-op unless
// Options.Stages is set.
func (b *Broker) stage(id uint64, s Stage, at time.Time) {
	if b.stages != nil {
		b.stages(id, s, at)
	}
}
