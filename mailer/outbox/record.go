package outbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
)

// Log segments.
//
// The directory spool appends messages to segment files, queue/<seq>.log,
// so that many messages share one write and one fsync (group commit). A
// segment is a sequence of records, each a header line and a payload:
//
//	formguard-outbox 2 <kind> <payload length> <CRC-32C of payload, 8 hex>\n
//	<payload>
//
// kind "m" is a message: one line of JSON metadata (as in a dead letter), a
// newline, then the raw message. A later "m" record with the same ID
// supersedes an earlier one (a retry records its new attempt count and due
// time that way). Kind "d" (done) is the ID of a message that was
// delivered or dead-lettered. Replaying the segments in sequence order
// rebuilds the queue. The CRC lets a reader stop at a record torn by a
// crash: bytes after the last completed fsync were never acknowledged.
const (
	segMagic   = "formguard-outbox 2 "
	segExt     = ".log"
	recMessage = 'm'
	recDone    = 'd'
	// maxRecordHeader bounds the header line a reader scans for.
	maxRecordHeader = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errChecksum is a record whose payload does not match its checksum.
var errChecksum = fmt.Errorf("%w: record checksum mismatch", errCorrupt)

// appendRecordHeader appends the header line of a record of kind with
// payload p.
func appendRecordHeader(b []byte, kind byte, p []byte) []byte {
	b = append(b, segMagic...)
	b = append(b, kind, ' ')
	b = strconv.AppendInt(b, int64(len(p)), 10)
	b = append(b, ' ')
	var crc [8]byte
	hexCRC(crc[:], crc32.Checksum(p, castagnoli))
	b = append(b, crc[:]...)
	return append(b, '\n')
}

func hexCRC(dst []byte, v uint32) {
	const digits = "0123456789abcdef"
	for i := 7; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}

// appendMessageRecord appends m as an "m" record and returns the buffer and
// the offset of m.Raw within it.
func appendMessageRecord(b []byte, m *Message) ([]byte, int, error) {
	meta, err := json.Marshal(m)
	if err != nil {
		return b, 0, err
	}
	// The CRC covers meta, newline and raw; compute it without building
	// the payload twice.
	crc := crc32.Update(0, castagnoli, meta)
	crc = crc32.Update(crc, castagnoli, []byte{'\n'})
	crc = crc32.Update(crc, castagnoli, m.Raw)
	b = append(b, segMagic...)
	b = append(b, recMessage, ' ')
	b = strconv.AppendInt(b, int64(len(meta)+1+len(m.Raw)), 10)
	b = append(b, ' ')
	var h [8]byte
	hexCRC(h[:], crc)
	b = append(b, h[:]...)
	b = append(b, '\n')
	b = append(b, meta...)
	b = append(b, '\n')
	off := len(b)
	b = append(b, m.Raw...)
	return b, off, nil
}

// appendDoneRecord appends a "d" record for id.
func appendDoneRecord(b []byte, id string) []byte {
	b = appendRecordHeader(b, recDone, []byte(id))
	return append(b, id...)
}

// record is one decoded segment record.
type record struct {
	kind   byte
	msg    *Message // kind m: metadata, Raw set (a slice of the segment)
	rawOff int      // kind m: offset of Raw in the segment
	id     string   // kind d
}

// decodeRecord parses the record at the start of b and returns it with its
// total length. Any error means the rest of the segment is unusable (a
// write torn by a crash, or damage).
func decodeRecord(b []byte, base int) (record, int, error) {
	nl := bytes.IndexByte(b[:min(len(b), maxRecordHeader)], '\n')
	if nl < 0 || !bytes.HasPrefix(b, []byte(segMagic)) {
		return record{}, 0, fmt.Errorf("%w: bad record header", errCorrupt)
	}
	f := bytes.Fields(b[len(segMagic):nl])
	if len(f) != 3 || len(f[0]) != 1 || len(f[2]) != 8 {
		return record{}, 0, fmt.Errorf("%w: bad record header", errCorrupt)
	}
	n, err := strconv.Atoi(string(f[1]))
	if err != nil || n < 0 || n > len(b)-nl-1 {
		return record{}, 0, fmt.Errorf("%w: record length", errCorrupt)
	}
	crc, err := strconv.ParseUint(string(f[2]), 16, 32)
	if err != nil {
		return record{}, 0, fmt.Errorf("%w: record checksum", errCorrupt)
	}
	p := b[nl+1 : nl+1+n]
	total := nl + 1 + n
	if crc32.Checksum(p, castagnoli) != uint32(crc) {
		// The header is intact, so the record's length is known: the
		// caller may skip it.
		return record{}, total, errChecksum
	}
	switch f[0][0] {
	case recDone:
		if !validID(string(p)) {
			return record{}, 0, fmt.Errorf("%w: done record ID", errCorrupt)
		}
		return record{kind: recDone, id: string(p)}, total, nil
	case recMessage:
		i := bytes.IndexByte(p, '\n')
		if i < 0 || i > maxMetaLen {
			return record{}, 0, fmt.Errorf("%w: no metadata line", errCorrupt)
		}
		m := new(Message)
		if err := json.Unmarshal(p[:i], m); err != nil {
			return record{}, 0, fmt.Errorf("%w: metadata: %v", errCorrupt, err)
		}
		m.Raw = p[i+1:]
		if !validID(m.ID) || m.From == "" || len(m.To) == 0 || len(m.Raw) == 0 || m.Attempts < 0 {
			return record{}, 0, fmt.Errorf("%w: incomplete metadata", errCorrupt)
		}
		return record{kind: recMessage, msg: m, rawOff: base + nl + 1 + i + 1}, total, nil
	}
	return record{}, 0, fmt.Errorf("%w: record kind %q", errCorrupt, f[0])
}

// segName is the file name of segment seq: fixed width, so names sort in
// sequence order.
func segName(seq uint64) string {
	s := strconv.FormatUint(seq, 10)
	return "0000000000000000"[:max(0, 16-len(s))] + s + segExt
}

// parseSegName returns the sequence number of a segment file name.
func parseSegName(name string) (uint64, bool) {
	if len(name) != 16+len(segExt) || name[16:] != segExt {
		return 0, false
	}
	seq, err := strconv.ParseUint(name[:16], 10, 64)
	return seq, err == nil
}
