package notify

import (
	"strings"
	"testing"
)

// The specification's own example: its reference libraries sign it so.
func TestSignStandardWebhooksExample(t *testing.T) {
	key, err := webhookKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	got := sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestWebhookKey(t *testing.T) {
	tests := []struct {
		name, secret string
		wantLen      int // 0: an error
	}{
		{"whsec, 24 bytes", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 24},
		{"whsec, not base64", "whsec_not base64 at all!!!!!!!!!!!!", 0},
		{"whsec, too short", "whsec_c2hvcnQ=", 0},
		{"whsec, too long", "whsec_" + strings.Repeat("QUFB", 22), 0},
		{"plain, used as it is", "a-plain-secret-of-28-chars!!", 28},
		{"plain, too short", "short", 0},
	}
	for _, tt := range tests {
		key, err := webhookKey(tt.secret)
		switch {
		case tt.wantLen == 0 && err == nil:
			t.Errorf("%s: got a key, want an error", tt.name)
		case tt.wantLen != 0 && (err != nil || len(key) != tt.wantLen):
			t.Errorf("%s: got %d bytes, %v; want %d bytes", tt.name, len(key), err, tt.wantLen)
		}
		if err != nil && strings.Contains(err.Error(), strings.TrimPrefix(tt.secret, "whsec_")) {
			t.Errorf("%s: the error %q repeats the secret", tt.name, err)
		}
	}
}
