package dnsguard

import (
	"sync"
	"time"
)

// Limiter is a token bucket per key (a client address): each key may take Burst tokens at once and
// earns Rate tokens a second back, up to Burst. A key whose bucket has refilled is forgotten, so an
// idle client costs nothing and the map stays as small as the set of recently busy clients.
type Limiter struct {
	Rate  float64
	Burst float64
	// Now is the clock (time.Now; tests give a fake one).
	Now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// sweepEvery bounds how often Allow walks the map to forget refilled buckets.
const sweepEvery = 10 * time.Second

// NewLimiter returns a limiter of rate tokens a second and a burst of burst, on the real clock.
func NewLimiter(rate, burst float64) *Limiter {
	return &Limiter{Rate: rate, Burst: burst, Now: time.Now}
}

// Allow takes a token for key, reporting whether there was one.
func (l *Limiter) Allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.Now()
	if l.buckets == nil {
		l.buckets = map[string]*bucket{}
		l.lastSweep = now
	}
	if now.Sub(l.lastSweep) >= sweepEvery {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.Burst, at: now}
		l.buckets[key] = b
	} else {
		b.tokens = l.refilled(b, now)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *Limiter) refilled(b *bucket, now time.Time) float64 {
	elapsed := now.Sub(b.at).Seconds()
	if elapsed < 0 { // a clock step back earns nothing
		elapsed = 0
	}
	return min(l.Burst, b.tokens+elapsed*l.Rate)
}

func (l *Limiter) sweep(now time.Time) {
	for key, b := range l.buckets {
		if l.refilled(b, now) >= l.Burst {
			delete(l.buckets, key)
		}
	}
	l.lastSweep = now
}

// Len is the number of keys the limiter currently remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limiters holds one query limiter per configuration, shared by every server block that names it:
// the budget is per client, not per client and zone (an agent spreading queries over the allowed
// zones gets no more), and a reload with the same settings keeps the buckets.
var (
	limitersMu  sync.Mutex
	limiters    = map[[2]float64]*Limiter{}
	sharedLines *LineLimiter
)

func sharedLimiter(rate, burst float64) *Limiter {
	limitersMu.Lock()
	defer limitersMu.Unlock()
	key := [2]float64{rate, burst}
	if l, ok := limiters[key]; ok {
		return l
	}
	l := NewLimiter(rate, burst)
	limiters[key] = l
	return l
}

// ResetLimiters forgets the shared limiters' state (for tests that start CoreDNS more than once).
func ResetLimiters() {
	limitersMu.Lock()
	defer limitersMu.Unlock()
	limiters = map[[2]float64]*Limiter{}
	sharedLines = nil
}
