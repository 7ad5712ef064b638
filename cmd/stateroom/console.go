package main

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// console writes what is meant for the person at the terminal: the line
// with the URL, build progress, how long a build took, one line per swap.
// Each is a log record of the command's logger, so the terminal shows one
// style of line (slog's text, or JSON with --log-format json) whether it
// comes from the command, the room server or the WebAssembly host.
type console struct {
	logger *slog.Logger
}

// newConsole returns a console writing through logger. The writer and the
// json flag its callers pass are what the logger was built from (the
// command's stderr, --log-format), so the console needs only the logger.
func newConsole(_ io.Writer, logger *slog.Logger, _ bool) *console {
	return &console{logger: logger}
}

// Printf logs one message at level info.
func (c *console) Printf(format string, args ...any) {
	c.logger.Info(message(format, args...))
}

// Warnf logs one message at level warn: something the user should fix,
// though the command goes on.
func (c *console) Warnf(format string, args ...any) {
	c.logger.Warn(message(format, args...))
}

// message formats a console message; a trailing newline would only be
// escaped in the record.
func message(format string, args ...any) string {
	return strings.TrimRight(fmt.Sprintf(format, args...), "\n")
}

// plural returns "1 room", "2 rooms": n and the noun, with "s" unless n is
// 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
