package dnscheck_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/formguard/formguard/mailer/dnscheck"
)

func newTestResolver(t *testing.T, z *zoneServer) *dnscheck.Resolver {
	t.Helper()
	r, err := dnscheck.NewResolver(z.Addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolverTXT(t *testing.T) {
	z := startZoneServer(t)
	r := newTestResolver(t, z)
	ctx := context.Background()
	tests := []struct {
		name     string
		qname    string
		want     []string
		notFound bool
	}{
		{name: "a multi-string record is joined without separators", qname: "spf-split.test",
			want: []string{"v=spf1 ip4:192.0.2.10 -all"}},
		{name: "a name without TXT records is no data, not NXDOMAIN", qname: "mx1.clean.test", want: []string{}},
		{name: "an empty non-terminal is no data, not NXDOMAIN", qname: "_domainkey.clean.test", want: []string{}},
		{name: "a name that does not exist is NXDOMAIN", qname: "nope.clean.test", notFound: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.LookupTXT(ctx, tt.qname)
			if tt.notFound {
				if !dnscheck.IsNotFound(err) {
					t.Fatalf("err = %v, want NXDOMAIN", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("TXT %s = %q, want %q", tt.qname, got, tt.want)
			}
		})
	}
}

func TestResolverOtherTypes(t *testing.T) {
	z := startZoneServer(t)
	r := newTestResolver(t, z)
	ctx := context.Background()

	mxs, err := r.LookupMX(ctx, "spf-mx.test")
	if err != nil {
		t.Fatal(err)
	}
	if len(mxs) != 2 || mxs[0].Pref != 10 || mxs[1].Host != "relay.example.net." {
		t.Errorf("MX = %+v, want mx1 (10) then relay.example.net (20)", mxs)
	}

	ips, err := r.LookupIPAddr(ctx, "relay.example.net")
	if err != nil || len(ips) != 1 || !ips[0].IP.Equal(net.ParseIP("192.0.2.10")) {
		t.Errorf("relay.example.net = %v, %v; want 192.0.2.10", ips, err)
	}
	if _, err := r.LookupIPAddr(ctx, "nope.example.net"); !dnscheck.IsNotFound(err) {
		t.Errorf("nope.example.net: err = %v, want NXDOMAIN", err)
	}

	names, err := r.LookupAddr(ctx, "192.0.2.10")
	if err != nil || !slices.Equal(names, []string{"relay.example.net."}) {
		t.Errorf("PTR 192.0.2.10 = %v, %v", names, err)
	}
	if _, err := r.LookupAddr(ctx, "not an address"); err == nil {
		t.Errorf("PTR of a non-address succeeded")
	}
}

func TestResolverServerFailureIsTemporary(t *testing.T) {
	z := startZoneServer(t)
	r := newTestResolver(t, z)
	_, err := r.LookupTXT(context.Background(), "servfail.test")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTemporary || de.IsNotFound {
		t.Fatalf("err = %#v, want a temporary *net.DNSError", err)
	}
	_, err = dnscheck.Check(context.Background(), dnscheck.Config{Domain: "servfail.test", Server: z.Addr})
	if err == nil || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("Check err = %v, want the SERVFAIL reported", err)
	}
}

func TestNewResolver(t *testing.T) {
	tests := []struct {
		name   string
		server string
		want   string
	}{
		{"a bare IPv4 address gets port 53", "192.0.2.53", "192.0.2.53:53"},
		{"a bare IPv6 address gets port 53", "2001:db8::53", "[2001:db8::53]:53"},
		{"a host and port are kept", "127.0.0.1:5353", "127.0.0.1:5353"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := dnscheck.NewResolver(tt.server, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Servers(); !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("Servers() = %v, want [%s]", got, tt.want)
			}
		})
	}
	t.Run("no server means the system's resolvers", func(t *testing.T) {
		if _, err := os.Stat(dnscheck.DefaultResolvConf); err != nil {
			t.Skipf("no %s on this machine", dnscheck.DefaultResolvConf)
		}
		r, err := dnscheck.NewResolver("", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Servers()) == 0 {
			t.Fatal("no servers read from resolv.conf")
		}
	})
	t.Run("a negative timeout is refused", func(t *testing.T) {
		if _, err := dnscheck.NewResolver("127.0.0.1:53", -1); err == nil {
			t.Fatal("accepted a negative timeout")
		}
	})
}

// A *net.Resolver pointed at the loopback server can replace the built-in
// client: the Resolver field takes anything with its method set.
func TestCheckWithNetResolver(t *testing.T) {
	z := startZoneServer(t)
	nr := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, z.Addr)
	}}
	rep, err := dnscheck.Check(context.Background(), dnscheck.Config{
		Domain: "spf-mx.test", Selector: "s1", PublicKey: loadKey(t, "rsa2048"),
		RelayIPs: []netip.Addr{relayIP}, Resolver: nr,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Fatalf("findings through net.Resolver:\n%s", text(t, rep))
	}
}

func TestResolverRetriesALostDatagram(t *testing.T) {
	z := startZoneServer(t)
	var seen atomic.Int32
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A server that loses the first query and answers the rest.
	lossy := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		if seen.Add(1) == 1 {
			return
		}
		z.ServeDNS(w, req)
	})}
	started := make(chan struct{})
	lossy.NotifyStartedFunc = func() { close(started) }
	go lossy.ActivateAndServe()
	<-started
	defer lossy.Shutdown()

	r, err := dnscheck.NewResolver(pc.LocalAddr().String(), 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	txts, err := r.LookupTXT(context.Background(), "clean.test")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(txts, "v=spf1 ip4:192.0.2.10 -all") {
		t.Fatalf("TXT clean.test = %q", txts)
	}
	if n := seen.Load(); n != 2 {
		t.Fatalf("server saw %d queries, want 2 (one lost, one answered)", n)
	}
}
