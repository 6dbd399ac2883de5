package cli

const usage = `sprout [OPTIONS...] [DEVICE]

Grow and add partitions on a GPT disk or image file from repart.d(5)
partition definitions, as systemd-repart does. Without --dry-run=no it
only shows what it would do.

DEVICE is a whole disk or an image file. Without it, sprout looks for the
disk in this order and refuses if the first method that applies is
ambiguous: sprout.device= on the kernel command line (a path, PARTLABEL=,
PARTUUID=, LABEL= or UUID=), the EFI variable LoaderDevicePartUUID, root=
and mount.usr= on the kernel command line, the disk behind /sysusr/usr or
/sysroot. With --wait-for-disk it waits for the disk that method names.

  -h --help               Show this help
     --version            Show the version
     --dry-run=BOOL       Only show the plan (default: yes)
     --empty=MODE         What to do with a disk without a GPT:
                            refuse  (default) exit 77
                            allow   create a GPT on a blank disk
                            require create a GPT; exit 77 if any table exists
                            force   replace any table with a new GPT
                            create  create the image file (needs --size=)
     --definitions=DIR    Read definitions from DIR instead of the search path
                          /etc/repart.d /run/repart.d /usr/local/lib/repart.d
                          /usr/lib/repart.d (repeatable; not under --root)
     --root=PATH          Find definitions, etc/machine-id and os-release (for
                          the specifiers of Label=) under PATH, and write the
                          --generate-fstab=/--generate-crypttab= files there
     --seed=UUID|random   Seed for partition, disk and file system UUIDs
                          (default: the machine ID, else random)
     --size=BYTES|auto    Grow an image file to this size (never shrinks;
                          auto = the minimum the definitions need), once the
                          plan for it is accepted. A dry run plans with the
                          size but does not grow the file.
     --factory-reset=BOOL Erase the partitions whose definition says
                          FactoryReset=yes and create them anew, empty
                          (default: in the initrd, systemd.factory_reset= on
                          the kernel command line, else the EFI variable
                          FactoryReset; elsewhere no)
     --can-factory-reset  Exit 0 if the disk has such a partition, else 1
     --discard=BOOL       Discard the ranges of new partitions (default: yes)
     --discard-budget=TIME|infinity
                          How long all discards may take; then the rest stays
                          as it is and the run goes on (default: 10s)
     --key-file=PATH      Key of the key-file slot of Encrypt=key-file and
                          key-file+tpm2 volumes (default: a definition's
                          KeyFile=, else the empty key)
     --tpm2-device=PATH|auto
                          TPM2 device for Encrypt=tpm2 and key-file+tpm2
                          (default: auto, the first /dev/tpmrmN)
     --tpm2-pcrs=PCRS     PCRs the TPM2 key is bound to, numbers or names
                          (7, 1+7, secure-boot-policy); empty binds none.
                          Default: a definition's TPM2PCRs=, else none (7
                          under --compat= before 258, unless a pcrlock
                          policy is used)
     --tpm2-public-key=PATH
                          Bind the TPM2 key to PCR values signed by this
                          public key (PEM), such as a UKI's .pcrpkey. Without
                          it, tpm2-pcr-public-key.pem in /etc/systemd,
                          /run/systemd, /usr/local/lib/systemd or
                          /usr/lib/systemd is used, and in the initrd the
                          UKI's own (/.extra; from 262)
     --tpm2-public-key-pcrs=PCRS
                          PCRs the signed policy covers (default: 11);
                          empty: no signed policy
     --tpm2-pcrlock=PATH  Bind the TPM2 key to this systemd-pcrlock policy
                          (255; default: /run/systemd/pcrlock.json, else
                          /var/lib/systemd/pcrlock.json; empty: none)
     --include-partitions=TYPES
                          Act only on definitions of these partition types
                          (comma-separated names or GUIDs; repeatable)
     --exclude-partitions=TYPES
                          Leave out definitions of these types, as if their
                          files did not exist (not with --include-partitions)
     --defer-partitions=TYPES
                          Plan these types (space and entry numbers kept)
                          but do not create or grow them
     --defer-partitions-empty=BOOL
                          Also defer definitions labelled _empty (Format=empty)
     --defer-partitions-factory-reset=BOOL
                          Also defer definitions with FactoryReset=yes
     --generate-fstab=PATH
                          Write an fstab (under --root) for MountPoint=
     --append-fstab=MODE  If that fstab exists: no (refuse, default), auto
                          (replace the generated section), replace
     --generate-crypttab=PATH
                          Write a crypttab (under --root) for EncryptedVolume=
     --json=MODE          Print the result as JSON: pretty, short or off
     --pretty=BOOL        Print the table and the picture (default: yes)
     --wait-for-disk=TIME Without DEVICE: if the first method that applies
                          names no device yet, look again every 100 ms for
                          up to TIME (such as 90s; default 0: look once).
                          Every disk's GPT is read, the backup too, so a disk
                          whose torn primary GPT hides its partitions from
                          the kernel is found (and repaired)
     --compat=VERSION     Behave as systemd-repart VERSION does (252 to 262;
                          default 262): sizes, rounding, placement, file
                          system minimums, defaults, output and exit codes
                          of that version (docs/compatibility.md). Pin it
                          to the version of the systemd your image was
                          built with, so the layout never depends on
                          which sprout release is installed
     --initrd-needs[=definitions|all]
                          Read the definitions as a run would and print what
                          an initrd needs for them (definition files and
                          their targets, programs, libraries, kernel modules,
                          host files, packages), one tab-separated record a
                          line (or --json=); =all: for every format and
                          Encrypt= mode. Reads no disk (see sprout(8))
     --no-legend          Print the table rows alone: no header, totals, picture
     --no-pager           Accepted for compatibility; sprout never pages

Exit status: 0 success or nothing to do, 1 error, 77 the disk has no GPT
(or, with --empty=require, already has a partition table).
See README.md and docs/ for details.
`
