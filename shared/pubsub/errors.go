package pubsub

import (
	"errors"
	"fmt"
)

// ErrTopicNotFound matches (errors.Is) the error of a publish to a topic
// that does not exist. The topic is created by the deployment, never by
// the binaries; until it exists, events wait in the outbox.
var ErrTopicNotFound = errors.New("topic not found")

// TopicNotFoundError is the error of a publish to a missing topic.
type TopicNotFoundError struct {
	Topic string // projects/<project>/topics/<topic>
}

func (e *TopicNotFoundError) Error() string {
	return fmt.Sprintf("topic %s not found; events wait in the outbox", e.Topic)
}

// Is makes errors.Is(err, ErrTopicNotFound) true.
func (e *TopicNotFoundError) Is(target error) bool { return target == ErrTopicNotFound }
