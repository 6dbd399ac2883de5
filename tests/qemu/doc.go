// Package qemu is sprout's end-to-end tier: it boots the seed article's
// appliance (ESP + read-only squashfs store + a small busybox root, its copy
// grown by 10 GiB) in QEMU with Debian's kernel, and checks that sprout,
// running in the initrd, creates /home and /var (ext4, weights 2:1) on the
// first boot, that the booted system has them mounted, and that the second
// boot changes nothing.
//
// Scenarios: (a) virtio disk, dracut systemd initrd, disk found from
// root=PARTLABEL= (run twice); (c) a disk with 4096-byte logical sectors, found from
// sprout.device=PARTLABEL=; (d) an initramfs-tools initrd (busybox shell
// /init and udev, no systemd); (e) like (a), but the primary GPT header is
// torn on the host between the boots (tearPrimaryGPT, a power cut inside
// sprout's write of it): the kernel sees no partitions, sprout (which waits
// for its disk itself, --wait-for-disk) must find the disk through the
// backup GPT, repair the primary, tell the kernel, and the root must mount;
// (f) factory reset under UEFI (OVMF boots the kernel): the first boot's
// root asks for a reset with the FactoryResetRequest EFI variable, as
// systemd-factory-reset request writes it; the second boot makes /home
// (FactoryReset=yes) anew, empty, while /var keeps its files, and leaves
// the variable, which a test unit after sprout removes, as
// systemd-factory-reset complete would (factoryreset_test.go);
// (u) the article's own boot: OVMF firmware, systemd-boot and a unified
// kernel image on the ESP, a tmpfs root, the system on the squashfs
// nix-store, no root= or sprout.device= (sprout finds the disk through
// LoaderDevicePartUUID), built by scripts/build-uefi-appliance.sh;
// (t) like (u), with var.conf saying Encrypt=tpm2, a TPM 2.0 (swtpm) and
// two UKIs signed by a test key (.pcrsig/.pcrpkey): boot 1 creates /var
// as LUKS2 with a systemd-tpm2 token bound to the signed PCR 11 policy of
// the UKI's key and systemd-cryptsetup unlocks it, boot 2 unlocks it with
// no prompt and writes nothing to the GPT, boot 3 boots the other UKI
// (systemd.factory_reset=1 in its command line, so another signed PCR 11)
// and makes /home anew while /var keeps its files and unlocks; each boot
// checks PCR 11 against systemd-measure's prediction and that the other
// UKI's signature does not unlock (tpm2_test.go).
//
// After their no-op boot, runs a 1 and a 2, d and u damage the disk's GPT
// on the host and boot once more per damage (damage_test.go): a torn primary
// (header CRC, or entries not matching the header) must boot with /home and
// /var mounted and leave a valid GPT; both headers destroyed must end the
// boot, with sprout's message, before the boot timeout.
//
// The tests are behind the "qemu" build tag because they download a kernel
// and need root, QEMU, dracut and initramfs-tools-core
// (scripts/deps.sh installs them):
//
//	go test -tags qemu -run TestQEMU -v -timeout 30m ./tests/qemu
//	go test -tags qemu -run TestSoak -v -timeout 9h ./tests/qemu -soak=50
//
// NVMe (scenario b until it moved), SD cards, USB and SCSI disks are
// booted by the installed-path tier (installed_test.go), with the initrd
// the host's dracut builds after `make install`.
//
// A missing tool or a failed download fails the tier; nothing is skipped.
// Artefacts and serial logs go to build/qemu/.
package qemu
