package outbox

import "sync"

// groupSync coalesces directory fsyncs: callers that renamed or unlinked
// entries while another caller's fsync was running share the next fsync
// instead of issuing one each (group commit). An fsync of a directory
// makes durable every entry change completed before it starts, so a caller
// is done once an fsync that began after its change has succeeded.
type groupSync struct {
	path string
	sync func(path string) error // syncDir; replaceable in tests

	mu      sync.Mutex
	cond    *sync.Cond
	changed uint64 // changes registered so far
	synced  uint64 // changes known durable
	running bool
	fsyncs  uint64 // fsyncs issued (for tests and metrics)
}

func newGroupSync(path string) *groupSync {
	g := &groupSync{path: path, sync: syncDir}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// Sync returns once the caller's completed directory changes are durable.
func (g *groupSync) Sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.changed++
	mine := g.changed
	for g.synced < mine {
		if g.running {
			g.cond.Wait()
			continue
		}
		// Lead a round covering every change registered so far.
		g.running = true
		target := g.changed
		g.fsyncs++
		g.mu.Unlock()
		err := g.sync(g.path)
		g.mu.Lock()
		g.running = false
		if err == nil && target > g.synced {
			g.synced = target
		}
		g.cond.Broadcast()
		if err != nil {
			return err // waiters lead their own round and see their own error
		}
	}
	return nil
}

// Fsyncs reports how many directory fsyncs were issued.
func (g *groupSync) Fsyncs() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fsyncs
}
