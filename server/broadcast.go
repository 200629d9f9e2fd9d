package server

import "sync"

// Broadcaster is a Changes that anyone can notify: the events endpoint calls
// Notify after each stored batch, and every open /events/live stream hears it.
// Notifications are coalesced: a subscriber that has not read the last one
// does not queue another.
type Broadcaster struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// NewBroadcaster returns a Broadcaster with no subscribers.
func NewBroadcaster() *Broadcaster { return &Broadcaster{subs: map[chan struct{}]struct{}{}} }

// Subscribe implements Changes.
func (b *Broadcaster) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}
}

// Notify tells every subscriber that data changed.
func (b *Broadcaster) Notify() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
