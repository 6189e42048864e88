package webexfake

import "testing"

// TestOnGrant: the hook hears of each refresh grant, with the refresh
// token sent and the one answered, before the client has the answer;
// not of a refused refresh.
func TestOnGrant(t *testing.T) {
	s := start(t)
	s.SetRotation(true)
	rt := s.IssueRefreshToken(clientID, 0)
	var heard []Granted
	answered := false
	s.OnGrant(func(g Granted) {
		if answered {
			t.Error("the hook ran after the client had its answer")
		}
		heard = append(heard, g)
	})
	r := mustPost(t, s.TokenURL, refreshForm(rt))
	answered = true
	if r.status != 200 {
		t.Fatalf("got %d, want 200 (%s)", r.status, r.raw)
	}
	if len(heard) != 1 || heard[0].ClientID != clientID || heard[0].Presented != rt || heard[0].RefreshToken != str(r.json, "refresh_token") {
		t.Fatalf("heard %+v, want one grant of %s: %s answered with the new refresh token", heard, clientID, rt)
	}
	if r := mustPost(t, s.TokenURL, refreshForm(rt)); r.status != 400 || len(heard) != 1 {
		t.Fatalf("a spent refresh token: got %d, heard %d grants; want 400 and nothing heard", r.status, len(heard))
	}
}
