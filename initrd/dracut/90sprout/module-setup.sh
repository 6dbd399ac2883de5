#!/bin/bash
# dracut module "sprout": grow the boot disk's GPT in the initrd from
# repart.d definitions, before anything on that disk is mounted.
# See sprout.service(8) and docs/boot.md. Enable it with `dracut --add
# sprout` or add_dracutmodules+=" sprout " in /etc/dracut.conf.d/.
#
# Settings (dracut.conf or the environment):
#   sprout_binary=PATH       the static sprout binary (default: the installed
#                            one, else sprout in PATH)
#   sprout_compat=VERSION    the systemd version sprout behaves as in the initrd
#                            (--compat=; default: the host's systemd, the
#                            nearest one sprout follows if out of range)
#   sprout_definitions=DIR   the repart.d definitions to put into the initrd's
#                            /etc/repart.d (default: every *.conf of the host's
#                            /etc/repart.d, /run/repart.d, /usr/local/lib/repart.d
#                            and /usr/lib/repart.d; the first file of a name wins,
#                            as in repart.d(5); NAME.conf.d/ drop-ins too)
#
# What goes in is what the binary says the definitions need (sprout
# --initrd-needs, sprout(8)): the definition files, the programs,
# libraries, kernel modules and host files of their formats and of their
# encryption (then also dracut's crypt module) — nothing for a format or
# mode no definition uses. This module keeps no list of its own.
#
# When the module is asked for, check() refuses (and so fails the whole
# dracut run) with one line naming what is missing, rather than build an
# initrd that cannot grow the disk: the binary, the unit, any definitions,
# a definition the binary refuses (its file:line), or a program or
# library a definition needs (with the definition line and the package).

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

# sprout_needs: what the initrd needs for the definitions, as the binary
# reads them (sprout --initrd-needs: the repart.d search path or
# sprout_definitions=, first name wins, drop-ins; tab-separated records,
# see sprout(8), "INITRD NEEDS"). The binary's own errors go to stderr.
sprout_needs() {
    local -a args=()
    [[ -n ${sprout_definitions-} ]] && args+=("--definitions=$sprout_definitions")
    [[ -n ${dracutsysrootdir-} ]] && args+=("--root=$dracutsysrootdir")
    "$(sprout_bin)" --initrd-needs "${args[@]}" "$@"
}

# sprout_records KIND: the fields after the kind of each KIND record.
sprout_records() {
    sprout_needs 2>/dev/null | while IFS=$'\t' read -r kind rest; do
        if [[ $kind == "$1" ]]; then printf '%s\n' "$rest"; fi
    done
}

# sprout_pin: the systemd version whose systemd-repart sprout behaves as
# in this initrd (--compat=): sprout_compat= if set, else the host's
# systemd, or the nearest version the binary follows (with a warning) when
# the host's is out of its range. Nothing from a binary that takes no
# --compat= (no compat record), or without systemd on the host.
sprout_pin() {
    local oldest newest default host
    IFS=$'\t' read -r oldest newest default < <(sprout_records compat)
    [[ -n $oldest ]] || return 0
    if [[ -n ${sprout_compat-} ]]; then
        printf '%s' "$sprout_compat"
        return 0
    fi
    host=$(systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9][0-9]*\).*/\1/p')
    if [[ -z $host ]]; then
        dwarn "sprout: no systemd on this host to pin: sprout behaves as systemd $default, its default (set sprout_compat=VERSION to pin one)"
        return 0
    fi
    if ((host < oldest || host > newest)); then
        local near=$oldest
        ((host > newest)) && near=$newest
        dwarn "sprout: this host's systemd $host is outside the versions sprout follows ($oldest to $newest); the initrd pins --compat=$near"
        host=$near
    fi
    printf '%s' "$host"
}

# sprout_command UNIT: the command line the unit runs (its Environment=
# and ExecStart=), with the pin: what the pre-mount hook runs without
# systemd, so that both run the same sprout.
sprout_command() {
    local pin
    pin=$(sprout_pin)
    printf '%s%s%s\n' "$(sed -n 's/^Environment=\(.*\)/\1 /p' "$1" | tr -d '\n')" \
        "$(sed -n 's/^ExecStart=//p' "$1")" "${pin:+ --compat=$pin}"
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

check() {
    # Only when asked for: a repartitioner must never sneak into an initrd.
    [[ " ${dracutmodules-} ${add_dracutmodules-} ${force_add_dracutmodules-} " == *" sprout "* ]] || return 255

    local bin unit
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
    local needs kind name debian _fedora _arch why
    if ! needs=$(sprout_needs); then
        derror "sprout: $bin --initrd-needs refused the definitions (the line above says why)"
        return 1
    fi
    if ! grep -q '^definition' <<<"$needs"; then
        derror "sprout: no repart.d definitions in ${sprout_definitions:-the repart.d search path} (set sprout_definitions=DIR)"
        return 1
    fi
    # The definitions as the pinned version reads them (keys and values
    # differ between systemd versions).
    local pin
    pin=$(sprout_pin)
    if [[ -n $pin ]] && ! sprout_needs --compat="$pin" >/dev/null; then
        derror "sprout: $bin --initrd-needs --compat=$pin refused the definitions (the line above says why)"
        return 1
    fi
    # Each program and library the definitions need, or one line naming
    # the first that is missing, the definition that needs it and its
    # package.
    while IFS=$'\t' read -r kind name debian _fedora _arch why; do
        case $kind in
            program) find_binary "$name" >/dev/null ;;
            library) sprout_find_library "$name" >/dev/null ;;
            *) continue ;;
        esac || {
            derror "sprout: $why needs $name, which is missing (install $debian)"
            return 1
        }
    done <<<"$needs"
    return 0
}

depends() {
    # dracut's crypt module, when a definition encrypts: dm-crypt and the
    # crypto modules, the dm udev rules (/dev/mapper links), and in a
    # systemd initrd systemd-cryptsetup with its generator, which unlock
    # the volumes of the initrd's /etc/crypttab.
    [[ -n $(sprout_records encrypt) ]] && echo crypt
    return 0
}

installkernel() {
    # The kernel modules the definitions need (and loop, which sprout
    # formats through), whatever the host runs: hostonly is off for them.
    local name need _why
    while IFS=$'\t' read -r name need _why; do
        if [[ $need == optional ]]; then
            hostonly='' instmods -o "$name"
        else
            hostonly='' instmods "$name"
        fi
    done < <(sprout_records module)
    return 0
}

install() {
    local src dst name _rest
    inst_simple "$(sprout_bin)" /usr/bin/sprout
    while IFS=$'\t' read -r src dst; do
        inst_simple "$src" "$dst"
    done < <(sprout_records definition)
    # Only the programs the definitions need (check() made sure they
    # exist): every mkfs the host has would add ~1 MiB each.
    while IFS=$'\t' read -r name _rest; do
        inst_multiple "$name"
    done < <(sprout_records program)
    # Libraries loaded at run time (dlopen: dracut's ldd walk does not see
    # them); a name with a directory is a plugin under the library dir.
    while IFS=$'\t' read -r name _rest; do
        if [[ $name == */* ]]; then
            inst_libdir_file "$name"
        else
            inst_library "$(sprout_find_library "$name")"
        fi
    done < <(sprout_records library)
    # Host files the programs read when they exist (mke2fs.conf).
    # A systemd unit among them is one the initrd runs: pulled in from
    # initrd.target (systemd-pcrphase-initrd.service, for signed PCR
    # policies; Debian ships no such link).
    while IFS=$'\t' read -r name _rest; do
        [[ -f $name ]] || continue
        inst_simple "$name"
        if [[ $name == */systemd/system/*.service ]]; then
            mkdir -p "$initdir$systemdsystemunitdir/initrd.target.wants"
            ln_r "$name" "$systemdsystemunitdir/initrd.target.wants/${name##*/}"
        fi
    done < <(sprout_records file)
    inst_multiple -o udevadm

    # The unit's command line, pinned to a systemd version (--compat=).
    local pin
    pin=$(sprout_pin)
    if dracut_module_included "systemd"; then
        inst_simple "$(sprout_unit)" "$systemdsystemunitdir/sprout.service"
        [[ -z $pin ]] || sed -i "s|^ExecStart=.*|& --compat=$pin|" "$initdir$systemdsystemunitdir/sprout.service"
        $SYSTEMCTL -q --root "$initdir" enable sprout.service
    else
        # Classic dracut: the pre-mount hook runs once udev has settled and
        # the root device exists, before the root is mounted; it runs the
        # unit's command line.
        mkdir -p "$initdir/usr/lib/sprout"
        sprout_command "$(sprout_unit)" >"$initdir/usr/lib/sprout/command"
        inst_hook pre-mount 50 "$moddir/sprout-pre-mount.sh"
    fi
}
