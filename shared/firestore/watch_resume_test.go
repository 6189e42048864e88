package firestore

import (
	"testing"
	"time"

	pb "cloud.google.com/go/firestore/apiv1/firestorepb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/wxcc/tokenservice/shared/token"
)

// listenServer plays the server side of one listen target, as the
// Listen protocol describes it, for the feed's state machine: it holds
// the collection's documents and which consistent point a resume token
// stands for.
type listenServer struct {
	t     *testing.T
	f     *feed
	docs  map[string]time.Time // name → update time
	point int                  // consistent points so far
	// since[n] is the names changed after consistent point n.
	since map[int][]string
}

func (s *listenServer) send(res *pb.ListenResponse) {
	s.t.Helper()
	if err := s.f.handle(res); err != nil {
		s.t.Fatal(err)
	}
}

func (s *listenServer) doc(name string) {
	s.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_DocumentChange{DocumentChange: &pb.DocumentChange{
		Document:  &pb.Document{Name: "projects/p/databases/(default)/documents/c/" + name, UpdateTime: timestamppb.New(s.docs[name])},
		TargetIds: []int32{watchTarget},
	}}})
}

func (s *listenServer) target(kind pb.TargetChange_TargetChangeType) {
	s.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
		TargetChangeType: kind, TargetIds: []int32{watchTarget},
	}}})
}

// consistent ends with CURRENT and a consistent point.
func (s *listenServer) consistent() {
	s.target(pb.TargetChange_CURRENT)
	s.point++
	s.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_TargetChange{TargetChange: &pb.TargetChange{
		TargetChangeType: pb.TargetChange_NO_CHANGE,
		ResumeToken:      []byte{byte(s.point)},
		ReadTime:         timestamppb.New(time.Unix(1_760_000_000+int64(s.point), 0)),
	}}})
}

// open starts a stream the way the feed asks: resumed, only what changed
// after the token's point; else every document.
func (s *listenServer) open() {
	s.target(pb.TargetChange_ADD)
	if resume := s.f.resumeFrom(); resume != nil {
		for _, name := range s.since[int(resume[0])] {
			s.doc(name)
		}
		return
	}
	for name := range s.docs {
		s.doc(name)
	}
}

func (s *listenServer) write(name string) {
	s.docs[name] = time.Unix(1_760_000_100+int64(len(s.docs)), 0)
	s.since[s.point] = append(s.since[s.point], name)
}

func newListenServer(t *testing.T, batches *[]token.Changes) *listenServer {
	st, _ := newStore(t)
	f := &feed{s: st, fn: func(b token.Changes) { *batches = append(*batches, b) }, pending: map[string]token.Change{}}
	return &listenServer{t: t, f: f, docs: map[string]time.Time{}, since: map[int][]string{}}
}

// When a listing after a RESET reaches a consistent point before it has
// sent every document again (the emulator does this on a resumed stream:
// the rest follows after the consistent point), the documents it has not
// sent yet are handed on as unseen, never as deleted; only the store's
// own deletion notice is a deletion. The second 60-minute soak served an
// existing token as 404 after a Firestore cut because of this.
func TestWatchRelistingThatMissesDocumentsDeletesNothing(t *testing.T) {
	var batches []token.Changes
	s := newListenServer(t, &batches)
	for _, n := range []string{"a", "b", "c"} {
		s.write(n)
	}
	s.open()
	s.consistent()
	if len(batches) != 1 || !batches[0].Complete || len(batches[0].List) != 3 {
		t.Fatalf("first listing: %d batches, want one complete batch of 3", len(batches))
	}

	s.write("d")
	s.target(pb.TargetChange_RESET)
	s.doc("d")
	s.consistent() // before a, b and c were sent again
	s.doc("a")
	s.doc("b")
	s.doc("c")
	s.consistent()
	s.send(&pb.ListenResponse{ResponseType: &pb.ListenResponse_DocumentDelete{DocumentDelete: &pb.DocumentDelete{
		Document: "projects/p/databases/(default)/documents/c/b", RemovedTargetIds: []int32{watchTarget},
	}}})
	s.consistent()

	unseen := map[string]bool{}
	for _, b := range batches[1 : len(batches)-1] {
		for _, c := range b.List {
			if c.Deleted() {
				t.Errorf("%s handed on as deleted, but it exists", c.Name)
			}
			if c.Unseen {
				unseen[c.Name] = true
			}
		}
	}
	if !unseen["a"] || !unseen["b"] || !unseen["c"] || unseen["d"] {
		t.Errorf("unseen: %v, want a, b and c", unseen)
	}
	if !handedOn(batches[1:], "d") {
		t.Error("the new document d was not handed on")
	}
	last := batches[len(batches)-1]
	if len(last.List) != 1 || last.List[0].Name != "b" || !last.List[0].Deleted() {
		t.Errorf("the store's deletion of b: got %+v, want b deleted", last.List)
	}
}

// A first listing cut short still ends in a Complete batch when the next
// stream finishes it: the api forgets cached names without a document
// only on one.
func TestWatchFirstListingCutShortStillCompletes(t *testing.T) {
	var batches []token.Changes
	s := newListenServer(t, &batches)
	for _, n := range []string{"a", "b"} {
		s.write(n)
	}
	s.open() // cut before the consistent point
	s.open()
	s.consistent()
	last := batches[len(batches)-1]
	if !last.Complete || last.Exists == nil || !last.Exists("a") || !last.Exists("b") || last.Exists("gone") {
		t.Fatalf("the listing's end is not a Complete batch that knows a and b (complete %v)", last.Complete)
	}
}

func handedOn(batches []token.Changes, name string) bool {
	for _, b := range batches {
		for _, c := range b.List {
			if c.Name == name && !c.Deleted() {
				return true
			}
		}
	}
	return false
}
