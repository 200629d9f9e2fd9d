package server

import "testing"

func TestBroadcaster(t *testing.T) {
	b := NewBroadcaster()
	a, stopA := b.Subscribe()
	c, stopC := b.Subscribe()
	b.Notify()
	b.Notify() // coalesced
	for _, ch := range []<-chan struct{}{a, c} {
		select {
		case <-ch:
		default:
			t.Fatal("subscriber not notified")
		}
		select {
		case <-ch:
			t.Fatal("two notifications queued; want them coalesced")
		default:
		}
	}
	stopA()
	b.Notify()
	select {
	case <-a:
		t.Fatal("unsubscribed channel notified")
	default:
	}
	<-c
	stopC()
}
