package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Google ID tokens as Cloud Run's front end passes them on: when the
// service requires IAM, the front end verifies the caller's ID token and
// replaces the JWT's signature segment with removedSignature. The claims
// are then all the container can check, and what it must check: IAM
// admits every account with run.invoker on the service (or the project),
// for any audience the service accepts.

// removedSignature is the literal signature segment of such a token.
const removedSignature = "SIGNATURE_REMOVED_BY_GOOGLE"

// maxIDTokenBytes bounds a bearer token (Google's are about 1 KB).
const maxIDTokenBytes = 8 << 10

// maxClaims bounds the members of a token's header or payload object.
const maxClaims = 64

// iatSkew is how far in the future a token's iat may lie, for clocks that
// differ a little.
const iatSkew = time.Minute

// The issuers Google writes into its ID tokens.
var googleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// idClaims are the claims of a Google ID token that the worker checks.
type idClaims struct {
	issuer, audience, email string
	emailVerified           bool
	issuedAt, expires       time.Time
}

// Errors of parsing and checking; none holds any part of the token, so
// they may be logged.
var (
	errTokenShape   = errors.New("not three segments")
	errNotRemoved   = errors.New("signature segment is not " + removedSignature)
	errTokenBase64  = errors.New("segment is not unpadded base64url")
	errTokenJSON    = errors.New("segment is not one JSON object with distinct members")
	errTokenAlg     = errors.New("header alg is not RS256, or names crit")
	errClaimType    = errors.New("a claim has the wrong type")
	errIssuer       = errors.New("issuer is not Google")
	errAudience     = errors.New("audience is not RUN_OIDC_AUDIENCE")
	errExpired      = errors.New("expired")
	errFutureIAT    = errors.New("issued in the future")
	errAccount      = errors.New("e-mail is not RUN_OIDC_SERVICE_ACCOUNT")
	errUnverifiedEm = errors.New("e-mail is not verified")
)

// signatureRemoved reports whether raw's last segment is removedSignature.
func signatureRemoved(raw string) bool {
	i := strings.LastIndexByte(raw, '.')
	return i >= 0 && raw[i+1:] == removedSignature
}

// parseSignatureRemoved parses the header and claims of a token whose
// signature Cloud Run's front end removed. It verifies nothing: the caller
// checks the claims (idClaims.check).
func parseSignatureRemoved(raw string) (idClaims, error) {
	if len(raw) > maxIDTokenBytes {
		return idClaims{}, errTokenShape
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return idClaims{}, errTokenShape
	}
	if parts[2] != removedSignature {
		return idClaims{}, errNotRemoved
	}
	header, err := decodeSegment(parts[0])
	if err != nil {
		return idClaims{}, err
	}
	// The signature is gone, so alg says nothing about trust; still, a
	// token Google signed says RS256, and one that says otherwise (none,
	// HS256) did not come from Google's signer.
	var alg string
	if err := stringMember(header, "alg", &alg, true); err != nil || alg != "RS256" {
		return idClaims{}, errTokenAlg
	}
	if _, ok := header["crit"]; ok {
		return idClaims{}, errTokenAlg
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		return idClaims{}, err
	}
	var c idClaims
	var iat, exp int64
	for _, m := range []error{
		stringMember(payload, "iss", &c.issuer, true),
		stringMember(payload, "aud", &c.audience, true), // Google writes one audience, as a string
		stringMember(payload, "email", &c.email, false),
		boolMember(payload, "email_verified", &c.emailVerified),
		intMember(payload, "iat", &iat),
		intMember(payload, "exp", &exp),
	} {
		if m != nil {
			return idClaims{}, m
		}
	}
	c.issuedAt, c.expires = time.Unix(iat, 0), time.Unix(exp, 0)
	return c, nil
}

// check verifies the claims against the worker's configuration at now.
func (c idClaims) check(now time.Time, audience, account string) error {
	issuerOK := false
	for _, iss := range googleIssuers {
		issuerOK = issuerOK || c.issuer == iss
	}
	switch {
	case !issuerOK:
		return errIssuer
	case audience == "" || c.audience != audience:
		return errAudience
	case now.Unix() > c.expires.Unix(): // as idtoken.Validate decides
		return errExpired
	case c.issuedAt.After(now.Add(iatSkew)):
		return errFutureIAT
	case account == "" || !sameAccount(c.email, account):
		return errAccount
	case !c.emailVerified:
		return errUnverifiedEm
	}
	return nil
}

// decodeSegment decodes one base64url segment holding a JSON object whose
// member names are distinct.
func decodeSegment(seg string) (map[string]json.RawMessage, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, errTokenBase64
	}
	return decodeObject(b)
}

// decodeObject decodes a JSON object into its members, refusing duplicate
// names (which parsers resolve differently), more than maxClaims members
// and anything after the object.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errTokenJSON
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		t, err := dec.Token()
		name, ok := t.(string)
		if err != nil || !ok {
			return nil, errTokenJSON
		}
		if _, dup := m[name]; dup || len(m) == maxClaims {
			return nil, errTokenJSON
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errTokenJSON
		}
		m[name] = v
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errTokenJSON
	}
	if _, err := dec.Token(); err == nil { // something follows the object
		return nil, errTokenJSON
	}
	return m, nil
}

// stringMember reads a string member; a missing one is an error when
// required, else leaves dst empty.
func stringMember(m map[string]json.RawMessage, name string, dst *string, required bool) error {
	v, ok := m[name]
	if !ok {
		if required {
			return errClaimType
		}
		return nil
	}
	if err := json.Unmarshal(v, dst); err != nil || !bytes.HasPrefix(bytes.TrimSpace(v), []byte(`"`)) {
		return errClaimType
	}
	return nil
}

// boolMember reads a boolean member; a missing one reads as false.
func boolMember(m map[string]json.RawMessage, name string, dst *bool) error {
	v, ok := m[name]
	if !ok {
		return nil
	}
	switch string(bytes.TrimSpace(v)) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return errClaimType
	}
	return nil
}

// intMember reads a required integer member (seconds since the epoch).
func intMember(m map[string]json.RawMessage, name string, dst *int64) error {
	v, ok := m[name]
	if !ok {
		return errClaimType
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
	if err != nil || n < 0 {
		return errClaimType
	}
	*dst = n
	return nil
}
