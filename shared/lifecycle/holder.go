package lifecycle

import (
	"crypto/rand"
	"os"
	"strconv"
)

// HolderID names this instance in leases: kind, the Cloud Run revision
// (K_REVISION, read through getenv) or else the host name, the process ID
// and a random part, so two instances never share one.
func HolderID(kind string, getenv func(string) string) string {
	host := getenv("K_REVISION")
	if host == "" {
		host, _ = os.Hostname()
	}
	return kind + "/" + host + "/" + strconv.Itoa(os.Getpid()) + "/" + rand.Text()[:8]
}
