package mailer_test

import (
	"context"
	"fmt"
	"github.com/formguard/formguard/post"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/formguard/formguard/mailer"
	"github.com/formguard/formguard/mailer/outbox"
)

// A Mailer with a directory outbox and the file transport: Deliver queues
// durably, Start delivers in the background, Close stops it.
func Example() {
	dir, _ := os.MkdirTemp("", "formguard-example")
	defer os.RemoveAll(dir)

	keyPEM, err := mailer.GenerateKey("ed25519", 0)
	if err != nil {
		log.Fatal(err)
	}
	key, err := mailer.ParseKey(keyPEM)
	if err != nil {
		log.Fatal(err)
	}
	spool, err := outbox.NewDir(outbox.DirConfig{Path: filepath.Join(dir, "spool")})
	if err != nil {
		log.Fatal(err)
	}
	files, err := mailer.NewFile(mailer.FileConfig{Dir: filepath.Join(dir, "sent")})
	if err != nil {
		log.Fatal(err)
	}
	m, err := mailer.New(mailer.Config{
		Domain:    "example.test",
		SiteName:  "Example",
		From:      "no-reply@example.test",
		Bounce:    "bounces@example.test",
		DKIM:      mailer.DKIM{Selector: "s1", Signer: key},
		Transport: files, // or mailer.NewSMTP(mailer.SMTPConfig{Addr: "relay:587", ...})
		Outbox:    spool,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	err = m.Deliver(context.Background(), &post.Submission{
		ID: "k3J9x", Form: "contact", Kind: post.Contact,
		Name: "Ada", ReplyTo: "ada@visitor.example", Subject: "Hello",
		Message: "Hi!", Recipients: []string{"support@example.test"}, Received: time.Now(),
	})
	if err != nil {
		log.Fatal(err)
	}
	m.Flush(context.Background()) // normally: m.Start(ctx) once at startup
	sent, _ := filepath.Glob(filepath.Join(dir, "sent", "*.eml"))
	fmt.Println("delivered:", len(sent))
	// Output: delivered: 1
}

// The DNS record to publish for a new key.
func ExampleDNSRecord() {
	keyPEM, _ := mailer.GenerateKey("ed25519", 0)
	key, _ := mailer.ParseKey(keyPEM)
	name, txt, err := mailer.DNSRecord("s1", "example.test", key.Public())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(name)
	fmt.Println(txt[:len("v=DKIM1; k=ed25519; p=")])
	// Output:
	// s1._domainkey.example.test
	// v=DKIM1; k=ed25519; p=
}

// Refusing a message that is not aligned with the site's domain.
func ExamplePolicy_Check() {
	p := &mailer.Policy{Domain: "example.test"}
	raw := []byte("From: <ceo@bank.example>\r\nTo: a@x.example\r\n\r\nhi\r\n")
	err := p.Check(mailer.Envelope{From: "bounces@example.test", To: []string{"a@x.example"}}, raw)
	fmt.Println(err)
	// Output: mailer: policy from: From domain "bank.example" is not example.test
}
