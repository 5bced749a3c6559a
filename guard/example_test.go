package guard_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/formguard/formguard/guard"
)

// A contact form whose mail can only go to support@, from the site itself.
func ExampleNew() {
	g, err := guard.New(guard.Config{
		Domain:  "example.test",
		Origins: []string{"https://example.test"},
		Forms: map[string]guard.Form{
			"contact": {To: []string{"support@example.test"}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	fmt.Println(g.Domain())
	// Output: example.test
}

// Wrapping an existing contact handler: it only ever sees accepted posts.
func ExampleGuard_Middleware() {
	g, err := guard.New(guard.Config{
		Domain:  "example.test",
		Origins: []string{"https://example.test"},
		Forms:   map[string]guard.Form{"contact": {To: []string{"support@example.test"}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	contact := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := guard.SubmissionFrom(r.Context())
		fmt.Printf("mail to %v, Reply-To %s\n", s.Recipients, s.ReplyTo)
		guard.WriteSuccess(w, r, s)
	})
	mux := http.NewServeMux()
	mux.Handle("POST /contact", g.Middleware("contact")(contact))

	post := func(body string) {
		r := httptest.NewRequest("POST", "/contact", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "https://example.test")
		r.Header.Set("Accept", "application/json")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	post("name=Ada&email=ada%40example.org&message=Hello")
	post("name=Eve&email=eve%40example.org&message=spam&bcc=victim%40example.net")
	// Output:
	// mail to [support@example.test], Reply-To ada@example.org
	// 200
	// 400
}

// Check is framework-free: the gin adapter in examples/gin is built on it.
func ExampleGuard_Check() {
	g, _ := guard.New(guard.Config{
		Domain:  "example.test",
		Origins: []string{"https://example.test"},
		Forms:   map[string]guard.Form{"contact": {To: []string{"support@example.test"}}},
	})
	defer g.Close()
	r := httptest.NewRequest("POST", "/f/contact", strings.NewReader("name=Ada&email=ada%40example.org&message=Hi&from=ceo%40example.test"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://example.test")
	_, err := g.Check(httptest.NewRecorder(), r)
	e := guard.AsError(err)
	fmt.Println(e.Status, e.Code)
	// Output: 400 forbidden_field
}
