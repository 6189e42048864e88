package activity

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/wxcc/tokenservice/shared/token"
)

// Adder stores one entry.
type Adder interface {
	Add(ctx context.Context, e Entry) error
}

// Store is where entries are kept (the Firestore adapter in production).
// Add stores one entry; List returns entries newest first, ties broken by
// ID, descending, so that a cursor continues exactly where a page ended.
type Store interface {
	Adder
	List(ctx context.Context, f Filter) (Page, error)
}

// Limits of a listing.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	// maxActor bounds the actor filter: an e-mail address is at most 254.
	maxActor = 320
	// maxCursor bounds a cursor before it is decoded.
	maxCursor = 200
)

// Sentinel errors of a listing; both are the caller's mistake (400).
var (
	ErrBadFilter = errors.New("bad activity filter")
	ErrBadCursor = errors.New("bad activity cursor")
)

// actions are the Actions this package names, for checking a filter.
var actions = []Action{
	SignIn, SignInRefused, SignOut, SessionEnded, TokenCreated, ConfigSaved, PassphraseSet, PassphraseGone,
	RefreshNow, TokenDeleted, AuthStarted, AuthCompleted, AuthRefused, AuthFailed, LinkCreated, LinkUsed,
	LinkRevoked, Rotated, Minted, RefreshFailed, ReauthRequired, ExpiryWarned, SweepHalted, NotifySent,
	NotifyGivenUp, IdentityUnknown,
}

// Actions returns every action this package names, for a console's
// filter menu.
func Actions() []Action { return slices.Clone(actions) }

// Normalize checks f as it came from a caller and fills in the default
// limit. Errors wrap ErrBadFilter or ErrBadCursor; the cursor itself is
// decoded by the store (DecodeCursor).
func (f Filter) Normalize() (Filter, error) {
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit < 1 || f.Limit > MaxLimit {
		return f, fmt.Errorf("%w: limit must be 1-%d", ErrBadFilter, MaxLimit)
	}
	if f.Token != "" {
		if err := token.ValidateName(f.Token); err != nil {
			return f, fmt.Errorf("%w: token: %w", ErrBadFilter, err)
		}
	}
	if len(f.Actor) > maxActor || strings.ContainsFunc(f.Actor, unicode.IsControl) {
		return f, fmt.Errorf("%w: actor is not a name or an e-mail address", ErrBadFilter)
	}
	if f.Action != "" && !slices.Contains(actions, f.Action) {
		return f, fmt.Errorf("%w: unknown action", ErrBadFilter)
	}
	if len(f.Cursor) > maxCursor {
		return f, fmt.Errorf("%w: too long", ErrBadCursor)
	}
	return f, nil
}

// Matches reports whether e passes f's token, actor, action and since
// filters.
func (f Filter) Matches(e Entry) bool {
	return (f.Token == "" || e.Token == f.Token) &&
		(f.Actor == "" || e.Actor == f.Actor) &&
		(f.Action == "" || e.Action == f.Action) &&
		(f.Since.IsZero() || !e.At.Before(f.Since))
}

// cursorVersion prefixes the cursor's plain text, so that its format can
// change without misreading old ones.
const cursorVersion = "1"

// EncodeCursor makes the opaque cursor that continues a listing after the
// entry stored at at with ID id. Stores keep times to the microsecond.
func EncodeCursor(at time.Time, id string) string {
	plain := cursorVersion + "." + strconv.FormatInt(at.UnixMicro(), 10) + "." + id
	return base64.RawURLEncoding.EncodeToString([]byte(plain))
}

// DecodeCursor reads a cursor made by EncodeCursor. A cursor is user
// input: anything else, including an ID that is not 1-64 letters and
// digits, is an error wrapping ErrBadCursor.
func DecodeCursor(c string) (at time.Time, id string, err error) {
	bad := func(why string) (time.Time, string, error) {
		return time.Time{}, "", fmt.Errorf("%w: %s", ErrBadCursor, why)
	}
	if len(c) > maxCursor {
		return bad("too long")
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return bad("not base64url")
	}
	version, rest, ok := strings.Cut(string(raw), ".")
	if !ok || version != cursorVersion {
		return bad("unknown version")
	}
	micros, id, ok := strings.Cut(rest, ".")
	if !ok {
		return bad("malformed")
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || us < 0 || us > maxMicros {
		return bad("time out of range")
	}
	if !ValidID(id) {
		return bad("malformed entry ID")
	}
	return time.UnixMicro(us).UTC(), id, nil
}

// maxMicros is 9999-12-31, the last instant a Firestore timestamp holds.
var maxMicros = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMicro()

// ValidID reports whether id can be an entry's ID: 1-64 ASCII letters
// and digits (Firestore's generated document IDs are 20 of them).
func ValidID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
