package main

import "sync"

// records is a list that the campaign's goroutines append to while it runs
// and the checks read at the end.
type records[T any] struct {
	mu   sync.Mutex
	list []T
}

func (l *records[T]) add(v T) {
	l.mu.Lock()
	l.list = append(l.list, v)
	l.mu.Unlock()
}

// all returns a copy of the list.
func (l *records[T]) all() []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]T(nil), l.list...)
}
