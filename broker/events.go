package broker

import "sync"

// changes fans "something changed" out to subscribers (the dashboard). A
// signal is a hint, not an event: it carries nothing, a subscriber that is
// behind gets one pending signal however many changes happened meanwhile
// (1-buffered, coalescing), and notifying never blocks a worker or a turn.
type changes struct {
	mu   sync.Mutex
	next int
	subs map[int]chan struct{}
}

func (c *changes) subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = make(map[int]chan struct{})
	}
	id := c.next
	c.next++
	c.subs[id] = ch
	c.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			c.mu.Lock()
			delete(c.subs, id)
			c.mu.Unlock()
			close(ch)
		})
	}
}

func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Changes subscribes to the broker's state changes: a pair's process
// starting, going idle, answering or stopping, a message queued, started or
// finished, a permission request created or decided. signal holds at most
// one pending value; on it, read the state you show. After stop returns
// nothing more is sent and signal is closed.
func (b *Broker) Changes() (signal <-chan struct{}, stop func()) { return b.events.subscribe() }

// changed tells every subscriber that the broker's state may have changed.
// It never blocks, so callers may hold a pair's lock.
func (b *Broker) changed() { b.events.notify() }

// Changes subscribes to new records in the ring, with the same contract as
// Broker.Changes.
func (r *LogRing) Changes() (signal <-chan struct{}, stop func()) { return r.events.subscribe() }
