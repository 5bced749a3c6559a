package dnscheck_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// zoneDir holds the zone files the loopback DNS server answers from. A file
// named <origin>.zone holds the zone of <origin>.
const zoneDir = "../../testdata/dns"

// zoneServer is a real DNS server on 127.0.0.1 (UDP and TCP on one port)
// answering authoritatively from zone files. UDP answers larger than the
// client's EDNS(0) buffer (512 bytes without EDNS) are truncated with the TC
// bit, like a real server, so clients must retry over TCP.
type zoneServer struct {
	Addr string

	records map[string][]dns.RR // lower-cased owner name -> records
	names   map[string]bool     // owner names and their ancestors (empty non-terminals)

	udp, tcp *dns.Server

	mu      sync.Mutex
	queries []query
}

type query struct {
	name  string
	qtype uint16
	tcp   bool
}

// startZoneServer loads every zone file in zoneDir and serves it until the
// test ends.
func startZoneServer(t testing.TB) *zoneServer {
	t.Helper()
	z, err := newZoneServer(zoneDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(z.Close)
	return z
}

func newZoneServer(dir string) (*zoneServer, error) {
	z := &zoneServer{records: map[string][]dns.RR{}, names: map[string]bool{}}
	files, err := filepath.Glob(filepath.Join(dir, "*.zone"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no zone files in %s: %v", dir, err)
	}
	for _, f := range files {
		if err := z.load(f); err != nil {
			return nil, err
		}
	}
	// UDP and TCP must share a port; a free UDP port may be taken for
	// TCP, so try a few.
	for attempt := 0; attempt < 10; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		l, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			continue
		}
		z.Addr = pc.LocalAddr().String()
		z.udp = &dns.Server{PacketConn: pc, Handler: z}
		z.tcp = &dns.Server{Listener: l, Handler: z}
		for _, s := range []*dns.Server{z.udp, z.tcp} {
			started := make(chan struct{})
			s.NotifyStartedFunc = func() { close(started) }
			go s.ActivateAndServe()
			<-started
		}
		return z, nil
	}
	return nil, errors.New("no free port for UDP and TCP")
}

func (z *zoneServer) load(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	origin := dns.Fqdn(strings.TrimSuffix(filepath.Base(file), ".zone"))
	zp := dns.NewZoneParser(f, origin, file)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		z.records[name] = append(z.records[name], rr)
		labels := dns.SplitDomainName(name)
		for i := range labels {
			z.names[dns.Fqdn(strings.Join(labels[i:], "."))] = true
		}
	}
	return zp.Err()
}

// Close stops both listeners.
func (z *zoneServer) Close() {
	z.udp.Shutdown()
	z.tcp.Shutdown()
}

// ServeDNS answers from the loaded zones: the records of the asked type,
// NXDOMAIN for names that do not exist, an empty NOERROR answer (no data)
// for names that exist without that type.
func (z *zoneServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	_, isTCP := w.LocalAddr().(*net.TCPAddr)
	if len(req.Question) == 1 {
		q := req.Question[0]
		name := strings.ToLower(q.Name)
		z.mu.Lock()
		z.queries = append(z.queries, query{name, q.Qtype, isTCP})
		z.mu.Unlock()
		switch {
		case strings.HasSuffix(name, "servfail.test."):
			// A broken zone: every question fails.
			m.Rcode = dns.RcodeServerFailure
		case !z.names[name]:
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range z.records[name] {
			if rr.Header().Rrtype == q.Qtype {
				m.Answer = append(m.Answer, dns.Copy(rr))
			}
		}
	} else {
		m.Rcode = dns.RcodeFormatError
	}
	if !isTCP {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
			m.SetEdns0(opt.UDPSize(), false)
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// asked reports how many times name/qtype was asked over UDP and over TCP.
func (z *zoneServer) asked(name string, qtype uint16) (udp, tcp int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, q := range z.queries {
		if q.name == dns.Fqdn(name) && q.qtype == qtype {
			if q.tcp {
				tcp++
			} else {
				udp++
			}
		}
	}
	return udp, tcp
}
