package activitytest

import (
	"testing"

	"github.com/wxcc/tokenservice/shared/activity"
)

func TestMemoryContract(t *testing.T) {
	Run(t, func(*testing.T) activity.Store { return &Memory{} })
}
