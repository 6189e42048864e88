package webexfake

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// MessagesPath is the Messages API: POST /v1/messages posts a message to
// a room as the person or bot whose access token is the bearer.
const MessagesPath = "/v1/messages"

// MaxMessageBytes is the longest text or markdown Webex accepts in one
// message.
const MaxMessageBytes = 7439

// Message is one message the fake accepted, exactly as it was posted.
type Message struct {
	ID       string
	RoomID   string
	Markdown string
	Text     string
	// Bearer is the access token it was posted with (a bot's).
	Bearer  string
	Created time.Time
}

// messages is the state of the Messages API: the bots, what they may
// post where, what was posted, and its faults.
type messages struct {
	bots     map[string][]string // bot token → rooms it is a member of
	posted   []Message
	attempts int
	faults   faultQueue
}

// AddBot makes botToken a valid bearer of the Messages API, for a bot
// that is a member of rooms (as someone adding it to those spaces does).
func (f *Fake) AddBot(botToken string, rooms ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msgs.bots == nil {
		f.msgs.bots = map[string][]string{}
	}
	f.msgs.bots[botToken] = append(f.msgs.bots[botToken], rooms...)
}

// Messages returns the messages accepted so far, oldest first.
func (f *Fake) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.msgs.posted)
}

// MessageAttempts counts every POST to the Messages API, refused and
// faulted ones too.
func (f *Fake) MessageAttempts() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.msgs.attempts
}

// FailMessagesNext makes the next n posts of a message show fault (any
// kind but FaultInvalidGrant and FaultLostAnswer makes sense), after
// those already queued. They are apart from the token endpoint's faults.
func (f *Fake) FailMessagesNext(n int, fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs.faults.queue(n, fault)
}

// FailMessagesAlways makes every post of a message show fault once the
// queued ones are used up, until ClearMessagesFaults.
func (f *Fake) FailMessagesAlways(fault Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs.faults.always = &fault
}

// ClearMessagesFaults removes the Messages API's faults.
func (f *Fake) ClearMessagesFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs.faults = faultQueue{}
}

// messageAnswer is the JSON of a created message, as Webex answers it.
type messageAnswer struct {
	ID          string `json:"id"`
	RoomID      string `json:"roomId"`
	RoomType    string `json:"roomType"`
	Text        string `json:"text,omitempty"`
	Markdown    string `json:"markdown,omitempty"`
	PersonID    string `json:"personId"`
	PersonEmail string `json:"personEmail"`
	Created     string `json:"created"`
}

// serveMessages serves POST /v1/messages with the checks Webex makes: a
// valid bearer token (401), a well-formed body with roomId and text or
// markdown of at most MaxMessageBytes (400), a room the bot is a member
// of (404). Faults and latency apply as on the token endpoint; a faulted
// post is not recorded.
func (f *Fake) serveMessages(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeREST(w, restAnswer(http.StatusMethodNotAllowed, "The messages endpoint accepts POST here."))
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		writeREST(w, restAnswer(http.StatusBadRequest, "The request body cannot be read."))
		return
	}

	f.mu.Lock()
	f.msgs.attempts++
	fault, faulted := f.msgs.faults.next()
	latency, stop := f.latency, f.stop
	f.mu.Unlock()

	if latency > 0 && !wait(r, latency, stop) {
		return
	}
	if faulted {
		answerFault(w, r, fault, stop)
		return
	}
	f.mu.Lock()
	a := f.postLocked(r.Header.Get("Authorization"), raw)
	f.mu.Unlock()
	if a.status == http.StatusOK {
		writeJSON(w, a.status, a.body)
		return
	}
	writeREST(w, a)
}

// postLocked checks a post as Webex does and records the message.
func (f *Fake) postLocked(authorization string, raw []byte) answer {
	bearer, ok := strings.CutPrefix(authorization, "Bearer ")
	rooms, known := f.msgs.bots[bearer]
	if !ok || !known {
		return restAnswer(http.StatusUnauthorized, "The request requires a valid access token set in the Authorization request header.")
	}
	var body struct {
		RoomID   string `json:"roomId"`
		Text     string `json:"text"`
		Markdown string `json:"markdown"`
	}
	if json.Unmarshal(raw, &body) != nil || body.RoomID == "" || body.Text == "" && body.Markdown == "" {
		return restAnswer(http.StatusBadRequest, "roomId and text or markdown are required.")
	}
	if len(body.Text) > MaxMessageBytes || len(body.Markdown) > MaxMessageBytes {
		return restAnswer(http.StatusBadRequest, "The message is too long.")
	}
	if !slices.Contains(rooms, body.RoomID) {
		return restAnswer(http.StatusNotFound, "Could not find a room with provided ID.")
	}
	m := Message{ID: random("FAKE_MSG_"), RoomID: body.RoomID, Markdown: body.Markdown, Text: body.Text, Bearer: bearer, Created: f.now()}
	f.msgs.posted = append(f.msgs.posted, m)
	return answer{http.StatusOK, messageAnswer{
		ID: m.ID, RoomID: m.RoomID, RoomType: "group", Text: m.Text, Markdown: m.Markdown,
		PersonID: "FAKE_BOT", PersonEmail: "notifier@webex.bot", Created: m.Created.UTC().Format(time.RFC3339Nano),
	}}
}
