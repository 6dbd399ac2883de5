package blockdev

// Paths says where the block layer reads the kernel's state. SystemPaths
// returns the real paths; tests point the fields at fake trees, so the
// sysfs, mountinfo and udev code runs without a kernel.
type Paths struct {
	SysBlock    string // one entry per disk and partition: /sys/class/block
	SysDevBlock string // the same devices by "major:minor": /sys/dev/block
	Dev         string // device nodes and udev's links: /dev
	MountInfo   string // this mount namespace's mounts: /proc/self/mountinfo
	RunUdev     string // udev's runtime directory: /run/udev
}

// SystemPaths are the paths of a running Linux system.
func SystemPaths() Paths {
	return Paths{
		SysBlock:    "/sys/class/block",
		SysDevBlock: "/sys/dev/block",
		Dev:         "/dev",
		MountInfo:   "/proc/self/mountinfo",
		RunUdev:     "/run/udev",
	}
}

// orSystem fills the fields left empty with the system's paths.
func (r Paths) orSystem() Paths {
	sys := SystemPaths()
	for _, f := range []struct {
		field *string
		def   string
	}{
		{&r.SysBlock, sys.SysBlock}, {&r.SysDevBlock, sys.SysDevBlock}, {&r.Dev, sys.Dev},
		{&r.MountInfo, sys.MountInfo}, {&r.RunUdev, sys.RunUdev},
	} {
		if *f.field == "" {
			*f.field = f.def
		}
	}
	return r
}
