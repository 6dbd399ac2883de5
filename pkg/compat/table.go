package compat

// The behaviours of systemd-repart that changed between 252 and 262, each
// with the version it changed in. docs/compatibility.md has the same table
// with the scenario that proves each one; TestChangesDocumented keeps the
// two in step. Oracles exist for 252 (the host), 254, 257 and 262 (Debian
// chroots): where NEWS names no version, Since is the first oracle that
// shows the change and Evidence says which versions bracket it.
//
// Values, not switches, are declared where they belong, also per version:
// file system minimum sizes with the formats (pkg/fstype: ext4-minimum,
// xfs-minimum), the LUKS2 facts with the encryption modes
// (pkg/encryption: luks-minimum, luks-key-512, luks-sector-size, and the
// TPM2 policy's rules, policy.go: no-default-pcrs and the rest), the
// LUKS2 label with the plan's encryption step (pkg/plan/encrypt.go:
// luks-label-prefix).
var (
	JSONFilePath = &Change{Since: 254, Name: "json-file-path",
		What:     `--json: "file" is the definition's full path, and null for a partition no definition claims (252: the file's base name, and "-")`,
		Evidence: "NEWS silent; 252 has the old, 254 the new behaviour (253 or 254)"}
	FrozenListsLabel = &Change{Since: 254, Name: "frozen-lists-label",
		What:     "an existing partition without a name that Priority= froze at its size (\"Can't grow existing partition\") is listed (table and --json \"label\") with its definition's Label=, which is never written; 252 lists it by its type's name. (254 to 262 abort on an assertion when they then write the table; sprout writes it as 252 does)",
		Evidence: "NEWS silent; 252 has the old, 254 the new behaviour (253 or 254); tests/differential scenario v-254-frozen-label"}
	JSONPartNo = &Change{Since: 257, Name: "json-partno",
		What:     `--json: each row has "partno", the 0-based partition number, after "uuid" (252, 254: no such field)`,
		Evidence: "NEWS silent; 254 has the old, 257 the new behaviour (255 to 257)"}
	NoDefinitionsReadsDisk = &Change{Since: 254, Name: "no-definitions-reads-disk",
		What:     "without any definition the disk is still read: a disk without a GPT is refused (exit 77) under --empty=refuse, and the table is listed; 252 said \"nothing to do\" and exited 0 without opening the disk",
		Evidence: "NEWS silent; 252 has the old, 254 the new behaviour (253 or 254)"}
	SwapTypeFormatsSwap = &Change{Since: 254, Name: "swap-type-formats-swap",
		What:     "a new partition of Type=swap without Format= is formatted as swap (252: left unformatted)",
		Evidence: "NEWS silent; 252 has the old, 254 the new behaviour (253 or 254)"}
	FirstFreeSlot = &Change{Since: 254, Name: "first-free-slot",
		What:     "a new partition takes the lowest free entry number (252: the numbers after the highest one in use; holes stayed empty)",
		Evidence: "NEWS silent; 252 has the old, 254 the new behaviour (253 or 254)"}
	LeftoverAfterNew = &Change{Since: 262, Name: "leftover-after-new",
		What:     "what is left of a free area after the weights are applied (rounding, partitions at their SizeMaxBytes=) may also grow the existing partition before the area, up to its maximum, before the new ones; what nobody takes becomes padding, in whole 4096-byte grains, after the last partition placed there, so the new partitions follow the existing one directly (252 to 257: only new partitions grow, and the rest is padding after the existing partition, pushing the new ones back)",
		Evidence: "NEWS silent; 257 has the old, 262 the new behaviour (258 to 262)"}
	AreaOwnerFirst = &Change{Since: 262, Name: "area-owner-first",
		What:     "when a free area is shared out, the existing partition before it gets its size and padding first, then the new partitions placed there in list order (252 to 257: all in list order, which can move a grain of rounding from one to another)",
		Evidence: "NEWS silent; 257 has the old, 262 the new behaviour (258 to 262)"}
	SameTypeSlotOrder = &Change{Since: 262, Name: "same-type-slot-order",
		What:     "a new partition gets a higher entry number than the partitions of its type before it in the list (the existing ones matched to earlier definitions), so the next run matches each partition to the same definition; otherwise the lowest free number as before",
		Evidence: "NEWS silent; 257 has the old, 262 the new behaviour (258 to 262)"}
	ExactAutoSize = &Change{Since: 262, Name: "exact-auto-size",
		What:     "--size=auto makes the image exactly as big as the space before the first usable sector, the partitions' minimums and the backup GPT need (252 to 257: the partitions' minimums plus 1044 KiB, rounded up to 4096)",
		Evidence: "NEWS silent; 257 has the old, 262 the new behaviour (258 to 262)"}
	ListByOffset = &Change{Since: 262, Name: "list-by-offset",
		What:     "the table and --json list partitions by their offset on disk (252 to 257: definitions in file name order, then the partitions no definition claims)",
		Evidence: "NEWS silent; 257 has the old, 262 the new behaviour (258 to 262)"}
	ExistingMustFit = &Change{Since: 257, Name: "existing-must-fit",
		What:     "an existing partition with no free space after it whose SizeMinBytes= or PaddingMinBytes= asks for more than it has makes the definitions not fit (exit 1, or the partition is kept as it is when its Priority= allows); 252 and 254 ignored the minimum",
		Evidence: "NEWS silent; 254 has the old, 257 the new behaviour (255 to 257)"}
	ESPMinimum = &Change{Since: 258, Name: "esp-minimum",
		What:     "a new ESP or XBOOTLDR partition formatted as vfat is at least 100 MiB on disks with 512-byte sectors and 260 MiB otherwise (image files count as 4096)",
		Evidence: "NEWS 258: \"enforce a minimum size for ESP/XBOOTLDR partitions of 100M (on 512b sector drives) or 260M (on 4K sector drives)\""}
	SizeRoundingInward = &Change{Since: 262, Name: "size-rounding-inward",
		What:     "SizeMinBytes= and PaddingMinBytes= are rounded up, SizeMaxBytes= and PaddingMaxBytes= down, to multiples of 4096, and a minimum above its maximum after rounding is refused (252.19 to 260 rounded outward: minimums down, maximums up)",
		Evidence: "NEWS silent; 257 has the old, 262 the new behaviour; systemd PR 42529 (2026-06-09) made the change, ten days before 261's release: sprout applies it from 262, the first version an oracle proves"}
)

// Changes lists every Change, oldest first.
var Changes = []*Change{
	JSONFilePath, NoDefinitionsReadsDisk, SwapTypeFormatsSwap, FirstFreeSlot, FrozenListsLabel,
	JSONPartNo, ExistingMustFit, ESPMinimum, LeftoverAfterNew, AreaOwnerFirst, SameTypeSlotOrder, ExactAutoSize, ListByOffset, SizeRoundingInward,
}
