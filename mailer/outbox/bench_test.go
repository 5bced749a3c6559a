package outbox

import (
	"context"
	"testing"
)

// BenchmarkDirEnqueue measures durable enqueues (4 KiB messages): serial,
// and from many goroutines, where directory fsyncs are group-committed.
//
//	go test ./mailer/outbox -run '^$' -bench DirEnqueue
func BenchmarkDirEnqueue(b *testing.B) {
	raw := make([]byte, 4<<10)
	newMsg := func() *Message { return &Message{From: "a@example.test", To: []string{"b@x.example"}, Raw: raw} }
	b.Run("serial", func(b *testing.B) {
		d, err := NewDir(DirConfig{Path: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := d.Enqueue(context.Background(), newMsg()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(d.queueSync.Fsyncs())/float64(b.N), "dirfsyncs/op")
	})
	b.Run("parallel", func(b *testing.B) {
		d, err := NewDir(DirConfig{Path: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		defer d.Close()
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := d.Enqueue(context.Background(), newMsg()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(d.queueSync.Fsyncs())/float64(b.N), "dirfsyncs/op")
	})
}
