package luks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sprout-initrd/sprout/pkg/encryption"
)

func ptr(s string) *string { return &s }

// The rules of the versions sprout follows.
var (
	rules252 = encryption.RulesAt(252)
	rules257 = encryption.RulesAt(257)
	rules262 = encryption.RulesAt(262)
)

// TestResolve: each case is a token systemd-repart made on its oracle
// (offline, with an swtpm): the PCRs, signed policy and pcrlock policy
// of the systemd-tpm2 token for the same files and flags.
func TestResolve(t *testing.T) {
	root := t.TempDir()
	write := func(path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pem := "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
	explicit := filepath.Join(root, "signing.pem")
	write("signing.pem", pem)
	type files struct{ runKey, stubKey, pcrlock bool }
	cases := []struct {
		name  string
		rules encryption.Rules
		files files
		req   Request
		init  bool
		// want: PCRs, public key (path under root), its PCRs, pcrlock
		pcrs, key, keyPCRs, pcrlock string
	}{
		{name: "252 default", rules: rules252, pcrs: "7"},
		{name: "257 default", rules: rules257, pcrs: "7"},
		{name: "262 default: no PCRs", rules: rules262},
		{name: "252 finds the key in /run/systemd", rules: rules252, files: files{runKey: true},
			pcrs: "7", key: "/run/systemd/tpm2-pcr-public-key.pem", keyPCRs: "11"},
		{name: "262 finds the key in /run/systemd", rules: rules262, files: files{runKey: true},
			key: "/run/systemd/tpm2-pcr-public-key.pem", keyPCRs: "11"},
		{name: "262 in the initrd finds the UKI's key", rules: rules262, files: files{stubKey: true}, init: true,
			key: "/.extra/tpm2-pcr-public-key.pem", keyPCRs: "11"},
		{name: "262 outside the initrd does not look in /.extra", rules: rules262, files: files{stubKey: true}},
		{name: "257 in the initrd does not look in /.extra", rules: rules257, files: files{stubKey: true}, init: true, pcrs: "7"},
		{name: "an empty --tpm2-public-key= still looks", rules: rules262, files: files{runKey: true}, req: Request{PublicKey: ptr("")},
			key: "/run/systemd/tpm2-pcr-public-key.pem", keyPCRs: "11"},
		{name: "an empty --tpm2-public-key-pcrs= turns the signed policy off", rules: rules262, files: files{runKey: true},
			req: Request{PublicKeyPCRs: ptr("")}},
		{name: "--tpm2-public-key-pcrs= without a key", rules: rules262, req: Request{PublicKeyPCRs: ptr("12")}},
		{name: "--tpm2-public-key=", rules: rules262, req: Request{PublicKey: &explicit, PublicKeyPCRs: ptr("11+12")},
			key: explicit, keyPCRs: "11+12"},
		{name: "262 key and --tpm2-pcrs=7", rules: rules262, files: files{runKey: true}, req: Request{TPM2PCRs: ptr("7")},
			pcrs: "7", key: "/run/systemd/tpm2-pcr-public-key.pem", keyPCRs: "11"},
		{name: "257 pcrlock policy replaces PCR 7", rules: rules257, files: files{pcrlock: true}, pcrlock: "/run/systemd/pcrlock.json"},
		{name: "257 pcrlock and --tpm2-pcrs=7", rules: rules257, files: files{pcrlock: true}, req: Request{TPM2PCRs: ptr("7")},
			pcrs: "7", pcrlock: "/run/systemd/pcrlock.json"},
		{name: "an empty --tpm2-pcrlock= turns it off", rules: rules262, files: files{pcrlock: true}, req: Request{PCRLock: ptr("")}},
		{name: "252 has no pcrlock", rules: rules252, files: files{pcrlock: true}, pcrs: "7"},
		{name: "257 --tpm2-pcrs=", rules: rules257, req: Request{TPM2PCRs: ptr("")}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, p := range []string{"run", ".extra"} {
				os.RemoveAll(filepath.Join(root, p))
			}
			if c.files.runKey {
				write("run/systemd/tpm2-pcr-public-key.pem", pem)
			}
			if c.files.stubKey {
				write(".extra/tpm2-pcr-public-key.pem", pem)
			}
			if c.files.pcrlock {
				write("run/systemd/pcrlock.json", "{}")
			}
			s, err := Resolve(c.req, c.rules, Files{Root: root, InInitrd: c.init})
			if err != nil {
				t.Fatal(err)
			}
			if s.TPM2PCRs != c.pcrs || s.PublicKey != c.key || s.PublicKeyPCRs != c.keyPCRs || s.PCRLock != c.pcrlock {
				t.Errorf("got PCRs %q, key %q on %q, pcrlock %q\nwant PCRs %q, key %q on %q, pcrlock %q",
					s.TPM2PCRs, s.PublicKey, s.PublicKeyPCRs, s.PCRLock, c.pcrs, c.key, c.keyPCRs, c.pcrlock)
			}
		})
	}
}

// TestResolveUnreadable: a key or policy named on the command line that
// cannot be read is the error, and the other settings stay complete.
func TestResolveUnreadable(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(notPEM, []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, req := range []Request{
		{KeyFile: "/etc/disk.key", PublicKey: ptr("/nonexistent/key.pem")},
		{KeyFile: "/etc/disk.key", PublicKey: &notPEM},
		{KeyFile: "/etc/disk.key", PCRLock: ptr("/nonexistent/pcrlock.json")},
	} {
		s, err := Resolve(req, rules262, Files{Root: t.TempDir()})
		if err == nil || s.KeyFile != "/etc/disk.key" {
			t.Errorf("%+v: settings %+v, err %v", req, s, err)
		}
	}
}

// TestForPartition: KeyFile= and TPM2PCRs= hold unless the command line
// names a key file or PCRs (262: --key-file= and a non-empty
// --tpm2-pcrs= win; an empty --tpm2-pcrs= does not).
func TestForPartition(t *testing.T) {
	cases := []struct {
		name        string
		req         Request
		keyFile     string
		pcrs        *string
		wantKey     string
		wantPCRs    string
		rulesOfTest encryption.Rules
	}{
		{"nothing set", Request{}, "", nil, "", "", rules262},
		{"KeyFile=", Request{}, "/a.key", nil, "/a.key", "", rules262},
		{"KeyFile= and --key-file=", Request{KeyFile: "/b.key"}, "/a.key", nil, "/b.key", "", rules262},
		{"TPM2PCRs=7", Request{}, "", ptr("7"), "", "7", rules262},
		{"TPM2PCRs=7 --tpm2-pcrs=1", Request{TPM2PCRs: ptr("1")}, "", ptr("7"), "", "1", rules262},
		{"TPM2PCRs=7 --tpm2-pcrs=", Request{TPM2PCRs: ptr("")}, "", ptr("7"), "", "7", rules262},
		{"TPM2PCRs= --tpm2-pcrs=7", Request{TPM2PCRs: ptr("7")}, "", ptr(""), "", "7", rules262},
		{"TPM2PCRs= under the 257 default", Request{}, "", ptr(""), "", "", rules257},
	}
	for _, c := range cases {
		s, err := Resolve(c.req, c.rulesOfTest, Files{Root: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		s = s.ForPartition(c.keyFile, c.pcrs)
		if s.KeyFile != c.wantKey || s.TPM2PCRs != c.wantPCRs {
			t.Errorf("%s: key %q, PCRs %q; want %q, %q", c.name, s.KeyFile, s.TPM2PCRs, c.wantKey, c.wantPCRs)
		}
	}
}

// TestPolicyArgs: what sprout decided is passed whole; "none" is said
// explicitly, since systemd-cryptenroll looks for a key and (255 on) a
// pcrlock policy itself; 252's has no --tpm2-pcrlock=.
func TestPolicyArgs(t *testing.T) {
	cases := []struct {
		s    encryption.Settings
		want string
	}{
		{encryption.Settings{Enroller: 252}, "--tpm2-public-key="},
		{encryption.Settings{Enroller: 257}, "--tpm2-public-key= --tpm2-pcrlock="},
		{encryption.Settings{Enroller: 262, PublicKey: "/.extra/tpm2-pcr-public-key.pem", PublicKeyPCRs: "11"},
			"--tpm2-public-key=/.extra/tpm2-pcr-public-key.pem --tpm2-public-key-pcrs=11 --tpm2-pcrlock="},
		{encryption.Settings{Enroller: 262, PCRLock: "/run/systemd/pcrlock.json"}, "--tpm2-public-key= --tpm2-pcrlock=/run/systemd/pcrlock.json"},
		{encryption.Settings{Enroller: 252, PublicKey: "/k.pem", PublicKeyPCRs: "11+12"}, "--tpm2-public-key=/k.pem --tpm2-public-key-pcrs=11+12"},
	}
	for _, c := range cases {
		if got := strings.Join(policyArgs(c.s), " "); got != c.want {
			t.Errorf("%+v: %s, want %s", c.s, got, c.want)
		}
	}
}

func TestEnrollerVersion(t *testing.T) {
	out := func(s string, err error) func(...string) ([]byte, error) {
		return func(...string) ([]byte, error) { return []byte(s), err }
	}
	if v, err := EnrollerVersion(out("systemd 252 (252.39-1~deb12u2)\n+PAM +AUDIT\n", nil)); err != nil || v != 252 {
		t.Errorf("252: %d %v", v, err)
	}
	if _, err := EnrollerVersion(out("something else\n", nil)); err == nil {
		t.Error("no version: no error")
	}
	if _, err := EnrollerVersion(out("", errors.New("exit 1"))); err == nil {
		t.Error("failed: no error")
	}
}
