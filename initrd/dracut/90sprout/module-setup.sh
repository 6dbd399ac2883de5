#!/bin/bash
# dracut module "sprout": grow the boot disk's GPT in the initrd from
# repart.d definitions, before anything on that disk is mounted.
# See docs/boot.md. Enable it with `dracut --add sprout` or
# add_dracutmodules+=" sprout " in /etc/dracut.conf.d/.
#
# Settings (dracut.conf or the environment):
#   sprout_binary=PATH       the static sprout binary (default: sprout in PATH)
#   sprout_definitions=DIR   the repart.d definitions to put into the initrd's
#                            /etc/repart.d (default: every *.conf of the host's
#                            /etc/repart.d, /run/repart.d, /usr/local/lib/repart.d
#                            and /usr/lib/repart.d; the first file of a name wins,
#                            as in repart.d(5))

# sprout_bin: the binary to install.
sprout_bin() {
    if [[ -n ${sprout_binary-} ]]; then
        printf '%s' "$sprout_binary"
    else
        command -v sprout
    fi
}

# sprout_unit_file NAME: the unit shipped next to this module
# (a source checkout or the test builder copies them here), else the host's.
sprout_unit_file() {
    local name=$1
    if [[ -e $moddir/$name ]]; then
        printf '%s' "$moddir/$name"
    else
        printf '%s' "$systemdsystemunitdir/$name"
    fi
}

check() {
    local bin
    bin=$(sprout_bin) || { derror "sprout: no sprout binary (set sprout_binary=)"; return 1; }
    [[ -x $bin ]] || { derror "sprout: $bin is not executable"; return 1; }
    require_binaries mke2fs || return 1
    # Only when asked for: a repartitioner must never sneak into an initrd.
    return 255
}

depends() {
    return 0
}

installkernel() {
    # Formatting goes through loop devices over the new partition's range;
    # the file systems sprout makes must be mountable right after.
    hostonly='' instmods loop ext4 vfat nls_cp437 nls_iso8859-1 nls_utf8
    hostonly='' instmods -o xfs btrfs
}

# install_definitions: fill the initrd's /etc/repart.d.
install_definitions() {
    local dir f name
    local -A seen=()
    local -a dirs
    if [[ -n ${sprout_definitions-} ]]; then
        dirs=("$sprout_definitions")
        [[ -d $sprout_definitions ]] || { derror "sprout: $sprout_definitions is not a directory"; return 1; }
    else
        dirs=(/etc/repart.d /run/repart.d /usr/local/lib/repart.d /usr/lib/repart.d)
    fi
    for dir in "${dirs[@]}"; do
        for f in "$dir"/*.conf; do
            [[ -f $f ]] || continue
            name=${f##*/}
            [[ -n ${seen[$name]-} ]] && continue
            seen[$name]=1
            inst_simple "$f" "/etc/repart.d/$name"
            sprout_installed+=("$f")
            # Drop-ins of this definition, from every directory of the path.
            local d drop
            for d in "${dirs[@]}"; do
                for drop in "$d/$name.d"/*.conf; do
                    [[ -f $drop ]] || continue
                    inst_simple "$drop" "/etc/repart.d/$name.d/${drop##*/}"
                    sprout_installed+=("$drop")
                done
            done
        done
    done
    if ((${#seen[@]} == 0)); then
        dwarn "sprout: no repart.d definitions found in ${dirs[*]}; sprout will not run"
    fi
}

# sprout_formats FILE...: the file systems the definitions ask for.
sprout_formats() {
    (($# > 0)) || return 0
    sed -n 's/^[[:space:]]*Format[[:space:]]*=[[:space:]]*\([a-z0-9]*\).*/\1/p' "$@" | sort -u
}

install() {
    local bin fmt
    local -a sprout_installed=()
    bin=$(sprout_bin)
    inst_simple "$bin" /usr/bin/sprout
    install_definitions || return 1
    # Only the mkfs tools the definitions need (swap needs none: sprout
    # writes its header itself); every tool the host has would add ~1 MiB.
    for fmt in $(sprout_formats "${sprout_installed[@]}"); do
        case $fmt in
            ext2 | ext3 | ext4) inst_multiple mke2fs "mkfs.$fmt" ;;
            vfat) inst_multiple mkfs.vfat mkfs.fat ;;
            xfs | btrfs) inst_multiple "mkfs.$fmt" ;;
        esac
    done
    inst_multiple -o udevadm
    # mke2fs takes its feature defaults from here, as on the host.
    [[ -f /etc/mke2fs.conf ]] && inst_simple /etc/mke2fs.conf

    if dracut_module_included "systemd"; then
        inst_simple "$(sprout_unit_file sprout.service)" "$systemdsystemunitdir/sprout.service"
        $SYSTEMCTL -q --root "$initdir" enable sprout.service
    else
        # Classic dracut: the pre-mount hook runs once udev has settled and
        # the root device exists, before the root is mounted.
        inst_hook pre-mount 50 "$moddir/sprout-pre-mount.sh"
    fi
}
