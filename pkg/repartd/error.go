package repartd

import (
	"fmt"
	"strconv"
)

// Error is a problem in a definition file. Every error Load and Parse
// return for bad input is an *Error (possibly wrapping an I/O error), so
// callers can point at the file, the line and the key.
type Error struct {
	File string // path of the file
	Line int    // 1-based line; 0 when the problem is not on one line
	Key  string // the setting involved ("Type", "SizeMinBytes"), or ""
	Msg  string
	Err  error // underlying cause, if any
}

func (e *Error) Error() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", where, e.Msg, e.Err)
	}
	return where + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// loc is where a setting was assigned.
type loc struct {
	file string
	line int
}

func (l loc) String() string { return l.file + ":" + strconv.Itoa(l.line) }
