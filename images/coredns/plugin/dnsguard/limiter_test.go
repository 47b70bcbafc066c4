package dnsguard

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFakeLimiter(rate, burst float64) (*Limiter, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return &Limiter{Rate: rate, Burst: burst, Now: clock.now}, clock
}

// take calls Allow n times and returns how many were allowed.
func take(l *Limiter, key string, n int) int {
	allowed := 0
	for range n {
		if l.Allow(key) {
			allowed++
		}
	}
	return allowed
}

func TestLimiterBurstThenRate(t *testing.T) {
	l, clock := newFakeLimiter(50, 100)
	if got := take(l, "10.0.0.5", 150); got != 100 {
		t.Fatalf("a burst of 150 at one instant: %d allowed, want the burst (100)", got)
	}
	clock.advance(100 * time.Millisecond) // earns 5
	if got := take(l, "10.0.0.5", 10); got != 5 {
		t.Fatalf("after 100 ms at 50/s: %d allowed, want 5", got)
	}
	clock.advance(19 * time.Millisecond) // earns 0.95: not a whole token
	if l.Allow("10.0.0.5") {
		t.Fatal("allowed with 0.95 tokens")
	}
	clock.advance(time.Millisecond) // 0.95 + 0.05 = 1
	if !l.Allow("10.0.0.5") {
		t.Fatal("refused with a whole token earned")
	}
	// Sustained: one second of queries at 200/s gets the rate, 50.
	allowed := 0
	for range 200 {
		clock.advance(5 * time.Millisecond)
		if l.Allow("10.0.0.5") {
			allowed++
		}
	}
	if allowed != 50 {
		t.Fatalf("sustained 200/s for 1 s: %d allowed, want 50", allowed)
	}
}

func TestLimiterKeysAreIndependentAndRefillCapsAtBurst(t *testing.T) {
	l, clock := newFakeLimiter(10, 20)
	if take(l, "a", 20) != 20 || l.Allow("a") {
		t.Fatal("a: want exactly the burst")
	}
	if take(l, "b", 20) != 20 {
		t.Fatal("b was limited by a's queries")
	}
	clock.advance(time.Hour) // refills to the burst, not beyond
	if got := take(l, "a", 100); got != 20 {
		t.Fatalf("after an hour idle: %d allowed, want the burst (20)", got)
	}
}

func TestLimiterClockStepBackEarnsNothing(t *testing.T) {
	l, clock := newFakeLimiter(10, 2)
	take(l, "a", 2)
	clock.advance(-time.Minute)
	if l.Allow("a") {
		t.Fatal("a step back in time earned a token")
	}
}

func TestLimiterForgetsRefilledClients(t *testing.T) {
	l, clock := newFakeLimiter(10, 20)
	for _, key := range []string{"a", "b", "c"} {
		take(l, key, 20)
	}
	clock.advance(time.Second) // a, b, c at 10 of 20: kept
	l.Allow("d")
	if l.Len() != 4 {
		t.Fatalf("%d keys", l.Len())
	}
	clock.advance(sweepEvery) // a, b, c refilled; d refilled as well
	l.Allow("e")
	if l.Len() != 1 {
		t.Fatalf("after a sweep %d keys remain, want only e", l.Len())
	}
}

func TestLineLimiterCountsSuppressedLines(t *testing.T) {
	inner, clock := newFakeLimiter(1, 2)
	lines := NewLineLimiter(inner)
	for i, want := range []bool{true, true, false, false, false} {
		if ok, n := lines.Take("10.0.0.5"); ok != want || n != 0 {
			t.Fatalf("line %d: (%v, %d), want (%v, 0)", i, ok, n, want)
		}
	}
	if ok, _ := lines.Take("10.0.0.6"); !ok {
		t.Fatal("another client's line was suppressed")
	}
	clock.advance(time.Second)
	if ok, n := lines.Take("10.0.0.5"); !ok || n != 3 {
		t.Fatalf("after a second: (%v, %d), want (true, 3)", ok, n)
	}
	if ok, n := lines.Take("10.0.0.5"); ok || n != 0 {
		t.Fatalf("(%v, %d), want (false, 0)", ok, n)
	}
}

func TestSharedLimiterIsOnePerConfiguration(t *testing.T) {
	if sharedLimiter(7, 9) != sharedLimiter(7, 9) {
		t.Fatal("two limiters for the same configuration")
	}
	if sharedLimiter(7, 9) == sharedLimiter(7, 10) {
		t.Fatal("one limiter for two configurations")
	}
}
