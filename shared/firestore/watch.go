package firestore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/wxcc/tokenservice/shared/token"
)

// Backoff of WatchTokens between listen streams that ended.
const (
	watchBackoffMin = time.Second
	watchBackoffMax = time.Minute
	// watchHealthy: a stream that lasted this long resets the backoff,
	// and its end is routine (servers end long streams now and then).
	watchHealthy = time.Minute
	// watchEager is how many new document states a feed holds at most
	// before it hands them on ahead of a consistent point: a listing of
	// a large collection then never sits in memory whole.
	watchEager = 256
	// watchTarget is the ID of the feed's one listen target.
	watchTarget int32 = 0x7a
)

// errLostTrack ends a stream whose document count the server disputes:
// the next one lists the collection again.
var errLostTrack = errors.New("document count differs from the server's: listing again")

// WatchTokens calls fn with the changes of the tokens collection until
// ctx ends: first every document there is (a listing, which ends in a
// Complete batch), then each batch of changes as Firestore reports them,
// deletions included. fn runs on the calling goroutine, one batch at a
// time; Token values are decoded and opened as Get does.
//
// It speaks Firestore's Listen protocol itself rather than through the
// client library's snapshot listener, which keeps every document of the
// collection in memory to build snapshots (about 3.6 KB per token
// document, 34 MiB at 10 000): this feed keeps only the documents' names
// and hands each state on as it arrives. A stream that ends is resumed
// where it was (Firestore's resume token), after backoff; one Firestore
// cannot resume, or whose document count disagrees, lists again.
//
// Cost, as Firestore bills a listener: one read per document listed (the
// whole collection at start and at each new listing), then one read per
// document added or changed; deletions are free. Reads counts them.
func (s *Store) WatchTokens(ctx context.Context, fn func(token.Changes)) {
	backoff := watchBackoffMin
	f := &feed{s: s, fn: fn}
	for {
		began := time.Now()
		err := f.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		healthy := time.Since(began) >= watchHealthy
		if healthy {
			backoff = watchBackoffMin
		}
		if healthy && transient(err) {
			s.log.Info("token change stream ended; resuming", "collection", s.name, "error", errText(err))
		} else {
			s.log.Warn("token change listener lost; changes made elsewhere are seen after CACHE_MAX_AGE until it is back",
				"collection", s.name, "error", errText(err), "retry_in", backoff.String())
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !healthy {
			backoff = min(2*backoff, watchBackoffMax)
		}
	}
}

// feed is what WatchTokens knows across its streams.
type feed struct {
	s  *Store
	fn func(token.Changes)
	// known holds the documents there are, as far as the streams have
	// told, by name, with the update time of the state handed on: the
	// server's existence checks and complete batches are answered from
	// it, and a document sent again unchanged is not handed on twice.
	known map[string]time.Time
	// before holds, during a listing other than the first, what was
	// known before it: a name it holds that the listing does not send
	// again is handed on as unseen (probably deleted meanwhile).
	before map[string]time.Time
	// resume, if set, is where the next stream takes up (the resume
	// token of the last consistent point).
	resume []byte
	// listing: documents arrive as a full listing (a new stream without
	// resume token, or one the server reset); the next consistent point
	// ends it. first: the listing is the feed's first, which ends with a
	// Complete batch; a later one hands on what differs from before.
	listing bool
	first   bool
	current bool
	// at is the time of the last consistent point.
	at time.Time
	// pending holds what changed since the last batch, by name (the last
	// state wins); fresh counts its new states.
	pending map[string]token.Change
	fresh   int
	// listed counts the documents of the listing under way, for a log
	// line when it completes.
	listed int
	began  time.Time
}

// stream runs one Listen call until it ends, and returns why.
func (f *feed) stream(ctx context.Context) error {
	client, err := dialListen(ctx)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	database, parent := f.s.paths()
	md := metadata.Pairs(resourcePrefixHeader, database)
	lc, err := client.Listen(metadata.NewOutgoingContext(ctx, md))
	if err != nil {
		return err
	}
	target := &pb.Target{
		TargetId: watchTarget,
		TargetType: &pb.Target_Query{Query: &pb.Target_QueryTarget{
			Parent: parent,
			QueryType: &pb.Target_QueryTarget_StructuredQuery{StructuredQuery: &pb.StructuredQuery{
				From: []*pb.StructuredQuery_CollectionSelector{{CollectionId: f.s.coll.ID}},
			}},
		}},
	}
	if resume := f.resumeFrom(); resume != nil {
		target.ResumeType = &pb.Target_ResumeToken{ResumeToken: resume}
	}
	f.current = false
	if f.pending == nil {
		// What an earlier stream left pending stays: its states are
		// known as handed on, and a resumed stream does not send them
		// again.
		f.pending = map[string]token.Change{}
	}
	if err := lc.Send(&pb.ListenRequest{Database: database, TargetChange: &pb.ListenRequest_AddTarget{AddTarget: target}}); err != nil {
		return err
	}
	for {
		res, err := lc.Recv()
		if err != nil {
			return err
		}
		if err := f.handle(res); err != nil {
			if errors.Is(err, errLostTrack) {
				f.resume = nil
			}
			return err
		}
	}
}

// resumeFrom returns where a new stream takes up: the resume token of
// the last consistent point, or nil after starting a new listing (a
// listing under way has none: a RESET voids it).
func (f *feed) resumeFrom() []byte {
	if f.resume != nil {
		return f.resume
	}
	f.relist()
	return nil
}

// relist starts a listing: every document will be sent again. A first
// listing cut short stays the first: it still ends in a Complete batch.
func (f *feed) relist() {
	f.resume = nil
	f.first = f.known == nil || (f.listing && f.first)
	if !f.first {
		if f.before == nil {
			f.before = f.known
		} else {
			maps.Copy(f.before, f.known)
		}
	}
	f.listing = true
	f.known = map[string]time.Time{}
	f.listed = 0
	f.began = time.Now()
}

// handle applies one message of the stream.
func (f *feed) handle(res *pb.ListenResponse) error {
	switch r := res.ResponseType.(type) {
	case *pb.ListenResponse_TargetChange:
		return f.targetChange(r.TargetChange)
	case *pb.ListenResponse_DocumentChange:
		dc := r.DocumentChange
		switch {
		case hasTarget(dc.TargetIds):
			f.put(dc.Document)
		case hasTarget(dc.RemovedTargetIds):
			f.gone(dc.Document.GetName())
		}
	case *pb.ListenResponse_DocumentDelete:
		f.gone(r.DocumentDelete.Document)
	case *pb.ListenResponse_DocumentRemove:
		f.gone(r.DocumentRemove.Document)
	case *pb.ListenResponse_Filter:
		if int(r.Filter.Count) != len(f.known) {
			return fmt.Errorf("%w (%d here, %d there)", errLostTrack, len(f.known), r.Filter.Count)
		}
	default:
		return fmt.Errorf("unknown listen response %T", r)
	}
	return nil
}

func (f *feed) targetChange(tc *pb.TargetChange) error {
	switch tc.TargetChangeType {
	case pb.TargetChange_NO_CHANGE:
		if len(tc.TargetIds) == 0 && tc.ReadTime != nil && f.current {
			f.resume = tc.ResumeToken
			f.at = tc.ReadTime.AsTime()
			f.consistent()
		}
	case pb.TargetChange_ADD:
		if len(tc.TargetIds) != 1 || tc.TargetIds[0] != watchTarget {
			return errors.New("listen: the server added a target not asked for")
		}
	case pb.TargetChange_REMOVE:
		if tc.Cause != nil {
			return status.Error(codes.Code(tc.Cause.Code), tc.Cause.Message)
		}
		return status.Error(codes.Internal, "listen: the server removed the target")
	case pb.TargetChange_CURRENT:
		f.current = true
	case pb.TargetChange_RESET:
		// Whatever the stream said is void: what still exists is sent
		// again (the emulator does this at every change), and the
		// consistent point after that completes a listing. Only what
		// differs from before is handed on.
		f.relist()
		f.current = false
	default:
		return fmt.Errorf("listen: unknown target change %s", tc.TargetChangeType)
	}
	return nil
}

// put takes a document's new state.
func (f *feed) put(doc *pb.Document) {
	name := docID(doc.GetName())
	updated := doc.GetUpdateTime().AsTime()
	if f.listing {
		f.listed++
	}
	was, ok := f.known[name]
	if !ok && f.before != nil {
		was, ok = f.before[name]
	}
	f.known[strings.Clone(name)] = updated
	if ok && was.Equal(updated) {
		return // sent again unchanged
	}
	f.s.reads.Add(1)
	if old, ok := f.pending[name]; !ok || old.Deleted() {
		f.fresh++
	}
	f.pending[name] = f.s.changeOf(name, doc)
	if f.fresh >= watchEager {
		f.handOnFresh()
	}
}

// gone takes a document's deletion (or its leaving the target).
func (f *feed) gone(path string) {
	name := docID(path)
	delete(f.known, name)
	if old, ok := f.pending[name]; ok && !old.Deleted() {
		f.fresh--
	}
	f.pending[name] = token.Change{Name: name}
}

// handOnFresh hands the pending new states on ahead of a consistent
// point; deletions wait for one, which gives them their time.
func (f *feed) handOnFresh() {
	b := token.Changes{At: f.at, List: make([]token.Change, 0, f.fresh)}
	for name, c := range f.pending {
		if !c.Deleted() {
			b.List = append(b.List, c)
			delete(f.pending, name)
		}
	}
	f.fresh = 0
	f.fn(b)
}

// consistent hands on what changed up to a consistent point. It ends a
// listing: the feed's first with a Complete batch, a later one with the
// documents it did not see again, as unseen rather than deleted: a
// listing that ends before the server sent everything again looks the
// same (the soak served an existing token as 404 after a Firestore cut
// that way).
func (f *feed) consistent() {
	if f.listing {
		for name := range f.before {
			if _, ok := f.known[name]; !ok {
				f.pending[name] = token.Change{Name: name, Unseen: true}
			}
		}
		if f.first {
			f.s.log.Info("listening to token changes", "collection", f.s.name, "documents", f.listed,
				"listing_ms", time.Since(f.began).Milliseconds())
		}
	}
	complete := f.listing && f.first
	f.listing, f.first, f.before = false, false, nil
	if len(f.pending) == 0 && !complete {
		return
	}
	b := token.Changes{Complete: complete, At: f.at, List: make([]token.Change, 0, len(f.pending))}
	for _, c := range f.pending {
		b.List = append(b.List, c)
	}
	if complete {
		known := f.known
		b.Exists = func(name string) bool { _, ok := known[name]; return ok }
	}
	f.pending = map[string]token.Change{}
	f.fresh = 0
	f.fn(b)
}

// changeOf converts a document's state as a stream sent it.
func (s *Store) changeOf(name string, doc *pb.Document) token.Change {
	c := token.Change{Name: name}
	data := make(map[string]any, len(doc.GetFields()))
	for k, v := range doc.GetFields() {
		data[k] = valueOf(v)
	}
	t, err := s.fromData(name, data, doc.GetUpdateTime().AsTime())
	if err != nil {
		c.Err = err
		return c
	}
	c.Token = t
	return c
}

// valueOf converts a Firestore value to the Go value the client library
// gives a document's Data (a reference as its path).
func valueOf(v *pb.Value) any {
	switch x := v.GetValueType().(type) {
	case *pb.Value_NullValue:
		return nil
	case *pb.Value_BooleanValue:
		return x.BooleanValue
	case *pb.Value_IntegerValue:
		return x.IntegerValue
	case *pb.Value_DoubleValue:
		return x.DoubleValue
	case *pb.Value_TimestampValue:
		return x.TimestampValue.AsTime()
	case *pb.Value_StringValue:
		return x.StringValue
	case *pb.Value_BytesValue:
		return x.BytesValue
	case *pb.Value_ReferenceValue:
		return x.ReferenceValue
	case *pb.Value_GeoPointValue:
		return x.GeoPointValue
	case *pb.Value_ArrayValue:
		out := make([]any, len(x.ArrayValue.GetValues()))
		for i, e := range x.ArrayValue.GetValues() {
			out[i] = valueOf(e)
		}
		return out
	case *pb.Value_MapValue:
		out := make(map[string]any, len(x.MapValue.GetFields()))
		for k, e := range x.MapValue.GetFields() {
			out[k] = valueOf(e)
		}
		return out
	}
	return v // a kind no token field holds: decode calls it malformed
}

// paths returns the database's resource name and the parent path of the
// tokens collection.
func (s *Store) paths() (database, parent string) {
	parent = strings.TrimSuffix(s.coll.Path, "/"+s.coll.ID)
	database, _, _ = strings.Cut(parent, "/documents")
	return database, parent
}

func docID(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func hasTarget(ids []int32) bool {
	for _, id := range ids {
		if id == watchTarget {
			return true
		}
	}
	return false
}

// transient reports whether a stream's end is one to resume from
// quietly, as the client library does for these codes.
func transient(err error) bool {
	if errors.Is(err, io.EOF) {
		return true
	}
	switch status.Code(err) {
	case codes.Unknown, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Internal, codes.Unavailable:
		return true
	}
	return false
}

func errText(err error) string {
	if err == nil {
		return "stream ended"
	}
	return err.Error()
}

// resourcePrefixHeader names the database of a Listen call, as the client
// library sends it.
const resourcePrefixHeader = "google-cloud-resource-prefix"
