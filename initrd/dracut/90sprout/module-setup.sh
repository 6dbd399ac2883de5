#!/bin/bash
# dracut module "sprout": grow the boot disk's GPT in the initrd from
# repart.d definitions, before anything on that disk is mounted.
# See sprout.service(8) and docs/boot.md. Enable it with `dracut --add
# sprout` or add_dracutmodules+=" sprout " in /etc/dracut.conf.d/.
#
# Settings (dracut.conf or the environment):
#   sprout_binary=PATH       the static sprout binary (default: the installed
#                            one, else sprout in PATH)
#   sprout_definitions=DIR   the repart.d definitions to put into the initrd's
#                            /etc/repart.d (default: every *.conf of the host's
#                            /etc/repart.d, /run/repart.d, /usr/local/lib/repart.d
#                            and /usr/lib/repart.d; the first file of a name wins,
#                            as in repart.d(5); NAME.conf.d/ drop-ins too)
#
# When the module is asked for, check() refuses (and so fails the whole
# dracut run) with one line naming what is missing, rather than build an
# initrd that cannot grow the disk: the binary, the unit, any definitions,
# or a mkfs tool that a definition's Format= needs, or what an Encrypt=
# needs (cryptsetup; for tpm2 also systemd-cryptenroll and the tpm2-tss
# libraries).
#
# Encryption support (dracut's crypt module for systemd-cryptsetup and
# dm-crypt, cryptsetup, and for tpm2 the TPM libraries and drivers) goes in
# only when a definition asks for it: with no Encrypt= other than off, the
# initrd is what it was before.

# make install rewrites this to where it put the binary.
sprout_installed_binary=/usr/bin/sprout

# sprout_bin: the binary to install.
sprout_bin() {
    if [[ -n ${sprout_binary-} ]]; then
        printf '%s' "$sprout_binary"
    elif [[ -x $sprout_installed_binary ]]; then
        printf '%s' "$sprout_installed_binary"
    else
        command -v sprout
    fi
}

# sprout_unit: the initrd unit, shipped inside this module as dracut's own
# modules ship theirs (make install and the .deb put it here, a source
# checkout's builder copies it): never a unit of the host.
sprout_unit() {
    printf '%s' "$moddir/sprout.service"
}

# sprout_definition_dirs: where definitions come from, in repart.d order.
sprout_definition_dirs() {
    if [[ -n ${sprout_definitions-} ]]; then
        printf '%s\n' "$sprout_definitions"
    else
        printf '%s\n' /etc/repart.d /run/repart.d /usr/local/lib/repart.d /usr/lib/repart.d
    fi
}

# sprout_definition_files: "SOURCE<tab>TARGET" lines, one per definition and
# drop-in (tab-separated) that goes into the initrd (the first file of a name wins).
sprout_definition_files() {
    local dir f name d drop
    local -A seen=()
    local -a dirs
    mapfile -t dirs < <(sprout_definition_dirs)
    for dir in "${dirs[@]}"; do
        for f in "$dir"/*.conf; do
            [[ -f $f ]] || continue
            name=${f##*/}
            [[ -n ${seen[$name]-} ]] && continue
            seen[$name]=1
            printf '%s\t/etc/repart.d/%s\n' "$f" "$name"
            for d in "${dirs[@]}"; do
                for drop in "$d/$name.d"/*.conf; do
                    [[ -f $drop ]] || continue
                    [[ -n ${seen[$name.d/${drop##*/}]-} ]] && continue
                    seen[$name.d/${drop##*/}]=1
                    printf '%s\t/etc/repart.d/%s.d/%s\n' "$drop" "$name" "${drop##*/}"
                done
            done
        done
    done
}

# sprout_formats FILE...: "FORMAT FILE" for each Format= of the files.
sprout_formats() {
    local f fmt
    for f in "$@"; do
        sed -n 's/^[[:space:]]*Format[[:space:]]*=[[:space:]]*\([a-z0-9]*\).*/\1/p' "$f" |
            while read -r fmt; do printf '%s %s\n' "$fmt" "$f"; done
    done
}

# sprout_mkfs FORMAT: the program sprout runs to make it ("" for swap,
# which sprout writes itself; "?" for a format sprout does not make).
sprout_mkfs() {
    case $1 in
        ext2 | ext3 | ext4 | vfat | xfs | btrfs) printf 'mkfs.%s' "$1" ;;
        swap) ;;
        *) printf '?' ;;
    esac
}

# sprout_mkfs_package FORMAT: the package that has its mkfs (Debian names;
# Fedora and Arch use the same ones, dosfstools included).
sprout_mkfs_package() {
    case $1 in
        ext*) printf e2fsprogs ;;
        vfat) printf dosfstools ;;
        xfs) printf xfsprogs ;;
        btrfs) printf btrfs-progs ;;
    esac
}

# sprout_encryption FILE...: "none", "key-file" or "tpm2": the most any
# Encrypt= of the files asks for (key-file+tpm2 counts as tpm2; the false
# booleans are off, the true ones key-file, as in repart.d(5)).
sprout_encryption() {
    local v mode=none
    while read -r v; do
        case ${v,,} in
            '' | off | no | false | 0 | n | f) ;;
            *tpm2*) mode=tpm2 ;;
            *) [[ $mode == tpm2 ]] || mode=key-file ;;
        esac
    done < <(sed -n 's/^[[:space:]]*Encrypt[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$@")
    printf '%s' "$mode"
}

# sprout_tpm2_libraries: the libraries systemd-cryptenroll and
# systemd-cryptsetup load at run time (dlopen, so dracut's ldd walk does not
# see them) to talk to a TPM2 through /dev/tpmrm0, and libtss2-sys, which
# libtss2-esys links (dracut resolves the libraries of executables only).
sprout_tpm2_libraries() {
    printf '%s\n' libtss2-esys.so.0 libtss2-sys.so.1 libtss2-mu.so.0 libtss2-rc.so.0 libtss2-tcti-device.so.0
}

# sprout_library_package LIB: the Debian package that has it.
sprout_library_package() {
    case $1 in
        libtss2-esys.so.*) printf libtss2-esys-3.0.2-0 ;;
        libtss2-tcti-device.so.*) printf libtss2-tcti-device0 ;;
        libtss2-sys.so.*) printf libtss2-sys1 ;;
        libtss2-mu.so.*) printf libtss2-mu0 ;;
        libtss2-rc.so.*) printf libtss2-rc0 ;;
    esac
}

# sprout_find_library LIB: its path in one of the host's library
# directories, or nothing.
sprout_find_library() {
    local d
    for d in ${libdirs:-/lib64 /usr/lib64 /lib /usr/lib} /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
        [[ -e $d/$1 ]] && { printf '%s' "$d/$1"; return 0; }
    done
    return 1
}

# sprout_definition_sources: the definition files (not their targets).
sprout_definition_sources() {
    sprout_definition_files | cut -f1
}

check() {
    # Only when asked for: a repartitioner must never sneak into an initrd.
    [[ " ${dracutmodules-} ${add_dracutmodules-} ${force_add_dracutmodules-} " == *" sprout "* ]] || return 255

    local bin unit fmt file prog
    local -a sources=()
    bin=$(sprout_bin)
    if [[ -z $bin || ! -x $bin ]]; then
        derror "sprout: the sprout binary is missing (${bin:-not in PATH}; install sprout or set sprout_binary=)"
        return 1
    fi
    unit=$(sprout_unit)
    if [[ ! -f $unit ]]; then
        derror "sprout: the unit $unit is missing (install sprout: make install)"
        return 1
    fi
    mapfile -t sources < <(sprout_definition_files | cut -f1)
    if ((${#sources[@]} == 0)); then
        derror "sprout: no repart.d definitions in $(sprout_definition_dirs | tr '\n' ' ')(set sprout_definitions=DIR)"
        return 1
    fi
    while read -r fmt file; do
        prog=$(sprout_mkfs "$fmt")
        if [[ $prog == '?' ]]; then
            derror "sprout: $file: Format=$fmt is not a file system sprout can make"
            return 1
        fi
        if [[ -n $prog ]] && ! find_binary "$prog" >/dev/null; then
            derror "sprout: $file: Format=$fmt needs $prog, which is missing (install $(sprout_mkfs_package "$fmt"))"
            return 1
        fi
    done < <(sprout_formats "${sources[@]}")

    local mode lib
    mode=$(sprout_encryption "${sources[@]}")
    if [[ $mode != none ]]; then
        if ! find_binary cryptsetup >/dev/null; then
            derror "sprout: a definition asks for Encrypt=$mode, which needs cryptsetup, which is missing (install cryptsetup-bin)"
            return 1
        fi
    fi
    if [[ $mode == tpm2 ]]; then
        if ! find_binary systemd-cryptenroll >/dev/null; then
            derror "sprout: a definition asks for Encrypt=tpm2, which needs systemd-cryptenroll, which is missing (install systemd)"
            return 1
        fi
        while read -r lib; do
            if ! sprout_find_library "$lib" >/dev/null; then
                derror "sprout: a definition asks for Encrypt=tpm2, which needs $lib, which is missing (install $(sprout_library_package "$lib"))"
                return 1
            fi
        done < <(sprout_tpm2_libraries)
    fi
    return 0
}

depends() {
    # dracut's crypt module: dm-crypt and the crypto modules, the dm
    # udev rules (/dev/mapper links), and in a systemd initrd
    # systemd-cryptsetup with its generator, which unlock the volumes of
    # the initrd's /etc/crypttab.
    local -a sources=()
    mapfile -t sources < <(sprout_definition_sources)
    if ((${#sources[@]} > 0)) && [[ $(sprout_encryption "${sources[@]}") != none ]]; then
        echo crypt
    fi
    return 0
}

installkernel() {
    # Formatting goes through loop devices over the new partition's range;
    # the file systems sprout makes must be mountable right after.
    hostonly='' instmods loop ext4 vfat nls_cp437 nls_iso8859-1 nls_utf8
    hostonly='' instmods -o xfs btrfs
    local -a sources=()
    mapfile -t sources < <(sprout_definition_sources)
    ((${#sources[@]} > 0)) || return 0
    case $(sprout_encryption "${sources[@]}") in
        tpm2)
            # The TPM drivers (built into many kernels; then none is added).
            hostonly='' instmods -o '=drivers/char/tpm'
            ;&
        key-file)
            # The ciphers cryptsetup's LUKS2 defaults use (aes-xts-plain64,
            # sha256) and the AF_ALG interfaces it checks them through;
            # dracut's crypt module adds these too, but only in a
            # non-host-only initrd.
            hostonly='' instmods dm_crypt
            hostonly='' instmods -o xts aesni_intel aes_generic sha256_generic algif_skcipher algif_hash
            ;;
    esac
}

install() {
    local src dst fmt _file prog
    local -a sources=()
    inst_simple "$(sprout_bin)" /usr/bin/sprout
    while IFS=$'\t' read -r src dst; do
        inst_simple "$src" "$dst"
        sources+=("$src")
    done < <(sprout_definition_files)
    # Only the mkfs tools the definitions need (check() made sure they
    # exist); every tool the host has would add ~1 MiB each.
    while read -r fmt _file; do
        prog=$(sprout_mkfs "$fmt")
        [[ -n $prog ]] && inst_multiple "$prog"
        [[ $fmt == ext* ]] && inst_multiple -o mke2fs
    done < <(sprout_formats "${sources[@]}" | sort -u -k1,1)
    inst_multiple -o udevadm
    # Encryption: cryptsetup formats and opens the new LUKS2 volume;
    # for tpm2, systemd-cryptenroll enrolls the TPM and both it and
    # systemd-cryptsetup load the tpm2-tss libraries (check() made sure
    # they exist). The crypt module (depends()) brings the rest.
    case $(sprout_encryption "${sources[@]}") in
        tpm2)
            local lib
            inst_multiple systemd-cryptenroll
            while read -r lib; do
                inst_library "$(sprout_find_library "$lib")"
            done < <(sprout_tpm2_libraries)
            # cryptsetup's own plugin for the systemd-tpm2 token.
            inst_libdir_file "cryptsetup/libcryptsetup-token-systemd-tpm2.so"
            ;&
        key-file)
            inst_multiple cryptsetup
            ;;
    esac
    # mke2fs takes its feature defaults from here, as on the host.
    [[ -f /etc/mke2fs.conf ]] && inst_simple /etc/mke2fs.conf

    if dracut_module_included "systemd"; then
        inst_simple "$(sprout_unit)" "$systemdsystemunitdir/sprout.service"
        $SYSTEMCTL -q --root "$initdir" enable sprout.service
    else
        # Classic dracut: the pre-mount hook runs once udev has settled and
        # the root device exists, before the root is mounted.
        inst_hook pre-mount 50 "$moddir/sprout-pre-mount.sh"
    fi
}
