package firestore

import (
	"context"
	"os"
	"strings"

	vkit "cloud.google.com/go/firestore/apiv1"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// listenClient is a Firestore API client for Listen calls, and what to
// close after.
type listenClient struct {
	*vkit.Client
	conn *grpc.ClientConn
}

func (c *listenClient) Close() {
	c.Client.Close()
	if c.conn != nil {
		c.conn.Close()
	}
}

// dialListen connects as the client library does: to the emulator when
// FIRESTORE_EMULATOR_HOST is set (as its owner), else to Firestore with
// the application's default credentials.
func dialListen(ctx context.Context) (*listenClient, error) {
	addr := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if addr == "" {
		c, err := vkit.NewClient(ctx)
		if err != nil {
			return nil, err
		}
		return &listenClient{Client: c}, nil
	}
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "http://"), "https://")
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(emulatorOwner{}))
	if err != nil {
		return nil, err
	}
	c, err := vkit.NewClient(ctx, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &listenClient{Client: c, conn: conn}, nil
}

// emulatorOwner authenticates to the Firestore emulator as its owner,
// the credentials the emulator accepts from the client library.
type emulatorOwner struct{}

func (emulatorOwner) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer owner"}, nil
}

func (emulatorOwner) RequireTransportSecurity() bool { return false }
