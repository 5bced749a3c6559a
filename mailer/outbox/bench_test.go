package outbox

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkDirEnqueue measures durable enqueues of 3 KiB messages (a
// rendered contact message is 2.5-3 KiB) from 1, 16 and 64 goroutines.
// Every Enqueue returns only once its record is fsynced; concurrent ones
// share the fsync (group commit), which fsyncs/msg shows.
//
//	go test ./mailer/outbox -run '^$' -bench DirEnqueue
func BenchmarkDirEnqueue(b *testing.B) {
	raw := make([]byte, 3<<10)
	for i := range raw {
		raw[i] = 'a' + byte(i%26)
	}
	newMsg := func() *Message { return &Message{From: "a@example.test", To: []string{"b@x.example"}, Raw: raw} }
	for _, g := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("goroutines-%d", g), func(b *testing.B) {
			d, err := NewDir(DirConfig{Path: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			var dirSyncs atomic.Int64
			d.dirSync = func(p string) error { dirSyncs.Add(1); return syncDir(p) }
			b.ReportAllocs()
			b.SetParallelism(max(1, g/2)) // GOMAXPROCS is 2 on the development machine
			if g == 1 {
				for b.Loop() {
					if err := d.Enqueue(context.Background(), newMsg()); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := d.Enqueue(context.Background(), newMsg()); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			b.ReportMetric(float64(d.Fsyncs()+uint64(dirSyncs.Load()))/float64(b.N), "fsyncs/msg")
		})
	}
}
