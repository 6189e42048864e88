package firestore

import (
	"context"
	"fmt"
)

// Count is the number of token documents, from an aggregation query: it
// costs one read per 1000 documents, not one per document.
func (s *Store) Count(ctx context.Context) (int64, error) {
	res, err := s.coll.NewAggregationQuery().WithCount("n").Get(ctx)
	s.reads.Add(1)
	if err != nil {
		return 0, fmt.Errorf("count tokens: %w", translate(err, false))
	}
	v, ok := res["n"]
	if !ok {
		return 0, fmt.Errorf("count tokens: no count in the answer")
	}
	switch n := v.(type) {
	case int64:
		return n, nil
	case interface{ GetIntegerValue() int64 }:
		return n.GetIntegerValue(), nil
	}
	return 0, fmt.Errorf("count tokens: unexpected %T", v)
}
