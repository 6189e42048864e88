package passphrase

import (
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// argon2id takes MemoryKiB (19 MiB by default) in one block, which the Go
// runtime keeps after the computation: the heap goal set while a block
// was live lets two or three blocks pile up as garbage before the next
// collection, and the runtime hands such memory back to the system only
// slowly. A few checks would leave the api's resident memory 40 to 60
// MiB higher for minutes (the soak campaign saw 33 → 94 MiB). So once no
// computation has run for a moment, the memory goes back at once.
var argon2Memory = &memoryReturn{release: debug.FreeOSMemory, settle: 100 * time.Millisecond}

// idKey is argon2.IDKey, counted by argon2Memory.
func idKey(p, salt []byte, t, m uint32, threads uint8, keyLen uint32) []byte {
	argon2Memory.begin()
	defer argon2Memory.end()
	return argon2.IDKey(p, salt, t, m, threads, keyLen)
}

// memoryReturn calls release once no computation has run for settle; a
// burst of computations costs one release (a collection of the heap and
// returning its free pages), and a steady stream none until it pauses.
type memoryReturn struct {
	release func()
	settle  time.Duration

	running atomic.Int64
	pending atomic.Bool
}

func (m *memoryReturn) begin() { m.running.Add(1) }

func (m *memoryReturn) end() {
	if m.running.Add(-1) != 0 || !m.pending.CompareAndSwap(false, true) {
		return
	}
	time.AfterFunc(m.settle, func() {
		m.pending.Store(false)
		// One that began meanwhile schedules its own release when it ends.
		if m.running.Load() == 0 {
			m.release()
		}
	})
}
