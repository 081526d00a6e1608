package deadlock

import (
	"errors"
	"sync"
	"time"
)

// Sweeper runs a sweep function every interval on its own goroutine: the
// engine of the Periodic mode. It owns the goroutine; Stop waits for it.
type Sweeper struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartSweeper starts calling sweep every interval until Stop. A sweep that
// runs long delays the next one; sweeps never overlap.
func StartSweeper(interval time.Duration, sweep func()) (*Sweeper, error) {
	if interval <= 0 {
		return nil, errors.New("txkv: deadlock sweep interval must be positive")
	}
	if sweep == nil {
		return nil, errors.New("txkv: deadlock sweep function is nil")
	}
	s := &Sweeper{stop: make(chan struct{}), done: make(chan struct{})}
	go s.run(interval, sweep)
	return s, nil
}

func (s *Sweeper) run(interval time.Duration, sweep func()) {
	defer close(s.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			sweep()
		case <-s.stop:
			return
		}
	}
}

// Stop ends the sweeper and waits for its goroutine; a sweep in progress
// finishes first. Stop may be called more than once.
func (s *Sweeper) Stop() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}
