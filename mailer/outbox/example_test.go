package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/formguard/formguard/mailer/outbox"
)

// A directory spool and a worker whose Handler is the delivery step (the
// mailer's SMTP send). Errors with Temporary() == false are dead-lettered;
// others are retried with backoff.
func ExampleNewWorker() {
	dir, _ := os.MkdirTemp("", "spool")
	defer os.RemoveAll(dir)
	q, err := outbox.NewDir(outbox.DirConfig{Path: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	w, err := outbox.NewWorker(outbox.WorkerConfig{
		Queue: q,
		Handler: func(ctx context.Context, m *outbox.Message) error {
			fmt.Printf("sending %d bytes from %s to %v\n", len(m.Raw), m.From, m.To)
			return nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	err = q.Enqueue(context.Background(), &outbox.Message{
		From: "bounces@example.test", To: []string{"staff@example.test"},
		Raw: []byte("Subject: hi\r\n\r\nhello\r\n"),
	})
	if err != nil {
		log.Fatal(err)
	}
	w.Process(context.Background()) // in a service: w.Start(ctx) ... w.Close()
	st, _ := q.Stats(context.Background(), time.Now())
	fmt.Println("left in queue:", st.Depth)
	// Output:
	// sending 22 bytes from bounces@example.test to [staff@example.test]
	// left in queue: 0
}
