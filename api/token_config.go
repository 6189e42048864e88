package main

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/wxcc/tokenservice/shared/token"
)

// saveMode says whether saving a client config may create the token,
// update it, or both.
type saveMode int

const (
	createOrUpdate saveMode = iota // PUT /admin/tokens/N
	createOnly                     // the console's "New token" form
	updateOnly                     // the console's token page
)

// errTokenExists: the console's "New token" form named a token that exists.
var errTokenExists = errors.New("token exists")

// saveClientConfig writes cc (validated) and hash (the new passphrase's,
// if cc sets one) into name's document. It never touches the tokens
// themselves; a change of the client clears config_error so that
// refreshing resumes. It reports whether the document was created, which
// fields changed (names only), and the token as stored. The caller drops
// the cache entry.
func (s *server) saveClientConfig(ctx context.Context, name string, cc *clientConfig, hash string, mode saveMode) (created bool, changed []string, stored *token.Token, err error) {
	update := func(t *token.Token) ([]token.Event, error) {
		changed = cc.apply(t, hash)
		appChanged, err := cc.applyServiceApp(t)
		if err != nil {
			return nil, err
		}
		changed = append(changed, appChanged...)
		if t.ResumeIfClientFixed() {
			changed = append(changed, "status")
		}
		return nil, nil
	}
	create := func() (bool, error) {
		t := &token.Token{Name: name, Status: token.StatusPending}
		if _, err := update(t); err != nil {
			return false, err
		}
		if missing := t.MissingClientFields(); len(missing) > 0 {
			needs := "a new token needs clientId, clientSecret and redirectUri"
			if t.IsServiceApp() {
				needs = "a new Service App needs appId, clientId, clientSecret, targetOrgId and manager"
			}
			return false, errorf(http.StatusBadRequest, needs+": no "+strings.Join(missing, ", "))
		}
		stored = t
		return s.store.Create(ctx, t)
	}
	if mode == createOnly {
		created, err = create()
		if err == nil && !created {
			err = errTokenExists
		}
		return created, changed, stored, err
	}
	stored, err = s.store.Update(ctx, name, update)
	if errors.Is(err, token.ErrNotFound) && mode == createOrUpdate {
		created, err = create()
		if err == nil && !created { // created by someone else meanwhile
			stored, err = s.store.Update(ctx, name, update)
		}
	}
	return created, changed, stored, err
}

// authorizable reads name for an authorization and checks that it can
// be authorized: an integration (a Service App is minted), with a
// complete client config and at least one scope. A
// token whose access and refresh tokens do not open may be authorized
// again (that repairs it).
func (s *server) authorizable(ctx context.Context, name string) (*token.Token, error) {
	t, err := token.ForReauthorization(s.store.Get(ctx, name))
	if err != nil {
		return nil, err
	}
	if t.IsServiceApp() {
		return nil, errorf(http.StatusConflict, "token "+name+" is a Service App: Service Apps are minted with their manager's token, not authorized; "+
			"POST /admin/tokens/"+name+"/refresh (Refresh now on its console page) mints a new pair")
	}
	if missing := t.MissingClientFields(); len(missing) > 0 {
		return nil, errorf(http.StatusConflict, "token "+name+" has no complete client config (no "+strings.Join(missing, ", ")+"): set it first, with PUT /admin/tokens/"+name+" or on its console page")
	}
	if len(t.Scopes) == 0 {
		return nil, errorf(http.StatusConflict, "token "+name+" has no scopes: set the scopes it needs first, with PUT /admin/tokens/"+name+" or on its console page")
	}
	return t, nil
}
