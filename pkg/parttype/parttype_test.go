package parttype

import (
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// Facts checked against systemd-repart 252.39 on x86-64 (the oracle test
// re-checks them whenever the binary is installed).
func TestLookupNativeAliases(t *testing.T) {
	amd64 := ArchFor("amd64")
	arm64 := ArchFor("arm64")
	i386 := ArchFor("386")
	tests := []struct {
		arch     Arch
		value    string
		wantGUID string // "" means not found
		wantName string
	}{
		{amd64, "root", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "root-x86-64"},
		{amd64, "root-verity", "2c7357ed-ebd2-46d9-aec1-23d437ec2bf5", "root-x86-64-verity"},
		{amd64, "root-verity-sig", "41092b05-9fc8-4523-994f-2def0408b176", "root-x86-64-verity-sig"},
		{amd64, "usr", "8484680c-9521-48c6-9c11-b0720656f69e", "usr-x86-64"},
		{amd64, "usr-verity", "77ff5f63-e7b6-4633-acf4-1565b864c0e6", "usr-x86-64-verity"},
		{amd64, "usr-verity-sig", "e7bb33fb-06cf-4e81-8273-e543b413e2e2", "usr-x86-64-verity-sig"},
		{amd64, "root-secondary", "44479540-f297-41b2-9af7-d131d5f0458a", "root-x86"},
		{amd64, "root-secondary-verity", "d13c5d3b-b5d1-422a-b29f-9454fdc89d76", "root-x86-verity"},
		{amd64, "root-secondary-verity-sig", "5996fc05-109c-48de-808b-23fa0830b676", "root-x86-verity-sig"},
		{amd64, "usr-secondary", "75250d76-8cc6-458e-bd66-bd47cc81a812", "usr-x86"},
		{amd64, "usr-secondary-verity", "8f461b0d-14ee-4e81-9aa9-049b6fb97abd", "usr-x86-verity"},
		{amd64, "usr-secondary-verity-sig", "974a71c0-de41-43c3-be5d-5c5ccd1ad2c0", "usr-x86-verity-sig"},
		{arm64, "root", "b921b045-1df0-41c3-af44-4c6f280d3fae", "root-arm64"},
		{arm64, "usr-verity", "6e11a4e7-fbca-4ded-b9e9-e1a512bb664e", "usr-arm64-verity"},
		{arm64, "root-secondary", "69dad710-2ce4-4e3c-b16c-21a1d49abed3", "root-arm"},
		{arm64, "usr-secondary-verity-sig", "d7ff812f-37d1-4902-a810-d76ba57b975a", "usr-arm-verity-sig"},
		{i386, "root", "44479540-f297-41b2-9af7-d131d5f0458a", "root-x86"},
		{i386, "root-secondary", "", ""},
		{ArchFor("riscv64"), "usr", "beaec34b-8442-439b-a40b-984381ed097d", "usr-riscv64"},
		{ArchFor("loong64"), "root", "77055800-792c-4f94-b39a-98c91b762bb6", "root-loongarch64"},
		{ArchFor("ppc64le"), "root", "c31c45e6-3f39-412e-80fb-4809c4980599", "root-ppc64-le"},
		{ArchFor("s390x"), "root-secondary", "", ""},
		{ArchFor("wasm"), "root", "", ""},
		// Per-architecture names work on any architecture.
		{i386, "root-arm64", "b921b045-1df0-41c3-af44-4c6f280d3fae", "root-arm64"},
		{amd64, "usr-tilegx-verity-sig", "4ede75e2-6ccc-4cc8-b9c7-70334b087510", "usr-tilegx-verity-sig"},
		{amd64, "root-mips64", "d113af76-80ef-41b4-bdb6-0cff4d3d4a25", "root-mips64"},
		// Generic names.
		{amd64, "esp", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "esp"},
		{amd64, "xbootldr", "bc13c2ff-59e6-4262-a352-b275fd6f7172", "xbootldr"},
		{amd64, "swap", "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f", "swap"},
		{amd64, "home", "933ac7e1-2eb4-4f13-b844-0e14e2aef915", "home"},
		{amd64, "srv", "3b8f8425-20e0-4f3b-907f-1a25a76f98e8", "srv"},
		{amd64, "var", "4d21b016-b534-45c2-a9fb-5c16e091fd2d", "var"},
		{amd64, "tmp", "7ec6f557-3bc5-4aca-b293-16ef5df639d1", "tmp"},
		{amd64, "user-home", "773f91ef-66d4-49b5-bd83-d683bf40ad16", "user-home"},
		{amd64, "linux-generic", "0fc63daf-8483-4772-8e79-3d69d8477de4", "linux-generic"},
		// Literal UUIDs: dashes optional, any case; names win over nothing.
		{amd64, "4F68BCE3E8CD4DB196E7FBCAF984B709", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "root-x86-64"},
		{amd64, "4F68BCE3-e8cd-4DB1-96e7-FBCAF984B709", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "root-x86-64"},
		{amd64, "12345678-1234-1234-1234-123456789abc", "12345678-1234-1234-1234-123456789abc", ""},
		{amd64, "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000", ""},
		// Rejected by systemd-repart 252 ("Failed to parse partition type").
		{amd64, "ESP", "", ""},
		{amd64, "Root", "", ""},
		{amd64, "root-X86-64", "", ""},
		{amd64, "root-amd64", "", ""},
		{amd64, "root-x86_64", "", ""},
		{amd64, "rootx", "", ""},
		{amd64, "", "", ""},
		{amd64, " esp", "", ""},
		{amd64, "{4f68bce3-e8cd-4db1-96e7-fbcaf984b709}", "", ""},
		{amd64, "urn:uuid:4f68bce3-e8cd-4db1-96e7-fbcaf984b709", "", ""},
		{amd64, "4f68bce3e8cd-4db1-96e7-fbcaf984b709", "", ""},
		{amd64, "4f68bce3-e8cd4db1-96e7-fbcaf984b709", "", ""},
		{amd64, "4f68bce3-e8cd-4db1-96e7-fbcaf984b70", "", ""},
		{amd64, "4f68bce3-e8cd-4db1-96e7-fbcaf984b70g", "", ""},
		{amd64, "4f68bce3e8cd4db196e7fbcaf984b7090", "", ""},
	}
	for _, tt := range tests {
		got, ok := tt.arch.Lookup(tt.value)
		if tt.wantGUID == "" {
			if ok {
				t.Errorf("%+v.Lookup(%q) = %v, want not found", tt.arch, tt.value, got)
			}
			continue
		}
		if !ok || got != uuid.MustParse(tt.wantGUID) {
			t.Errorf("%+v.Lookup(%q) = %v, %v; want %s", tt.arch, tt.value, got, ok, tt.wantGUID)
			continue
		}
		if n := Name(got); n != tt.wantName {
			t.Errorf("Name(Lookup(%q)) = %q, want %q", tt.value, n, tt.wantName)
		}
	}
}

func TestPackageLookupUsesNativeArch(t *testing.T) {
	native := ArchFor(runtime.GOARCH)
	if NativeArch() != native {
		t.Fatalf("NativeArch() = %+v, want %+v", NativeArch(), native)
	}
	if native.Native == "" {
		t.Skipf("GOARCH %s has no systemd root partition type", runtime.GOARCH)
	}
	got, ok := Lookup("root")
	if !ok || Name(got) != "root-"+native.Native {
		t.Fatalf("Lookup(root) = %v (%q), want the root-%s type", got, Name(got), native.Native)
	}
}

func TestTableShape(t *testing.T) {
	all := All()
	if len(all) != 21*6+9 {
		t.Fatalf("table has %d rows, want %d", len(all), 21*6+9)
	}
	names := map[string]bool{}
	guids := map[uuid.UUID]bool{}
	for i, ty := range all {
		if names[ty.Name] || guids[ty.GUID] {
			t.Errorf("row %d %q: duplicate name or GUID", i, ty.Name)
		}
		names[ty.Name], guids[ty.GUID] = true, true
		if g, ok := Lookup(ty.Name); !ok || g != ty.GUID {
			t.Errorf("Lookup(%q) = %v,%v; want %v", ty.Name, g, ok, ty.GUID)
		}
		if Name(ty.GUID) != ty.Name || DisplayName(ty.GUID) != ty.Name || DefaultLabel(ty.GUID) != ty.Name {
			t.Errorf("names of %v: %q %q %q, want %q", ty.GUID, Name(ty.GUID), DisplayName(ty.GUID), DefaultLabel(ty.GUID), ty.Name)
		}
		if DesignatorOf(ty.GUID) != ty.Designator {
			t.Errorf("DesignatorOf(%s) = %v, want %v", ty.Name, DesignatorOf(ty.GUID), ty.Designator)
		}
		wantPrefix := strings.SplitN(ty.Designator.String(), "-", 2)[0] + "-" + ty.Arch
		if ty.Arch != "" && !strings.HasPrefix(ty.Name, wantPrefix) {
			t.Errorf("row %q: arch %q designator %v inconsistent", ty.Name, ty.Arch, ty.Designator)
		}
	}
	// All returns a copy.
	all[0].Name = "changed"
	if All()[0].Name == "changed" {
		t.Fatal("All() exposes the table")
	}
}

func TestUnknownGUID(t *testing.T) {
	g := uuid.MustParse("12345678-1234-1234-1234-123456789ABC")
	if Name(g) != "" {
		t.Errorf("Name = %q", Name(g))
	}
	if got := DisplayName(g); got != "12345678-1234-1234-1234-123456789abc" {
		t.Errorf("DisplayName = %q", got)
	}
	if got := DefaultLabel(g); got != "linux" {
		t.Errorf("DefaultLabel = %q", got)
	}
	if DesignatorOf(g) != None {
		t.Errorf("DesignatorOf = %v", DesignatorOf(g))
	}
	if SupportsGrowFS(g) || SupportsNoAuto(g) || SupportsReadOnly(g) || IsVerity(g) {
		t.Error("unknown type claims a capability")
	}
}

// Verified with the oracle: the GPT attributes a new partition of each kind
// gets by default, with NoAuto=yes ReadOnly=yes, and with ReadOnly=no
// GrowFileSystem=yes (see TestOracleTypes).
func TestCapabilities(t *testing.T) {
	tests := []struct {
		name                             string
		noAuto, readOnly, growFS, verity bool
	}{
		{"root", true, true, true, false},
		{"root-arm64", true, true, true, false},
		{"root-verity", true, true, false, true},
		{"root-riscv64-verity", true, true, false, true},
		{"root-verity-sig", false, false, false, false},
		{"usr", true, true, true, false},
		{"usr-verity", true, true, false, true},
		{"usr-verity-sig", false, false, false, false},
		{"home", true, true, true, false},
		{"srv", true, true, true, false},
		{"var", true, true, true, false},
		{"tmp", true, true, true, false},
		{"xbootldr", true, true, true, false},
		{"swap", true, false, false, false},
		{"esp", false, false, false, false},
		{"user-home", false, false, false, false},
		{"linux-generic", false, false, false, false},
	}
	for _, tt := range tests {
		g, ok := ArchFor("amd64").Lookup(tt.name)
		if !ok {
			t.Fatalf("Lookup(%q) failed", tt.name)
		}
		if got := SupportsNoAuto(g); got != tt.noAuto {
			t.Errorf("SupportsNoAuto(%s) = %v", tt.name, got)
		}
		if got := SupportsReadOnly(g); got != tt.readOnly {
			t.Errorf("SupportsReadOnly(%s) = %v", tt.name, got)
		}
		if got := SupportsGrowFS(g); got != tt.growFS {
			t.Errorf("SupportsGrowFS(%s) = %v", tt.name, got)
		}
		if got := IsVerity(g); got != tt.verity {
			t.Errorf("IsVerity(%s) = %v", tt.name, got)
		}
	}
}

func TestDesignatorString(t *testing.T) {
	for d, want := range map[Designator]string{
		None: "none", Root: "root", UsrVeritySig: "usr-verity-sig", XBootLdr: "xbootldr",
		UserHome: "user-home", LinuxGeneric: "linux-generic", Designator(99): "invalid", Designator(-1): "invalid",
	} {
		if got := d.String(); got != want {
			t.Errorf("Designator(%d).String() = %q, want %q", int(d), got, want)
		}
	}
}

func TestFind(t *testing.T) {
	g, _ := Lookup("root-arm64-verity")
	ty, ok := Find(g)
	if !ok || ty.Name != "root-arm64-verity" || ty.Arch != "arm64" || ty.Designator != RootVerity {
		t.Errorf("Find = %+v, %v", ty, ok)
	}
	if _, ok := Find(uuid.Nil); ok {
		t.Error("Find(Nil) found a row")
	}
}
