package firestore

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/wxcc/tokenservice/shared/token"
)

// FuzzDecode reads token documents whose fields have any type Firestore
// can return (string, int64, float64 with NaN, infinities and huge values,
// bool, null, timestamp, array, map), as other writers or a person in the
// console may leave them. decode must not panic, must not change its
// input, must yield only sane times, and what it yields must survive the
// store's own write and read: decode(stored(encode(t))) equals t.
func FuzzDecode(f *testing.F) {
	for _, seed := range [][]byte{
		nil,
		// Every field a string, an int64, a double, ...
		{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		{2, 0, 2, 1, 2, 2, 2, 3, 2, 4, 2, 5, 2, 6, 2, 7, 2, 8, 2, 9, 2, 10},
		{3, 0, 3, 1, 3, 2, 3, 3, 3, 4, 3, 5, 3, 6, 3, 7, 3, 8, 3, 9, 3, 10},
		{4, 1, 5, 6, 0, 6, 1, 6, 2, 6, 3, 7, 3, 2, 1, 3, 2, 8, 3, 1, 2, 2},
		// lease and lastError as maps with typed and mistyped sub-fields.
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 4, 1, 3, 2, 2, 5, 0, 8, 4, 3, 4, 1, 1, 4},
		{0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 4, 6, 1, 3, 3, 0, 0, 8, 4, 2, 9, 1, 5, 4},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		data := (&gen{b: in}).document()
		before := (&gen{b: in}).document() // the same again, to see that decode leaves data alone

		got, bad := decode(data)

		if diff := cmp.Diff(before, data, cmpopts.EquateNaNs()); diff != "" {
			t.Fatalf("decode changed its input (-before +after):\n%s", diff)
		}
		for name, tm := range times(got) {
			if !tm.IsZero() && (tm.Before(minSane) || tm.After(maxSane)) {
				t.Errorf("%s = %v (%d ms) from %s, want zero or within ±%d ms of the epoch", name, tm, tm.UnixMilli(), show(data), int64(maxMillis))
			}
		}
		if t.Failed() {
			return
		}
		enc := encode(got)
		again, badAgain := decode(stored(enc).(map[string]any))
		if len(badAgain) > 0 {
			t.Errorf("decode of encode reports malformed fields %v\nencoded: %s", badAgain, show(enc))
		}
		if diff := cmp.Diff(got, again, cmpopts.IgnoreFields(token.Token{}, "Version")); diff != "" {
			t.Errorf("decode(encode(t)) differs from t (-t +again):\n%s\ndocument: %s\nmalformed: %v\nencoded: %s", diff, show(data), bad, show(enc))
		}
	})
}

// minSane and maxSane bound the times a document may yield: maxMillis is
// what decode itself accepts for doubles (about ±285,000 years).
var (
	minSane = time.UnixMilli(-maxMillis)
	maxSane = time.UnixMilli(maxMillis)
)

// times lists every time of t by its field name.
func times(t *token.Token) map[string]time.Time {
	m := map[string]time.Time{
		fAccessExpires: t.AccessExpires, fRefreshExpires: t.RefreshExpires, fLastRefresh: t.LastRefresh,
		fNextAttempt: t.NextAttempt, fExpiryWarned: t.ExpiryWarned, fLease + "." + fUntil: t.Lease.Until,
	}
	if t.LastError != nil {
		m[fLastError+"."+fAt] = t.LastError.At
	}
	return m
}

// stored is what Firestore hands back for a map that encode wrote: arrays
// of any kind are read as []any, every integer as int64.
func stored(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = stored(e)
		}
		return out
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = stored(e)
		}
		return out
	case int:
		return int64(v)
	case int32:
		return int64(v)
	}
	return v
}

// show prints a document with its Go types, for failure messages.
func show(v any) string { return fmt.Sprintf("%#v", v) }

// docFields are the document contract's fields (and the store's own),
// plus one no one knows: each gets a fuzzed value or none.
var docFields = append(append([]string(nil), ownedFields...), fOutboxSeq, "somethingElse")

// subFields are those of lease and lastError.
var subFields = []string{fHolder, fUntil, fAt, fMessage, fPermanent, "other"}

// gen turns fuzz input into Firestore values; once the input runs out
// every byte reads as 0, which means "absent".
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) uint64() uint64 {
	var buf [8]byte
	for i := range buf {
		buf[i] = g.byte()
	}
	return binary.LittleEndian.Uint64(buf[:])
}

// document is a map with a value, or none, for every field in docFields.
func (g *gen) document() map[string]any {
	m := map[string]any{}
	for _, f := range docFields {
		if v, ok := g.value(2); ok {
			m[f] = v
		}
	}
	return m
}

// value is a Firestore value of a kind chosen by the next byte; ok is false
// for "no such field". depth bounds nesting.
func (g *gen) value(depth int) (v any, ok bool) {
	switch k := g.byte() % 10; {
	case k == 0:
		return nil, false
	case k == 1:
		return g.string(), true
	case k == 2:
		return g.int64(), true
	case k == 3:
		return g.float64(), true
	case k == 4:
		return g.byte()%2 == 1, true
	case k == 5:
		return nil, true // a field that is there and null
	case k == 6:
		return g.time(), true
	case k == 7 && depth > 0:
		n := int(g.byte() % 5)
		arr := make([]any, 0, n)
		for range n {
			e, ok := g.value(depth - 1)
			if !ok {
				e = ""
			}
			arr = append(arr, e)
		}
		return arr, true
	case k == 8 && depth > 0:
		m := map[string]any{}
		for _, f := range subFields {
			if e, ok := g.value(depth - 1); ok {
				m[f] = e
			}
		}
		return m, true
	case k == 9:
		return []byte{g.byte()}, true // Firestore bytes
	}
	return g.string(), true
}

func (g *gen) string() string {
	switch n := int(g.byte() % 16); n {
	case 0:
		return ""
	case 1:
		return "\xff\xfe" // not UTF-8
	default:
		s := make([]byte, n)
		for i := range s {
			s[i] = g.byte()
		}
		return string(s)
	}
}

func (g *gen) int64() int64 {
	switch g.byte() % 12 {
	case 0:
		return 0
	case 1:
		return math.MinInt64
	case 2:
		return math.MaxInt64
	case 3:
		return maxMillis + 1
	case 4:
		return -maxMillis - 1
	case 5:
		return int64(int8(g.byte())) // small, signed
	case 6:
		return 1_760_000_000_000 + int64(int16(uint16(g.byte())<<8|uint16(g.byte()))) // around now, in ms
	case 7:
		return math.MinInt64 + int64(g.byte())
	case 8:
		return math.MaxInt64 - int64(g.byte())
	}
	return int64(g.uint64())
}

func (g *gen) float64() float64 {
	switch g.byte() % 16 {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.NaN()
	case 3:
		return math.Inf(1)
	case 4:
		return math.Inf(-1)
	case 5:
		return math.MaxFloat64
	case 6:
		return -math.MaxFloat64
	case 7:
		return math.SmallestNonzeroFloat64
	case 8:
		return maxMillis
	case 9:
		return math.Nextafter(maxMillis, math.Inf(1))
	case 10:
		return float64(int8(g.byte())) / 10 // fractions around zero: -12.8 .. 12.7
	case 11:
		return 1.76e12 + float64(int8(g.byte()))/4 // a time in ms with a fraction, as JavaScript may store it
	case 12:
		return 1 << 63
	case 13:
		return -(1 << 63)
	}
	return math.Float64frombits(g.uint64())
}

// time is a Firestore timestamp: microseconds, years 1 to 9999.
func (g *gen) time() time.Time {
	const minSec, maxSec = -62135596800, 253402300799
	switch g.byte() % 6 {
	case 0:
		return time.Time{}
	case 1:
		return time.Unix(0, 0).UTC()
	case 2:
		return time.UnixMilli(1_760_000_000_000 + int64(int8(g.byte()))).UTC() // whole milliseconds
	case 3:
		return time.Unix(0, int64(int16(uint16(g.byte())<<8|uint16(g.byte())))*1000).UTC() // near the epoch, in µs
	}
	sec := minSec + int64(g.uint64()%uint64(maxSec-minSec+1))
	usec := int64(g.uint64() % 1_000_000)
	return time.Unix(sec, usec*1000).UTC()
}
