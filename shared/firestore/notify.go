package firestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	gfs "cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/notify"
	"github.com/wxcc/tokenservice/shared/token"
)

var _ notify.Store = (*Store)(nil)

// Notification conditions are the documents notify/conditions/<id> of the
// meta collection. expireAt is a Firestore timestamp for the TTL policy
// the deployment creates on the collection group "conditions"; the other
// times are integer milliseconds, as in token documents. "active" (open,
// or a message pending) is what Remind queries.
const (
	notifyDoc      = "notify"
	conditionsColl = "conditions"

	cKind           = "kind"
	cToken          = "token"
	cOpen           = "open"
	cActive         = "active"
	cGeneration     = "generation"
	cRefreshExpires = "refreshExpires"
	cOpenedAt       = "openedAt"
	cReason         = "reason"
	cClosedAt       = "closedAt"
	cClosedBy       = "closedBy"
	cAlarmed        = "alarmed"
	cLastAlarm      = "lastAlarm"
	cReminders      = "reminders"
	cPending        = "pending"
	cExpireAt       = "expireAt"

	// Sub-fields of pending and of its notice.
	mID        = "id"
	mAt        = "at"
	mTo        = "to"
	mDelivered = "delivered"
	mClaims    = "claims"
	mFailures  = "failures"
	mNotice    = "notice"

	nPhase           = "phase"
	nAccessExpires   = "accessExpires"
	nSince           = "since"
	nReminder        = "reminder"
	nTrigger         = "trigger"
	nAuthorizedBy    = "authorizedBy"
	nAuthorizedEmail = "authorizedEmail"
	nManager         = "manager"
)

// conditionFields are the fields a condition document holds; a save
// writes each (deleting the absent ones).
var conditionFields = []string{
	cKind, cToken, cOpen, cActive, cGeneration, cRefreshExpires, cOpenedAt, cReason, cClosedAt,
	cClosedBy, cAlarmed, cLastAlarm, cReminders, cPending, cExpireAt,
}

// conditionPageSize is how many conditions one query of ActiveConditions
// reads.
const conditionPageSize = 100

func (s *Store) conditions() *gfs.CollectionRef {
	return s.meta.Doc(notifyDoc).Collection(conditionsColl)
}

func (s *Store) conditionRef(id string) (*gfs.DocumentRef, error) {
	if id == "" || len(id) > 1500 {
		return nil, fmt.Errorf("condition id %q is not a document id", id)
	}
	for _, r := range id {
		if r == '/' {
			return nil, fmt.Errorf("condition id %q is not a document id", id)
		}
	}
	return s.conditions().Doc(id), nil
}

// Conditions reads the conditions with the given IDs in one call.
func (s *Store) Conditions(ctx context.Context, ids ...string) (map[string]*notify.Condition, error) {
	refs := make([]*gfs.DocumentRef, 0, len(ids))
	for _, id := range ids {
		ref, err := s.conditionRef(id)
		if err != nil {
			return nil, fmt.Errorf("read conditions: %w", err)
		}
		refs = append(refs, ref)
	}
	snaps, err := s.client.GetAll(ctx, refs)
	s.reads.Add(int64(len(refs)))
	if err != nil {
		return nil, fmt.Errorf("read conditions: %w", translate(err, false))
	}
	out := make(map[string]*notify.Condition, len(snaps))
	for _, snap := range snaps {
		if snap.Exists() {
			out[snap.Ref.ID] = s.toCondition(snap)
		}
	}
	return out, nil
}

// SaveCondition creates c (c.Version zero) or replaces it if it is still
// at c.Version, as one conditional write.
func (s *Store) SaveCondition(ctx context.Context, c *notify.Condition) error {
	ref, err := s.conditionRef(c.ID)
	if err != nil {
		return fmt.Errorf("save condition: %w", err)
	}
	data := encodeCondition(c)
	var wr *gfs.WriteResult
	if c.Version.IsZero() {
		wr, err = ref.Create(ctx, data)
	} else {
		ups := make([]gfs.Update, 0, len(conditionFields))
		for _, f := range conditionFields {
			v, ok := data[f]
			if !ok {
				v = gfs.Delete
			}
			ups = append(ups, gfs.Update{Path: f, Value: v})
		}
		wr, err = ref.Update(ctx, ups, gfs.LastUpdateTime(c.Version))
		if status.Code(err) == codes.NotFound { // deleted meanwhile (TTL)
			err = fmt.Errorf("%w: %w", token.ErrConflict, err)
		}
	}
	if err != nil {
		if errors.Is(err, token.ErrConflict) {
			return fmt.Errorf("save condition %s: %w", c.ID, err)
		}
		return fmt.Errorf("save condition %s: %w", c.ID, translate(err, true))
	}
	c.Version = wr.UpdateTime
	return nil
}

// ActiveConditions calls fn for every condition that is open or has a
// message pending, in ID order, a page at a time (an equality filter: no
// composite index).
func (s *Store) ActiveConditions(ctx context.Context, fn func(*notify.Condition) error) error {
	q := s.conditions().Where(cActive, "==", true).OrderBy(gfs.DocumentID, gfs.Asc)
	err := s.eachDocument(ctx, q, conditionPageSize, func(snap *gfs.DocumentSnapshot) error {
		return fn(s.toCondition(snap))
	})
	if err != nil {
		return fmt.Errorf("active conditions: %w", err)
	}
	return nil
}

func encodeCondition(c *notify.Condition) map[string]any {
	m := map[string]any{
		cKind:       string(c.Kind),
		cToken:      c.Token,
		cOpen:       c.Open,
		cActive:     c.Active(),
		cGeneration: c.Generation,
		cReminders:  int64(c.Reminders),
	}
	putMillis(m, cRefreshExpires, c.RefreshExpires)
	putMillis(m, cOpenedAt, c.OpenedAt)
	putString(m, cReason, c.Reason)
	putMillis(m, cClosedAt, c.ClosedAt)
	putString(m, cClosedBy, c.ClosedBy)
	if len(c.Alarmed) > 0 {
		m[cAlarmed] = c.Alarmed
	}
	putMillis(m, cLastAlarm, c.LastAlarm)
	if !c.ExpireAt.IsZero() {
		m[cExpireAt] = c.ExpireAt.UTC() // a timestamp, as a TTL policy needs
	}
	if p := c.Pending; p != nil {
		pm := map[string]any{mID: p.ID, mNotice: encodeNotice(p.Notice)}
		putMillis(pm, mAt, p.At)
		if len(p.To) > 0 {
			pm[mTo] = p.To
		}
		if len(p.Delivered) > 0 {
			pm[mDelivered] = p.Delivered
		}
		if len(p.Claims) > 0 {
			claims := map[string]any{}
			for ch, until := range p.Claims {
				claims[ch] = until.UnixMilli()
			}
			pm[mClaims] = claims
		}
		if len(p.Failures) > 0 {
			failures := map[string]any{}
			for ch, why := range p.Failures {
				failures[ch] = why
			}
			pm[mFailures] = failures
		}
		m[cPending] = pm
	}
	return m
}

func encodeNotice(n notify.Notice) map[string]any {
	m := map[string]any{cKind: string(n.Kind), nPhase: string(n.Phase), cGeneration: n.Generation, nReminder: int64(n.Reminder)}
	putString(m, cToken, n.Token)
	putMillis(m, nAccessExpires, n.AccessExpires)
	putMillis(m, cRefreshExpires, n.RefreshExpires)
	putMillis(m, nSince, n.Since)
	putMillis(m, mAt, n.At)
	putString(m, cReason, n.Reason)
	putString(m, nTrigger, n.Trigger)
	putString(m, nAuthorizedBy, n.AuthorizedBy)
	putString(m, nAuthorizedEmail, n.AuthorizedEmail)
	putString(m, nManager, n.Manager)
	return m
}

// toCondition decodes a condition document; malformed fields are read as
// absent and logged.
func (s *Store) toCondition(snap *gfs.DocumentSnapshot) *notify.Condition {
	var bad []string
	d := decoder{data: snap.Data(), bad: &bad}
	gen, _ := d.int(cGeneration)
	reminders, _ := d.int(cReminders)
	c := &notify.Condition{
		ID: snap.Ref.ID, Kind: notify.Kind(d.string(cKind)), Token: d.string(cToken), Open: d.bool(cOpen),
		Generation: gen, RefreshExpires: d.millis(cRefreshExpires), OpenedAt: d.millis(cOpenedAt),
		Reason: d.string(cReason), ClosedAt: d.millis(cClosedAt), ClosedBy: d.string(cClosedBy),
		Alarmed: d.strings(cAlarmed), LastAlarm: d.millis(cLastAlarm), Reminders: int(reminders),
		ExpireAt: d.millis(cExpireAt), Version: snap.UpdateTime,
	}
	if p, ok := d.sub(cPending); ok {
		c.Pending = decodeMessage(p)
	}
	if len(bad) > 0 {
		s.log.Warn("ignoring malformed fields of a notification condition", "condition", c.ID, "fields", bad)
	}
	return c
}

func decodeMessage(d decoder) *notify.Message {
	m := &notify.Message{ID: d.string(mID), At: d.millis(mAt), To: d.strings(mTo), Delivered: d.strings(mDelivered)}
	if cl, ok := d.sub(mClaims); ok {
		for ch := range cl.data {
			if t := cl.millis(ch); !t.IsZero() {
				if m.Claims == nil {
					m.Claims = map[string]time.Time{}
				}
				m.Claims[ch] = t
			}
		}
	}
	if f, ok := d.sub(mFailures); ok {
		for ch := range f.data {
			if why := f.string(ch); why != "" {
				if m.Failures == nil {
					m.Failures = map[string]string{}
				}
				m.Failures[ch] = why
			}
		}
	}
	if n, ok := d.sub(mNotice); ok {
		gen, _ := n.int(cGeneration)
		reminder, _ := n.int(nReminder)
		m.Notice = notify.Notice{
			Kind: notify.Kind(n.string(cKind)), Phase: notify.Phase(n.string(nPhase)), Token: n.string(cToken),
			Generation: gen, AccessExpires: n.millis(nAccessExpires), RefreshExpires: n.millis(cRefreshExpires),
			Since: n.millis(nSince), At: n.millis(mAt), Reminder: int(reminder), Reason: n.string(cReason),
			Trigger: n.string(nTrigger), AuthorizedBy: n.string(nAuthorizedBy), AuthorizedEmail: n.string(nAuthorizedEmail),
			Manager: n.string(nManager),
		}
	}
	return m
}
