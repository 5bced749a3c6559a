package attack

import (
	"errors"
	"net/smtp"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func TestSinkRecordsAndTempFails(t *testing.T) {
	s, err := StartSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	send := func() error {
		return smtp.SendMail(s.Addr, nil, "bounces@example.test", []string{"a@r.test", "b@r.test"},
			[]byte("Subject: hi\r\n\r\nbody\r\n"))
	}
	s.SetTempFail(true)
	err = send()
	var te *textproto.Error
	if !errors.As(err, &te) || te.Code != 451 {
		t.Fatalf("while failing: err = %v, want a 451", err)
	}
	if s.Len() != 0 || s.Refused() != 1 {
		t.Fatalf("while failing: %d kept, %d refused", s.Len(), s.Refused())
	}
	s.SetTempFail(false)
	if err := send(); err != nil {
		t.Fatal(err)
	}
	if !s.WaitQuiet(1, 10*time.Millisecond, 5*time.Second) {
		t.Fatal("message not seen")
	}
	m := s.Messages()[0]
	if m.MailFrom != "bounces@example.test" || strings.Join(m.RcptTo, ",") != "a@r.test,b@r.test" || !strings.Contains(string(m.Data), "body") {
		t.Fatalf("recorded %+v", m)
	}
}
