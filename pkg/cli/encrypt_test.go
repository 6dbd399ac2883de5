package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeEncryptionTools puts a cryptsetup and a systemd-cryptenroll that
// says it is the given systemd version first in $PATH: the plan asks the
// enroller for its version, and nothing here runs them otherwise.
func fakeEncryptionTools(t *testing.T, version string) {
	t.Helper()
	bin := t.TempDir()
	for name, body := range map[string]string{
		"cryptsetup":          "#!/bin/sh\nexit 1\n",
		"systemd-cryptenroll": "#!/bin/sh\n[ \"$1\" = --version ] && echo 'systemd " + version + " (test)' && exit 0\nexit 1\n",
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
}

func writeDefs(t *testing.T, defs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range defs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestTPM2PolicyInPlan: the dry run says what each volume's key is bound
// to: a definition's TPM2PCRs=, the signed policy of --tpm2-public-key=
// (PCR 11 by default), and the key file of KeyFile=.
func TestTPM2PolicyInPlan(t *testing.T) {
	t.Setenv("SYSTEMD_IN_INITRD", "0")
	fakeEncryptionTools(t, "262")
	dir := t.TempDir()
	pem := filepath.Join(dir, "signing.pem")
	key := filepath.Join(dir, "home.key")
	for path, body := range map[string]string{pem: "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n", key: "k"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	defs := writeDefs(t, map[string]string{
		"home.conf": "[Partition]\nType=home\nEncrypt=key-file\nKeyFile=" + key + "\nSizeMaxBytes=32M\n",
		"var.conf":  "[Partition]\nType=var\nEncrypt=tpm2\nTPM2PCRs=secure-boot-policy\nSizeMaxBytes=32M\n",
		"srv.conf":  "[Partition]\nType=srv\nEncrypt=tpm2\nSizeMaxBytes=32M\n",
	})
	img := imageWithStore(t)
	code, errOut := runMain(t, "--compat=262", "--definitions="+defs, "--tpm2-device=/dev/null", "--tpm2-public-key="+pem, img)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	signed := "a PCR policy signed by the key in " + pem + " for PCRs 11"
	for _, want := range []string{
		// 262 labels the volume luks-<partition label> (259).
		`label "luks-home", Encrypt=key-file; key slot 0: the key in ` + key,
		`label "luks-var", Encrypt=tpm2; key slot 0: a key sealed to the TPM2 /dev/null, bound to PCRs 7, ` + signed,
		// 262: no PCRs unless asked for.
		`label "luks-srv", Encrypt=tpm2; key slot 0: a key sealed to the TPM2 /dev/null, bound to no PCRs, ` + signed,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the plan does not say %q:\n%s", want, errOut)
		}
	}
}

// TestTPM2PolicyRefusals: what cannot be enrolled is refused before the
// first write, in a dry run too, and only when a TPM2 volume is made.
func TestTPM2PolicyRefusals(t *testing.T) {
	t.Setenv("SYSTEMD_IN_INITRD", "0")
	fakeEncryptionTools(t, "252")
	policy := filepath.Join(t.TempDir(), "pcrlock.json")
	if err := os.WriteFile(policy, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	tpm2 := writeDefs(t, map[string]string{"var.conf": "[Partition]\nType=var\nEncrypt=tpm2\nSizeMaxBytes=32M\n"})
	img := imageWithStore(t)
	before := stateOf(t, img)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tpm2-pcrlock=" + policy}, "needs systemd-cryptenroll 255 or later to enroll it; this system's is 252"},
		{[]string{"--tpm2-public-key=/nonexistent/signing.pem"}, "--tpm2-public-key=/nonexistent/signing.pem"},
		{[]string{"--tpm2-public-key=" + policy}, "not a PEM file"},
	} {
		args := append([]string{"--compat=262", "--dry-run=no", "--definitions=" + tpm2, "--tpm2-device=/dev/null"}, c.args...)
		code, errOut := runMain(t, append(args, img)...)
		if code != ExitFailure || !strings.Contains(errOut, c.want) || !strings.Contains(errOut, "future partition 3") {
			t.Errorf("%v: exit %d, want 1 and %q:\n%s", c.args, code, c.want, errOut)
		}
	}
	if stateOf(t, img) != before {
		t.Fatal("a refused run changed the image")
	}
	// var exists (made without Encrypt=): nothing is enrolled, so the
	// missing key refuses nothing.
	plain := writeDefs(t, map[string]string{"var.conf": "[Partition]\nType=var\nSizeMaxBytes=32M\n"})
	if code, errOut := runMain(t, "--dry-run=no", "--definitions="+plain, img); code != 0 {
		t.Fatalf("making var: exit %d\n%s", code, errOut)
	}
	code, errOut := runMain(t, "--compat=262", "--dry-run=no", "--definitions="+tpm2, "--tpm2-device=/dev/null", "--tpm2-public-key=/nonexistent/signing.pem", img)
	if code != 0 || !strings.Contains(errOut, "No changes.") {
		t.Errorf("the no-op run with a missing key: exit %d\n%s", code, errOut)
	}
}

func TestTPM2Flags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // "" parses
	}{
		{[]string{"--compat=262", "--tpm2-pcrs=kernel-boot+7"}, ""},
		{[]string{"--compat=252", "--tpm2-pcrs=kernel-boot"}, "PCR names were added in systemd 254"},
		{[]string{"--compat=254", "--tpm2-pcrlock=/x.json"}, "--tpm2-pcrlock= needs systemd-repart 255 or later, but --compat=254"},
		{[]string{"--compat=262", "--tpm2-public-key-pcrs=11,12"}, ""},
		{[]string{"--compat=262", "--tpm2-pcrs=24"}, "--tpm2-pcrs=24: \"24\" is not a PCR number"},
		{[]string{"--compat=262", "--tpm2-public-key-pcrs=nope"}, "--tpm2-public-key-pcrs=nope"},
		{[]string{"--compat=262", "--tpm2-pcrlock=/x.json", "--tpm2-public-key=", "--tpm2-public-key-pcrs="}, ""},
	} {
		cfg, err := parse(c.args)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		case err == nil && c.args[1] == "--tpm2-pcrs=kernel-boot+7" && *cfg.tpm2PCRs != "7+11":
			t.Errorf("%v: PCRs %q", c.args, *cfg.tpm2PCRs)
		}
	}
}

// TestKeysOfNewerVersions: a definition with TPM2PCRs= (259) is refused
// under --compat=257 with file:line and the version that added the key,
// and read under --compat=262.
func TestKeysOfNewerVersions(t *testing.T) {
	t.Setenv("SYSTEMD_IN_INITRD", "0")
	defs := writeDefs(t, map[string]string{"var.conf": "[Partition]\nType=var\nTPM2PCRs=7\n"})
	img := imageWithStore(t)
	code, errOut := runMain(t, "--compat=257", "--definitions="+defs, img)
	if code != ExitFailure || !strings.Contains(errOut, "var.conf:3: TPM2PCRs= needs systemd-repart 259 or later, but --compat=257") {
		t.Errorf("--compat=257: exit %d\n%s", code, errOut)
	}
	if code, errOut := runMain(t, "--compat=262", "--definitions="+defs, img); code != 0 {
		t.Errorf("--compat=262: exit %d\n%s", code, errOut)
	}
}
