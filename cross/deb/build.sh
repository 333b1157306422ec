#!/bin/bash
# Builds one Debian package of emberchat with dpkg-deb (`make deb` runs it for each binary).
#
# usage: cross/deb/build.sh BINARY ARCH VERSION OUT_DIR [armv6|armv7]
#
# ARCH is Debian's name (amd64, arm64, armhf). Two builds share armhf: the armv7 binary is
# the package `emberchat` (refusing ARMv6 cores in its preinst) and the armv6 one is
# `emberchat-armv6`, which replaces it for the Pi Zero, Zero W and 1.
set -euo pipefail

if [ $# -lt 4 ] || [ $# -gt 5 ]; then
    echo "usage: $0 BINARY ARCH VERSION OUT_DIR [armv6|armv7]" >&2
    exit 2
fi
binary=$1 arch=$2 version=$3 out=$4 variant=${5:-}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ -x "$binary" ] || { echo "$binary is missing: build it first (make deb does)" >&2; exit 1; }

package=emberchat
case "$variant" in
    '' | armv7) ;;
    armv6) package=emberchat-armv6 ;;
    *) echo "unknown variant $variant (armv6 or armv7)" >&2; exit 2 ;;
esac

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/$package
umask 022

install -Dm755 "$binary" "$root/usr/bin/emberchat"
units=$root/usr/lib/systemd/system
install -d "$units"
for unit in emberchat.service emberchat-backup.service; do
    sed 's|/usr/local/bin/emberchat|/usr/bin/emberchat|g' "$repo/cross/systemd/$unit" > "$units/$unit"
done
install -m644 "$repo/cross/systemd/emberchat.socket" "$repo/cross/systemd/emberchat-backup.timer" "$units/"
chmod 644 "$units"/*
install -Dm644 "$repo/cross/systemd/emberchat.env" "$root/etc/default/emberchat"
install -Dm644 "$repo/cross/avahi/emberchat.service" "$root/usr/share/emberchat/avahi/emberchat.service"

doc=$root/usr/share/doc/$package
install -d "$doc"
gzip -9n < "$repo/README.md" > "$doc/README.md.gz"
{
    cat "$here/copyright"
    # The licence's text, as a Debian copyright file indents it.
    sed -e 's/^$/./' -e 's/^/ /' "$repo/LICENSE"
} > "$doc/copyright"
chmod 644 "$doc"/*

install -d "$root/DEBIAN"
for script in postinst prerm postrm; do
    install -m755 "$here/$script" "$root/DEBIAN/$script"
done
echo /etc/default/emberchat > "$root/DEBIAN/conffiles"

description="small Socket.IO chat gateway for single-board computers"
case "$package:$arch" in
    emberchat:armhf)
        install -m755 "$here/preinst-armv7" "$root/DEBIAN/preinst"
        relations="Conflicts: emberchat-armv6
Replaces: emberchat-armv6"
        build_note=" This build is for ARMv7 and later (Raspberry Pi 2, 3, 4, Zero 2 W on a 32-bit
 OS); the Pi Zero, Zero W and 1 need emberchat-armv6."
        ;;
    emberchat-armv6:*)
        relations="Provides: emberchat
Conflicts: emberchat
Replaces: emberchat"
        build_note=" This build is for ARMv6 (Raspberry Pi Zero, Zero W, 1) and runs on every
 32-bit Pi; on ARMv7 and later the emberchat package is faster."
        ;;
    *)
        relations=""
        build_note=""
        ;;
esac

installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
{
    echo "Package: $package"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: ${DEB_MAINTAINER:-emberchat developers <emberchat@localhost>}"
    echo "Installed-Size: $installed_size"
    echo "Section: net"
    echo "Priority: optional"
    echo "Suggests: avahi-daemon, sqlite3"
    if [ -n "$relations" ]; then echo "$relations"; fi
    echo "Description: $description"
    echo " emberchat serves a chat page and the Socket.IO protocol (Engine.IO v4, Socket.IO"
    echo " v5) from one static binary, storing every message in SQLite. The official"
    echo " Socket.IO clients work with it unchanged. The systemd units are installed but"
    echo " not enabled: see /usr/share/doc/$package/README.md.gz."
    if [ -n "$build_note" ]; then
        echo " ."
        echo "$build_note"
    fi
} > "$root/DEBIAN/control"

# The same sources give the same package: every file dated from the last commit.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}
find "$root" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${package}_${version}_${arch}.deb"
