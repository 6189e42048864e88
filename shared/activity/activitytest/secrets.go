package activitytest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wxcc/tokenservice/shared/activity"
)

// AssertNoSecrets fails t for every entry that holds one of secrets (the
// values a test handed to the code under test) or anything that
// activity.LooksSecret, in any field.
func AssertNoSecrets(t testing.TB, entries []activity.Entry, secrets ...string) {
	t.Helper()
	for i, e := range entries {
		for _, f := range []struct{ name, v string }{
			{"actorKind", string(e.ActorKind)}, {"actor", e.Actor}, {"action", string(e.Action)},
			{"token", e.Token}, {"addr", e.Addr}, {"outcome", string(e.Outcome)}, {"detail", e.Detail},
		} {
			AssertNoSecretText(t, "entry "+strconv.Itoa(i)+" "+f.name, f.v, secrets...)
		}
	}
}

// AssertNoSecretText fails t if text, found at where (a field of a stored
// document, a log line), holds one of secrets or anything that
// activity.LooksSecret. The value itself is never printed.
func AssertNoSecretText(t testing.TB, where, text string, secrets ...string) {
	t.Helper()
	for i, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s holds secret #%d", where, i)
		}
	}
	if activity.LooksSecret(text) {
		t.Errorf("%s holds something that looks like a secret", where)
	}
}
