package sdvalue

import "strings"

// SystemFacts are the inputs of Label='s specifiers, read once per run
// (hostfacts.Read) so that parsing needs no I/O.
type SystemFacts struct {
	// OSRelease is the os-release of --root (etc/os-release, else
	// usr/lib/os-release); nil with OSReleaseErr when neither exists.
	OSRelease    map[string]string
	OSReleaseErr error
	// MachineID is --root's etc/machine-id (32 lowercase hex digits), ""
	// with MachineIDErr when missing, empty or not an ID.
	MachineID    string
	MachineIDErr error
	// From the running kernel: boot ID (32 hex digits), host name, release.
	BootID, Hostname, KernelRelease string
	// Arch is systemd's name of the architecture sprout was built for.
	Arch string
	// TmpDir, VarTmpDir are %T and %V.
	TmpDir, VarTmpDir string
}

// Specifiers maps the facts to the specifier letters (repart.d(5)).
func (f SystemFacts) Specifiers() Specifiers {
	sp := Specifiers{Values: map[byte]string{}, Missing: map[byte]error{}}
	sp.Values['a'] = f.Arch
	sp.Values['b'] = f.BootID
	sp.Values['H'] = f.Hostname
	short, _, _ := strings.Cut(f.Hostname, ".")
	sp.Values['l'] = short
	sp.Values['v'] = f.KernelRelease
	sp.Values['T'] = f.TmpDir
	sp.Values['V'] = f.VarTmpDir
	if f.MachineIDErr != nil {
		sp.Missing['m'] = f.MachineIDErr
	} else {
		sp.Values['m'] = f.MachineID
	}
	// A field missing from os-release expands to "" (252 does so too);
	// a missing os-release file leaves these specifiers without value.
	for letter, field := range map[byte]string{'o': "ID", 'w': "VERSION_ID", 'W': "VARIANT_ID",
		'B': "BUILD_ID", 'M': "IMAGE_ID", 'A': "IMAGE_VERSION"} {
		if f.OSReleaseErr != nil {
			sp.Missing[letter] = f.OSReleaseErr
		} else {
			sp.Values[letter] = f.OSRelease[field]
		}
	}
	return sp
}
