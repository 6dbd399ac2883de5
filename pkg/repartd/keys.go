package repartd

// The repart.d keys sprout reads, with the systemd version that added
// each (repart.d(5)'s "Added in version", or NEWS for a value). Keys from
// before 252, the oldest version sprout follows, count as 252. A run that
// mirrors an older systemd (--compat=) refuses a key or value added after
// it: KeySince and ValueSince say which version that is.

// keySpec is one key: how its value is applied and since when it exists.
type keySpec struct {
	set   setting
	since int
}

var keys = map[string]keySpec{
	"Type":            {setType, 252},
	"Label":           {setLabel, 252},
	"UUID":            {setUUID, 252},
	"Priority":        {setPriority, 252},
	"Weight":          {func(d *Definition, v string) error { return setWeight(&d.Weight, v) }, 252},
	"PaddingWeight":   {func(d *Definition, v string) error { return setWeight(&d.PaddingWeight, v) }, 252},
	"SizeMinBytes":    {func(d *Definition, v string) error { return setSize(&d.SizeMin, v, roundDown) }, 252},
	"SizeMaxBytes":    {func(d *Definition, v string) error { return setSize(&d.SizeMax, v, roundUp) }, 252},
	"PaddingMinBytes": {func(d *Definition, v string) error { return setSize(&d.PaddingMin, v, roundDown) }, 252},
	"PaddingMaxBytes": {func(d *Definition, v string) error { return setSize(&d.PaddingMax, v, roundUp) }, 252},
	"Format":          {setFormat, 252},
	"Flags":           {setFlags, 252},
	"NoAuto":          {func(d *Definition, v string) error { return setTristate(&d.NoAuto, v) }, 252},
	"ReadOnly":        {func(d *Definition, v string) error { return setTristate(&d.ReadOnly, v) }, 252},
	"GrowFileSystem":  {func(d *Definition, v string) error { return setTristate(&d.GrowFileSystem, v) }, 252},
	"FactoryReset":    {setFactoryReset, 252},
	"Encrypt":         {setEncrypt, 252},

	"Subvolumes":       {setSubvolumes, 255},
	"DefaultSubvolume": {setDefaultSubvolume, 256},
	"MountPoint":       {setMountPoint, 256},
	"EncryptedVolume":  {setEncryptedVolume, 256},
	"SupplementFor":    {setSupplementFor, 257},
	"VolumeLabel":      {setVolumeLabel, 259},
	"TPM2PCRs":         {setTPM2PCRs, 259},
	"KeyFile":          {setKeyFile, 259},

	// Image-building keys (imagekeys.go): accepted, no effect on a
	// partition that exists, refused on one sprout would create.
	"CopyBlocks":               {imageKey("CopyBlocks"), 252},
	"CopyFiles":                {imageKey("CopyFiles"), 252},
	"MakeDirectories":          {imageKey("MakeDirectories"), 252},
	"Verity":                   {imageKey("Verity"), 252},
	"VerityMatchKey":           {imageKey("VerityMatchKey"), 252},
	"SplitName":                {imageKey("SplitName"), 252},
	"Minimize":                 {imageKey("Minimize"), 253},
	"ExcludeFiles":             {imageKey("ExcludeFiles"), 254},
	"ExcludeFilesTarget":       {imageKey("ExcludeFilesTarget"), 254},
	"VerityDataBlockSizeBytes": {imageKey("VerityDataBlockSizeBytes"), 255},
	"VerityHashBlockSizeBytes": {imageKey("VerityHashBlockSizeBytes"), 255},
	"MakeSymlinks":             {imageKey("MakeSymlinks"), 257},
	"Compression":              {imageKey("Compression"), 257},
	"CompressionLevel":         {imageKey("CompressionLevel"), 257},
}

// unsupported names the repart.d keys sprout knows but does not
// implement, with the systemd version that added them.
var unsupported = map[string]int{
	"AddValidateFS": 258, "FileSystemSectorSize": 258,
	"Integrity": 260, "IntegrityAlgorithm": 260,
	"BlockDeviceReplace": 261, "VolumeName": 261, "Discard": 261, "EncryptKDF": 261,
}

// valueSince lists values that arrived after their key: key → value →
// version.
var valueSince = map[string]map[string]int{
	"Format": {"empty": 258},
}

// KeySince returns the systemd version that added a repart.d key sprout
// reads (252 for the keys 252 already had); ok is false for any other
// key.
func KeySince(key string) (version int, ok bool) {
	k, ok := keys[key]
	return k.since, ok
}

// Keys lists the repart.d keys sprout reads.
func Keys() []string {
	out := make([]string, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	return out
}

// since is the version an assignment needs: its key's, or its value's
// when the value came later.
func since(key, value string) int {
	v := keys[key].since
	if s, ok := valueSince[key][value]; ok && s > v {
		v = s
	}
	if key == "Subvolumes" && subvolumesUseNodatacow(value) {
		v = max(v, 259) // the :nodatacow flag (NEWS, 259)
	}
	if key == "EncryptedVolume" && encryptedVolumeFields(value) > 3 {
		v = max(v, 260) // the fourth field, fixate-volume-key (repart.d(5) of 260)
	}
	return v
}
