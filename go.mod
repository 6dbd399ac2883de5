module github.com/sprout-initrd/sprout

go 1.26.0

require (
	github.com/diskfs/go-diskfs v1.9.4
	github.com/google/uuid v1.6.0
	golang.org/x/sys v0.50.0
)
