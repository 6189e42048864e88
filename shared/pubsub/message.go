package pubsub

import (
	"encoding/json"
	"strconv"
	"time"

	gps "cloud.google.com/go/pubsub/v2"

	"github.com/wxcc/tokenservice/shared/token"
)

// Attribute keys of a published event.
const (
	AttrSpecVersion     = "ce-specversion"
	AttrType            = "ce-type"
	AttrSource          = "ce-source"
	AttrID              = "ce-id"
	AttrTime            = "ce-time"
	AttrDataContentType = "ce-datacontenttype"
	// AttrName is the token name (also the ordering key).
	AttrName = "name"
	// AttrGeneration is the token's generation as a decimal string.
	AttrGeneration = "generation"
)

// SpecVersion and ContentType are the fixed values of ce-specversion and
// ce-datacontenttype.
const (
	SpecVersion = "1.0"
	ContentType = "application/json"
)

// Data is the JSON payload of an event message: metadata only. Times are
// milliseconds since the Unix epoch, 0 when unknown.
type Data struct {
	Name           string `json:"name"`
	Generation     int64  `json:"generation"`
	AccessExpires  int64  `json:"accessExpires"`
	RefreshExpires int64  `json:"refreshExpires"`
	Trigger        string `json:"trigger"`
	// Message is a short reason on failure events, absent otherwise.
	Message string `json:"message,omitempty"`
}

// Source returns the ce-source of the events of one deployment:
// //tokenservice/projects/<project>/collections/<collection>. CloudEvents
// wants source plus id to be unique; ids (<name>/<generation>/<type>) are
// unique within one token collection, so the source names the project and
// the collection. api and worker of a deployment use the same source.
func Source(project, collection string) string {
	return "//tokenservice/projects/" + project + "/collections/" + collection
}

// NewMessage maps e to a Pub/Sub message in CloudEvents binary mode with
// the given ce-source. The ordering key is the token name. A zero e.Time
// (never written by token.NewEvent) is replaced by the current time.
func NewMessage(e token.Event, source string) *gps.Message {
	at := e.Time
	if at.IsZero() {
		at = time.Now()
	}
	data, err := json.Marshal(Data{
		Name:           e.Name,
		Generation:     e.Generation,
		AccessExpires:  millis(e.AccessExpires),
		RefreshExpires: millis(e.RefreshExpires),
		Trigger:        string(e.Trigger),
		Message:        e.Message,
	})
	if err != nil {
		panic("events: marshal data: " + err.Error()) // only strings and integers: cannot fail
	}
	return &gps.Message{
		Data:        data,
		OrderingKey: e.Name,
		Attributes: map[string]string{
			AttrSpecVersion:     SpecVersion,
			AttrType:            string(e.Type),
			AttrSource:          source,
			AttrID:              e.ID,
			AttrTime:            at.UTC().Format(time.RFC3339Nano),
			AttrDataContentType: ContentType,
			AttrName:            e.Name,
			AttrGeneration:      strconv.FormatInt(e.Generation, 10),
		},
	}
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
