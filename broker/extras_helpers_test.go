package broker

import (
	"reflect"
	"testing"
	"time"
)

func TestDelayLevels(t *testing.T) {
	d := delayLevels{time.Second, 5 * time.Second, 10 * time.Second}
	if d.maxLevel() != 3 || d.clamp(7) != 3 || d.clamp(2) != 2 || d.clamp(0) != 0 {
		t.Fatalf("clamp: %d %d %d", d.clamp(7), d.clamp(2), d.clamp(0))
	}
	if got := d.deliverAt(2, 1000); got != 6000 {
		t.Fatalf("deliverAt(2) = %d", got)
	}
	if got := d.deliverAt(9, 1000); got != 2000 {
		t.Fatalf("deliverAt beyond the table = %d, want store+1s", got)
	}
	if got := d.correctDeliverAt(2, 10_000, 15_000); got != 15_000 {
		t.Fatalf("correct in range = %d", got)
	}
	if got := d.correctDeliverAt(2, 10_000, 15_001); got != 10_000 {
		t.Fatalf("correct too far = %d, want now", got)
	}
	if scheduleQueueID(1) != 0 || scheduleQueueID(18) != 17 {
		t.Fatal("scheduleQueueID")
	}
	for in, want := range map[string]int{"3": 3, " 2 ": 2, "": 0, "x": 0, "-1": 0} {
		if got := parseDelayLevel(in); got != want {
			t.Errorf("parseDelayLevel(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestSendBackTarget(t *testing.T) {
	tests := []struct {
		name                      string
		reconsume, max, requested int32
		dlq                       bool
		level                     int32
	}{
		{"first failure, broker picks", 0, 16, 0, false, 3},
		{"fifth failure", 4, 16, 0, false, 7},
		{"client level", 1, 16, 5, false, 5},
		{"max reached", 16, 16, 0, true, 0},
		{"small max", 2, 2, 0, true, 0},
		{"client asks dlq", 0, 16, -1, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dlq, level := sendBackTarget(tt.reconsume, tt.max, tt.requested)
			if dlq != tt.dlq || level != tt.level {
				t.Fatalf("got (%v, %d), want (%v, %d)", dlq, level, tt.dlq, tt.level)
			}
		})
	}
}

func TestOpBody(t *testing.T) {
	if got := string(opBody(42)); got != "42," {
		t.Fatalf("opBody = %q", got)
	}
	if got := parseOpBody([]byte("1,2,x,,17,")); !reflect.DeepEqual(got, []int64{1, 2, 17}) {
		t.Fatalf("parseOpBody = %v", got)
	}
	if got := parseOpBody([]byte("5")); !reflect.DeepEqual(got, []int64{5}) {
		t.Fatalf("parseOpBody 4.x = %v", got)
	}
}

func TestDecideHalf(t *testing.T) {
	timeout := 6 * time.Second
	reserved := 72 * time.Hour
	tests := []struct {
		name     string
		age      int64
		times    int
		immunity string
		want     halfAction
	}{
		{"young", 1000, 0, "", halfWait},
		{"old enough", 7000, 0, "", halfCheck},
		{"checked too often", 7000, 15, "", halfDiscard},
		{"too old", (73 * time.Hour).Milliseconds(), 0, "", halfDiscard},
		{"clock went back", -5, 0, "", halfCheck},
		{"immunity longer", 7000, 0, "10", halfWait},
		{"immunity passed", 11000, 0, "10", halfCheck},
		{"immunity shorter than timeout", 3000, 0, "1", halfWait},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideHalf(tt.age, tt.times, 15, timeout, reserved, tt.immunity); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTransactionBits(t *testing.T) {
	if transactionType(0x4|0x1) != sysFlagTransPrepared || resetTransactionType(0x4|0x1, sysFlagTransCommit) != 0x9 {
		t.Fatal("transaction bits")
	}
}
