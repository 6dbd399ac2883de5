package sdvalue

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// Specifiers holds what the % specifiers of Label= expand to. The caller
// resolves them (hostfacts.Read reads them from the system); parsing
// only substitutes, so it stays free of I/O and testable with any values.
type Specifiers struct {
	// Values maps a specifier letter (see SpecifierLetters) to its text.
	Values map[byte]string
	// Missing maps a letter whose source does not exist (no os-release, no
	// machine ID) to the reason. systemd-repart 252 then ignores the whole
	// Label= line with a warning, and so does sprout.
	Missing map[byte]error

	// lazy, when set (LazySpecifiers), supplies Values and Missing the
	// first time a label has a specifier.
	lazy *lazySpecifiers
}

// LazySpecifiers returns Specifiers that call read once, when the first
// label with a specifier is expanded. Labels without one are the common
// case, and every boot's no-op run then reads no os-release, machine ID
// or boot ID at all.
func LazySpecifiers(read func() Specifiers) Specifiers {
	return Specifiers{lazy: &lazySpecifiers{read: read}}
}

type lazySpecifiers struct {
	once sync.Once
	read func() Specifiers
	sp   Specifiers
}

func (l *lazySpecifiers) get() Specifiers {
	l.once.Do(func() { l.sp = l.read() })
	return l.sp
}

// SpecifierLetters are the specifiers systemd-repart 252 expands in
// Label= (repart.d(5), "Specifiers"); "%%" stands for "%".
const SpecifierLetters = "aAbBHlmMovwWTV"

// MissingSpecifierError says that a known specifier has no value because
// its source is missing.
type MissingSpecifierError struct {
	Letter byte
	Err    error
}

func (e *MissingSpecifierError) Error() string {
	return fmt.Sprintf("specifier %%%c has no value: %v", e.Letter, e.Err)
}

func (e *MissingSpecifierError) Unwrap() error { return e.Err }

// errNotResolved is the reason for a letter the caller gave no value for.
var errNotResolved = errors.New("not resolved")

// Expand substitutes the specifiers in s. An unknown specifier is an error
// wherever it is (252 would ignore the line; sprout refuses rather than
// write a different label). A known specifier without a value gives a
// *MissingSpecifierError. A "%" at the very end stays as it is, as in
// systemd.
func (sp Specifiers) Expand(s string) (string, error) {
	if err := checkSpecifiers(s); err != nil {
		return "", err
	}
	if !strings.Contains(s, "%") {
		return s, nil
	}
	if sp.lazy != nil {
		sp = sp.lazy.get()
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i == len(s)-1 {
			b.WriteByte(s[i])
			continue
		}
		i++
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := sp.Values[s[i]]
		if !ok {
			why := sp.Missing[s[i]]
			if why == nil {
				why = errNotResolved
			}
			return "", &MissingSpecifierError{Letter: s[i], Err: why}
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// checkSpecifiers refuses the first specifier that 252 does not know.
func checkSpecifiers(s string) error {
	for i := 0; i < len(s)-1; i++ {
		if s[i] != '%' {
			continue
		}
		i++
		if s[i] == '%' || strings.IndexByte(SpecifierLetters, s[i]) >= 0 {
			continue
		}
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("unknown specifier %s (systemd-repart 252 knows %s in Label=; write %%%% for a literal %%)",
			ShowName("", "%"+string(r), ""), listLetters())
	}
	return nil
}

func listLetters() string {
	parts := make([]string, 0, len(SpecifierLetters)+1)
	for i := 0; i < len(SpecifierLetters); i++ {
		parts = append(parts, "%"+SpecifierLetters[i:i+1])
	}
	return strings.Join(append(parts, "%%"), " ")
}
