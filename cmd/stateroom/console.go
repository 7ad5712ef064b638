package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// console writes what is meant for the person at the terminal: the line
// with the URL, build progress, how long a build took. Plain
// "stateroom: ..." lines read better than log records for these; with
// --log-format json they become records, so a log collector sees one
// format.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	logger *slog.Logger // non-nil: write records instead of lines
}

// newConsole returns a console on w; json routes messages to logger.
func newConsole(w io.Writer, logger *slog.Logger, json bool) *console {
	c := &console{w: w}
	if json {
		c.logger = logger
	}
	return c
}

// Printf writes one message.
func (c *console) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.logger != nil {
		c.logger.Info(msg)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(c.w, "stateroom: "+strings.TrimRight(msg, "\n"))
}
