package sdvalue

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ShowName shows a key or section name from a file as written between
// open and close, unless it is long or holds characters a terminal would
// not print; then it is quoted like other text from the file, so the
// message stays one short, readable line.
func ShowName(open, s, close string) string {
	if utf8.RuneCountInString(s) <= 80 && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0 {
		return open + s + close
	}
	return Quote(s)
}

// Quote shows user text in messages: Go-quoted, so control characters are
// visible, and cut after 80 characters.
func Quote(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return strconv.Quote(s)
}
