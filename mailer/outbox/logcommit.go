package outbox

import (
	"os"
	"sync"
)

// committer group-commits appends to the spool's log: a caller that finds
// no write in progress leads a round that writes every record queued so
// far with one write and one fsync; callers that arrive while it runs wait
// and share the next round. A caller returns once the fsync covering its
// record has completed, so under load each fsync carries many messages,
// and with a single caller nothing waits for a batch to fill.
//
// Records nobody needs to wait for (appendAsync: a delivery's done record)
// join the next round without their caller waiting for it; when no caller
// is left to lead that round, a background goroutine does (drain).
type committer struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []*logReq
	running bool
	closed  bool
	fsyncs  uint64
	drains  sync.WaitGroup // background leaders (drain)
	// asyncMax bounds the async records not yet on disk (asyncOut);
	// beyond it appendAsync waits like append. Not positive: always waits.
	asyncMax, asyncOut int
	// sync makes a segment's contents durable; replaceable in tests.
	sync func(*os.File) error
	buf  []byte // the leader's write buffer
}

// logReq is one caller's records and, once done, where they landed.
type logReq struct {
	b     []byte
	async bool // appendAsync: nobody waits for it
	msgs  int  // message records in b, which the caller will index
	seg   *segment
	base  int64 // offset of b in seg
	err   error
	done  bool
}

func (c *committer) init() {
	c.cond = sync.NewCond(&c.mu)
	c.sync = (*os.File).Sync
}

// append writes b, holding msgs message records, to the log and returns
// the segment and offset it was written at, once it is durable. The caller
// must then index the msgs records (Dir.put).
func (c *committer) append(d *Dir, b []byte, msgs int) (*segment, int64, error) {
	r := &logReq{b: b, msgs: msgs}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, 0, ErrClosed
	}
	c.pending = append(c.pending, r)
	for !r.done {
		if c.running {
			c.cond.Wait()
			continue
		}
		c.running = true
		c.round(d)
		c.running = false
		c.handOver(d)
		c.cond.Broadcast()
	}
	c.mu.Unlock()
	return r.seg, r.base, r.err
}

// round writes and fsyncs every pending record and marks their requests
// done. Called under c.mu by the leader (c.running set), which it releases
// during the write.
func (c *committer) round(d *Dir) {
	batch := c.pending
	c.pending = nil
	c.fsyncs++
	c.mu.Unlock()
	c.flush(d, batch)
	c.mu.Lock()
	for _, q := range batch {
		q.done = true
		if q.async {
			c.asyncOut--
		}
	}
}

// appendAsync queues b, a record holding no message, for the next round and
// returns without waiting for it to be written: the record is as durable
// as if the caller had waited (the same round writes and fsyncs it), but
// the caller goes on meanwhile. An error of that round is not reported to
// the caller; b is then lost as if the process had died before writing
// it.
func (c *committer) appendAsync(d *Dir, b []byte) error {
	c.mu.Lock()
	if c.asyncOut >= c.asyncMax {
		c.mu.Unlock()
		_, _, err := c.append(d, b, 0)
		return err
	}
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.asyncOut++
	c.pending = append(c.pending, &logReq{b: b, async: true})
	if !c.running {
		c.running = true
		c.drains.Add(1)
		go c.drain(d)
	}
	return nil
}

// handOver starts a background leader when the records left pending are
// all async, whose callers will not lead a round. Under c.mu, with no round
// running.
func (c *committer) handOver(d *Dir) {
	if len(c.pending) == 0 {
		return
	}
	for _, q := range c.pending {
		if !q.async {
			return // its caller is waiting and leads the next round
		}
	}
	c.running = true
	if c.closed {
		// close may be past waiting for drains: write them here.
		for len(c.pending) > 0 {
			c.round(d)
		}
		c.running = false
		return
	}
	c.drains.Add(1)
	go c.drain(d)
}

// drain leads rounds until nothing is pending; waiting callers whose
// records it writes are released as if they had led.
func (c *committer) drain(d *Dir) {
	defer c.drains.Done()
	c.mu.Lock()
	for len(c.pending) > 0 {
		c.round(d)
		c.cond.Broadcast()
	}
	c.running = false
	c.cond.Broadcast()
	c.mu.Unlock()
	// The acks just written may have emptied the current segment, which
	// trim could not detach while this round ran.
	d.trim()
}

// flush writes and fsyncs one round; only the leader runs it.
func (c *committer) flush(d *Dir, batch []*logReq) {
	fail := func(err error) {
		for _, r := range batch {
			r.err = err
		}
	}
	var seg *segment
	var err error
	for try := 0; try < 2; try++ {
		// A segment whose path no longer leads to it is abandoned and a
		// new one started; if that fails too, the spool itself is gone.
		if seg, err = d.current(); err == nil {
			if err = seg.check(d); err != nil {
				d.mu.Lock()
				if d.cur == seg {
					d.cur = nil
				}
				d.mu.Unlock()
			}
		}
		if err == nil {
			break
		}
	}
	if err != nil {
		fail(err)
		return
	}
	buf := batch[0].b
	if len(batch) > 1 {
		c.buf = c.buf[:0]
		for _, r := range batch {
			c.buf = append(c.buf, r.b...)
		}
		buf = c.buf
	}
	if _, err = seg.f.WriteAt(buf, seg.size); err == nil {
		err = c.sync(seg.f)
	}
	if err != nil {
		// The tail of this segment is now unknown (and after a failed
		// fsync the kernel may have dropped the pages): never append to
		// it again, and try to take the unacknowledged records back out.
		_ = seg.f.Truncate(seg.size)
		d.mu.Lock()
		if d.cur == seg {
			d.cur = nil
		}
		d.mu.Unlock()
		fail(err)
		return
	}
	off := seg.size
	d.mu.Lock()
	for _, r := range batch {
		r.seg, r.base = seg, off
		off += int64(len(r.b))
		seg.unindexed += r.msgs
	}
	d.mu.Unlock()
	seg.size = off
	if cap(c.buf) > 4<<20 {
		c.buf = nil // do not pin a burst's buffer
	}
}

// close waits for a round in progress, and for the async records pending,
// and refuses later appends.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	for c.running {
		c.cond.Wait()
	}
	c.mu.Unlock()
	c.drains.Wait() // the trim after the last background round
}

// Fsyncs reports how many rounds (one fsync each) were run.
func (c *committer) Fsyncs() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fsyncs
}
