package firestore

import (
	"fmt"
	"math"
	"reflect"
	"time"

	gfs "cloud.google.com/go/firestore"

	"github.com/wxcc/tokenservice/shared/token"
)

// Field names of a token document. The first eight are the Node sample's;
// they and the next eleven are the contract of DESIGN section 3. The rest
// are this service's own bookkeeping.
const (
	fClientID       = "clientId"
	fClientSecret   = "clientSecret"
	fRedirectURI    = "redirectUri"
	fAccessToken    = "accessToken"
	fRefreshToken   = "refreshToken"
	fAccessExpires  = "accessExpires"
	fRefreshExpires = "refreshExpires"
	fLastRefresh    = "lastRefresh"

	fGeneration     = "generation"
	fLease          = "lease"
	fStatus         = "status"
	fLastError      = "lastError"
	fScopes         = "scopes"
	fPassphraseHash = "passphraseHash"
	fOrgID          = "orgId"
	// A Service App's (DESIGN 5a); kind is absent for an integration.
	fKind        = "kind"
	fAppID       = "appId"
	fTargetOrgID = "targetOrgId"
	fManager     = "manager"
	// fAuthorizedBy: who an integration's grant acts as (DESIGN 3).
	fAuthorizedBy = "authorizedBy"

	fNextAttempt       = "nextAttempt"
	fFailures          = "failures"
	fConfigFingerprint = "configFingerprint"
	fFailureReported   = "failureReported"
	fExpiryWarned      = "expiryWarned"
	// fManagerGeneration is the manager's generation when a Service App
	// last failed because of its manager.
	fManagerGeneration = "managerGeneration"
	// fOutboxSeq is the sequence number of the token's last outbox event;
	// it keeps the token's events in order whatever the clocks do.
	fOutboxSeq = "outboxSeq"

	// Sub-fields of lease and lastError.
	fHolder    = "holder"
	fUntil     = "until"
	fAt        = "at"
	fMessage   = "message"
	fPermanent = "permanent"
	// Sub-fields of authorizedBy.
	fPersonID    = "personId"
	fEmail       = "email"
	fDisplayName = "displayName"
)

// ownedFields are the fields encode writes, in a fixed order. Fields
// outside this list (added by other writers) are never touched.
var ownedFields = []string{
	fClientID, fClientSecret, fRedirectURI, fAccessToken, fRefreshToken,
	fAccessExpires, fRefreshExpires, fLastRefresh,
	fGeneration, fLease, fStatus, fLastError, fScopes, fPassphraseHash,
	fOrgID, fKind, fAppID, fTargetOrgID, fManager, fAuthorizedBy,
	fNextAttempt, fFailures, fConfigFingerprint, fFailureReported, fExpiryWarned, fManagerGeneration,
}

// secretFields are the fields a Sealer encrypts at rest.
var secretFields = []string{fClientSecret, fAccessToken, fRefreshToken}

// encode is the document representation of t, before sealing. An absent
// value (zero time, nil pointer, empty lease, empty scopes, empty string of
// a field that is not the Node sample's, zero failures) has no entry: it
// is deleted on update and omitted on create. The Node sample's strings
// are always written, "" included, as the sample's /init does, and so is
// generation. Times are integer milliseconds since the epoch.
func encode(t *token.Token) map[string]any {
	m := map[string]any{
		fClientID:     t.ClientID,
		fClientSecret: t.ClientSecret,
		fRedirectURI:  t.RedirectURI,
		fAccessToken:  t.AccessToken,
		fRefreshToken: t.RefreshToken,
		fGeneration:   t.Generation,
	}
	putMillis(m, fAccessExpires, t.AccessExpires)
	putMillis(m, fRefreshExpires, t.RefreshExpires)
	putMillis(m, fLastRefresh, t.LastRefresh)
	if t.Lease != (token.Lease{}) {
		lease := map[string]any{}
		if t.Lease.Holder != "" {
			lease[fHolder] = t.Lease.Holder
		}
		putMillis(lease, fUntil, t.Lease.Until)
		m[fLease] = lease
	}
	putString(m, fStatus, string(t.Status))
	if le := t.LastError; le != nil {
		e := map[string]any{fMessage: le.Message, fPermanent: le.Permanent}
		putMillis(e, fAt, le.At)
		m[fLastError] = e
	}
	if len(t.Scopes) > 0 {
		m[fScopes] = append([]string(nil), t.Scopes...)
	}
	putString(m, fPassphraseHash, t.PassphraseHash)
	putString(m, fOrgID, t.OrgID)
	putString(m, fKind, string(t.Kind))
	putString(m, fAppID, t.AppID)
	putString(m, fTargetOrgID, t.TargetOrgID)
	putString(m, fManager, t.Manager)
	if p := t.AuthorizedBy; p != nil {
		by := map[string]any{}
		putString(by, fPersonID, p.ID)
		putString(by, fEmail, p.Email)
		putString(by, fDisplayName, p.DisplayName)
		putString(by, fOrgID, p.OrgID)
		m[fAuthorizedBy] = by
	}
	putMillis(m, fNextAttempt, t.NextAttempt)
	if t.Failures != 0 {
		m[fFailures] = int64(t.Failures)
	}
	putString(m, fConfigFingerprint, t.ConfigFingerprint)
	if t.FailureReported != nil {
		m[fFailureReported] = *t.FailureReported
	}
	putMillis(m, fExpiryWarned, t.ExpiryWarned)
	if t.ManagerGeneration != nil {
		m[fManagerGeneration] = *t.ManagerGeneration
	}
	return m
}

func putMillis(m map[string]any, field string, t time.Time) {
	if !t.IsZero() {
		m[field] = t.UnixMilli()
	}
}

func putString(m map[string]any, field, s string) {
	if s != "" {
		m[field] = s
	}
}

// changes lists the updates that turn the document encoded as before into
// the one encoded as after: changed fields are set, fields gone from after
// are deleted, unchanged ones are left alone. Leaving them alone matters:
// a field that could not be decoded is absent from both and so survives.
func changes(before, after map[string]any) []gfs.Update {
	var ups []gfs.Update
	for _, f := range ownedFields {
		bv, inBefore := before[f]
		av, inAfter := after[f]
		switch {
		case inAfter && (!inBefore || !reflect.DeepEqual(av, bv)):
			ups = append(ups, gfs.Update{Path: f, Value: av})
		case !inAfter && inBefore:
			ups = append(ups, gfs.Update{Path: f, Value: gfs.Delete})
		}
	}
	return ups
}

// decoder reads fields of a document's data with type checks. A field of
// the wrong type is treated as absent and recorded in bad: reading never
// fails and never panics for a malformed document, and since updates write
// only the fields that changed, the odd value stays in place for a person
// to look at unless the refresh protocol replaces it.
type decoder struct {
	prefix string
	data   map[string]any
	bad    *[]string
}

func (d decoder) field(f string) (any, bool) {
	v, ok := d.data[f]
	if !ok || v == nil {
		return nil, false
	}
	return v, true
}

func (d decoder) malformed(f string, v any) {
	*d.bad = append(*d.bad, fmt.Sprintf("%s%s (%T)", d.prefix, f, v))
}

func (d decoder) string(f string) string {
	v, ok := d.field(f)
	if !ok {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		d.malformed(f, v)
	}
	return s
}

func (d decoder) bool(f string) bool {
	v, ok := d.field(f)
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		d.malformed(f, v)
	}
	return b
}

// maxMillis bounds the times a document may hold (about ±285,000 years):
// it keeps conversions of doubles inside int64 and time.Time's range, and
// an integer beyond it is no time a writer meant either.
const maxMillis = 1 << 53

// millis reads a time stored as integer or floating-point milliseconds
// since the epoch, or as a Firestore timestamp, at the millisecond
// resolution that encode writes. 0 is absent, and so is anything that
// rounds to it: encode writes no time as 0.
func (d decoder) millis(f string) time.Time {
	v, ok := d.field(f)
	if !ok {
		return time.Time{}
	}
	var ms int64
	switch v := v.(type) {
	case int64:
		ms = v
	case float64:
		if math.IsNaN(v) || math.Abs(v) > maxMillis {
			d.malformed(f, v)
			return time.Time{}
		}
		ms = int64(math.Round(v))
	case time.Time:
		if v.IsZero() {
			return time.Time{}
		}
		ms = v.UnixMilli() // Firestore timestamps are in years 1 to 9999
	default:
		d.malformed(f, v)
		return time.Time{}
	}
	if ms < -maxMillis || ms > maxMillis {
		d.malformed(f, v)
		return time.Time{}
	}
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// int reads an integer, also one stored as an integral double.
func (d decoder) int(f string) (int64, bool) {
	v, ok := d.field(f)
	if !ok {
		return 0, false
	}
	switch v := v.(type) {
	case int64:
		return v, true
	case float64:
		if v == math.Trunc(v) && math.Abs(v) <= maxMillis {
			return int64(v), true
		}
	}
	d.malformed(f, v)
	return 0, false
}

func (d decoder) strings(f string) []string {
	v, ok := d.field(f)
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		d.malformed(f, v)
		return nil
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			d.malformed(f, v)
			return nil
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sub returns a decoder of the map in field f, ok false if it is absent
// or not a map.
func (d decoder) sub(f string) (decoder, bool) {
	v, ok := d.field(f)
	if !ok {
		return decoder{}, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		d.malformed(f, v)
		return decoder{}, false
	}
	return decoder{prefix: d.prefix + f + ".", data: m, bad: d.bad}, true
}

// decode converts a document's data into a token (without secrets
// opened, Name or Version) and lists the fields it ignored.
func decode(data map[string]any) (t *token.Token, bad []string) {
	d := decoder{data: data, bad: &bad}
	t = &token.Token{
		ClientID:       d.string(fClientID),
		ClientSecret:   d.string(fClientSecret),
		RedirectURI:    d.string(fRedirectURI),
		AccessToken:    d.string(fAccessToken),
		RefreshToken:   d.string(fRefreshToken),
		AccessExpires:  d.millis(fAccessExpires),
		RefreshExpires: d.millis(fRefreshExpires),
		LastRefresh:    d.millis(fLastRefresh),
		Status:         token.Status(d.string(fStatus)),
		Scopes:         d.strings(fScopes),
		PassphraseHash: d.string(fPassphraseHash),
		OrgID:          d.string(fOrgID),
		Kind:           token.Kind(d.string(fKind)),
		AppID:          d.string(fAppID),
		TargetOrgID:    d.string(fTargetOrgID),
		Manager:        d.string(fManager),
		NextAttempt:    d.millis(fNextAttempt),
		ExpiryWarned:   d.millis(fExpiryWarned),

		ConfigFingerprint: d.string(fConfigFingerprint),
	}
	t.Generation, _ = d.int(fGeneration)
	if n, ok := d.int(fFailures); ok && n >= math.MinInt32 && n <= math.MaxInt32 {
		t.Failures = int(n)
	}
	if g, ok := d.int(fFailureReported); ok {
		t.FailureReported = &g
	}
	if g, ok := d.int(fManagerGeneration); ok {
		t.ManagerGeneration = &g
	}
	if l, ok := d.sub(fLease); ok {
		t.Lease = token.Lease{Holder: l.string(fHolder), Until: l.millis(fUntil)}
	}
	if p, ok := d.sub(fAuthorizedBy); ok {
		t.AuthorizedBy = &token.Person{ID: p.string(fPersonID), Email: p.string(fEmail), DisplayName: p.string(fDisplayName), OrgID: p.string(fOrgID)}
	}
	if e, ok := d.sub(fLastError); ok {
		t.LastError = &token.LastError{At: e.millis(fAt), Message: e.string(fMessage), Permanent: e.bool(fPermanent)}
	}
	return t, bad
}

// normalize truncates t's times to the milliseconds a document keeps, so
// that a token compares equal to itself read back.
func normalize(t *token.Token) {
	for _, p := range []*time.Time{&t.AccessExpires, &t.RefreshExpires, &t.LastRefresh, &t.Lease.Until, &t.NextAttempt, &t.ExpiryWarned} {
		*p = truncMillis(*p)
	}
	if t.LastError != nil {
		t.LastError.At = truncMillis(t.LastError.At)
	}
}

func truncMillis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli())
}
