package peopletest

import (
	"testing"
	"time"

	"github.com/wxcc/tokenservice/shared/people"
)

func TestMemorySessions(t *testing.T) {
	RunSessions(t, func(_ *testing.T, now func() time.Time) (people.SessionStore, people.SessionStore) {
		s := &Sessions{Now: now}
		return s, s
	})
}

func TestMemoryLinks(t *testing.T) {
	RunLinks(t, func(_ *testing.T, now func() time.Time) (people.LinkStore, people.LinkStore) {
		s := &Links{Now: now}
		return s, s
	})
}
