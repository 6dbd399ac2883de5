#!/bin/sh
# dracut pre-mount hook (initrds without systemd): grow the disk before the
# root is mounted. sprout finds the disk itself (sprout.device=, root=, …).
type info >/dev/null 2>&1 || . /lib/dracut-lib.sh

if [ -n "$(ls /etc/repart.d/*.conf 2>/dev/null)" ]; then
    info "sprout: growing the boot disk"
    # sprout formats new partitions through loop devices.
    modprobe -q loop 2>/dev/null || :
    # The unit's command line (Environment= and ExecStart=, pinned with
    # --compat=), written by the module when it built this initrd.
    read -r command </usr/lib/sprout/command
    eval "$command"
    rc=$?
    case $rc in
    0 | 77) ;;
    # The boot stops here, as sprout.service's OnFailure=emergency.target
    # stops a systemd initrd's (sprout.service(8), FAILURE).
    *) die "sprout failed (exit $rc); the boot stops here (see its message above)" ;;
    esac
    # The mounts that follow must see the new partitions' device links.
    udevadm settle --timeout=60 >/dev/null 2>&1 || :
fi
