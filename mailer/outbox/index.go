package outbox

import "container/heap"

// entry states
const (
	stReady = iota
	stDelayed
	stInflight
	stGone
)

type dirEntry struct {
	meta  Message // Raw is not kept in memory
	state int
	seg   *segment
	off   int64 // Raw's offset in seg
	n     int   // Raw's length
	hidx  int   // index in delayed
}

// schedule puts e where Claim finds it: ready when it has no due time,
// otherwise in the delayed heap. The caller holds d.mu (or owns d).
func (d *Dir) schedule(e *dirEntry) {
	if e.meta.NextAttempt.IsZero() {
		e.state = stReady
		d.ready = append(d.ready, e)
		return
	}
	e.state = stDelayed
	heap.Push(&d.delayed, e)
}

// unschedule takes e out of the ready list or the heap; the caller holds
// d.mu.
func (d *Dir) unschedule(e *dirEntry) {
	if e.state == stDelayed {
		heap.Remove(&d.delayed, e.hidx)
	}
	if e.state == stInflight {
		d.inflight--
	}
	e.state = stGone // a stale pointer left in ready is skipped
}

// put indexes a freshly written record of m at seg/off and schedules it;
// the caller holds d.mu.
func (d *Dir) put(m *Message, seg *segment, off int64) {
	if old := d.index[m.ID]; old != nil {
		d.unschedule(old)
		old.seg.live--
	}
	e := &dirEntry{meta: *m, seg: seg, off: off, n: len(m.Raw)}
	e.meta.Raw = nil
	seg.live++
	seg.unindexed--
	d.index[m.ID] = e
	d.schedule(e)
}

// drop removes e from the index; the caller holds d.mu.
func (d *Dir) drop(e *dirEntry) {
	d.unschedule(e)
	e.seg.live--
	if d.index[e.meta.ID] == e {
		delete(d.index, e.meta.ID)
	}
}

// entryHeap orders delayed entries by due time, then enqueue time.
type entryHeap []*dirEntry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	a, b := &h[i].meta, &h[j].meta
	if !a.NextAttempt.Equal(b.NextAttempt) {
		return a.NextAttempt.Before(b.NextAttempt)
	}
	return a.Enqueued.Before(b.Enqueued)
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*dirEntry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
