package repartd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// splitFields splits a value into at most max fields separated by ':',
// the way systemd-repart reads MountPoint= and EncryptedVolume= (observed
// on 262): single and double quotes group (and are removed), C escapes
// are decoded (\\, \", \', \a \b \f \n \r \t \v, \s, \xHH, \ooo, \uHHHH,
// \UHHHHHHHH; any other is invalid), and empty fields count. One ':' more
// at the very end is tolerated ("/srv:" is two fields, the second empty;
// "/srv::" too), a further field is "too many".
func splitFields(value string, max int) ([]string, error) {
	var fields []string
	var cur strings.Builder
	quote := byte(0)
	endsWithSep := false // the last byte read was a separating ':'
	for i := 0; i < len(value); i++ {
		c := value[i]
		endsWithSep = false
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '\'' || c == '"'):
			quote = c
		case c == '\\':
			r, n, err := unescape(value[i+1:])
			if err != nil {
				return nil, err
			}
			cur.WriteString(r)
			i += n
		case quote == 0 && c == ':':
			fields = append(fields, cur.String())
			cur.Reset()
			endsWithSep = true
		default:
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, errors.New("a quote is not closed")
	}
	fields = append(fields, cur.String())
	if len(fields) == max+1 && endsWithSep {
		fields = fields[:max]
	}
	if len(fields) > max {
		return nil, fmt.Errorf("more than %d fields separated by ':'", max)
	}
	return fields, nil
}

// unescape decodes the escape sequence after a backslash and reports how
// many bytes of s it used.
func unescape(s string) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("a backslash ends the value")
	}
	simple := map[byte]string{'\\': `\`, '"': `"`, '\'': `'`, 'a': "\a", 'b': "\b", 'f': "\f",
		'n': "\n", 'r': "\r", 't': "\t", 'v': "\v", 's': " "}
	if r, ok := simple[s[0]]; ok {
		return r, 1, nil
	}
	number := func(digits, base int) (uint64, error) {
		if len(s) < 1+digits {
			return 0, fmt.Errorf("the escape \\%s is too short", s)
		}
		return strconv.ParseUint(s[1:1+digits], base, 32)
	}
	switch c := s[0]; {
	case c == 'x':
		n, err := number(2, 16)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("invalid escape \\%s", s[:min(len(s), 3)])
		}
		return string([]byte{byte(n)}), 3, nil
	case c == 'u' || c == 'U':
		digits := 4
		if c == 'U' {
			digits = 8
		}
		n, err := number(digits, 16)
		if err != nil || n == 0 || !utf8.ValidRune(rune(n)) {
			return "", 0, fmt.Errorf("invalid escape \\%s", s[:min(len(s), digits+1)])
		}
		return string(rune(n)), 1 + digits, nil
	case c >= '0' && c <= '7':
		if len(s) < 3 {
			return "", 0, fmt.Errorf("invalid escape \\%s", s)
		}
		n, err := strconv.ParseUint(s[:3], 8, 32)
		if err != nil || n == 0 || n > 255 {
			return "", 0, fmt.Errorf("invalid escape \\%s", s[:3])
		}
		return string([]byte{byte(n)}), 3, nil
	}
	return "", 0, fmt.Errorf("invalid escape \\%c", s[0])
}

// tableSafe refuses what would break a whitespace-separated fstab or
// crypttab line: blanks and control characters. systemd-repart writes
// such a value as is, and the line then means something else.
func tableSafe(what, s string) error {
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%s %q contains a blank or control character, which would split its line of the generated file (systemd-repart writes it unescaped)", what, s)
		}
	}
	return nil
}

// simplifyPath makes an absolute path canonical as systemd does before it
// writes it: repeated and trailing slashes and "." components go. A ".."
// component is an error (systemd-repart ignores the line, except for
// "/.." which it turns into "/").
func simplifyPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q is not an absolute path", p)
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			return "", fmt.Errorf("%q is not normalized (it has a \"..\" component)", p)
		default:
			parts = append(parts, c)
		}
	}
	return "/" + strings.Join(parts, "/"), nil
}
