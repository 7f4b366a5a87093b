package clock

import (
	"testing"
	"time"
)

func TestFake(t *testing.T) {
	start := time.Unix(1000, 0)
	f := NewFake(start)
	tk := f.NewTicker(10 * time.Millisecond)
	a := f.After(25 * time.Millisecond)
	f.Advance(10 * time.Millisecond)
	select {
	case <-tk.C():
	default:
		t.Fatal("ticker did not fire")
	}
	select {
	case <-a:
		t.Fatal("after fired early")
	default:
	}
	f.Advance(20 * time.Millisecond)
	select {
	case <-a:
	default:
		t.Fatal("after did not fire")
	}
	<-tk.C()
	tk.Stop()
	f.Advance(time.Second)
	select {
	case <-tk.C():
		t.Fatal("stopped ticker fired")
	default:
	}
	if got := f.Now().Sub(start); got != 1030*time.Millisecond {
		t.Fatalf("now moved %v", got)
	}
}

func TestReal(t *testing.T) {
	c := Real()
	tk := c.NewTicker(time.Millisecond)
	<-tk.C()
	tk.Stop()
	<-c.After(time.Millisecond)
	if c.Now().IsZero() {
		t.Fatal("zero time")
	}
}
