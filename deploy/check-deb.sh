#!/bin/sh
# Builds the Debian package with cargo-deb and checks what is inside it: the binary,
# both systemd units (identical to deploy/), the conffile, docs and the maintainer
# scripts with the systemd fragments filled in.
#
# Usage: deploy/check-deb.sh [--no-build] [cargo-deb options, e.g. --target aarch64-unknown-linux-gnu]
#   --no-build   package an existing release build (cargo build --release first)
#   DEB=path     skip building and check this .deb instead
# Needs cargo-deb (cargo install cargo-deb) and dpkg-deb.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
status=0
fail() {
    echo "FAIL $*" >&2
    status=1
}
ok() {
    echo "ok   $*"
}

if [ -z "${DEB:-}" ]; then
    for needed in config/massaged.toml docs/install.md deploy/massaged.service deploy/massaged@.service; do
        [ -f "$needed" ] || { echo "check-deb: $needed is missing (it is packaged)" >&2; exit 2; }
    done
    command -v cargo-deb >/dev/null 2>&1 || { echo "check-deb: cargo install cargo-deb" >&2; exit 2; }
    # cargo-deb prints the path of the package it wrote as its last line.
    DEB=$(cargo deb "$@" | tail -n 1)
fi
[ -f "$DEB" ] || { echo "check-deb: no package at '$DEB'" >&2; exit 2; }
echo "checking $DEB"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -c "$DEB" | awk '{ print $NF }' | sed 's|^\./|/|' >"$work/files"
dpkg-deb -x "$DEB" "$work/root"
dpkg-deb -e "$DEB" "$work/control"

has_file() {
    if grep -qx "$1" "$work/files"; then ok "contains $1"; else fail "missing $1"; fi
}
has_file /usr/bin/massaged
has_file /etc/massaged/massaged.toml
has_file /usr/share/doc/massaged/install.md

# Units: /lib/systemd/system on bookworm-era tooling, /usr/lib/systemd/system on newer.
for unit in massaged.service massaged@.service; do
    path=$(grep -E "^(/usr)?/lib/systemd/system/$unit\$" "$work/files" | head -n 1 || true)
    if [ -z "$path" ]; then
        fail "missing unit $unit"
    elif cmp -s "$work/root$path" "deploy/$unit"; then
        ok "contains $path (same as deploy/$unit)"
    else
        fail "$path differs from deploy/$unit"
    fi
done

# mqtt5 (the embedded broker, with ring and rustls) leaves its source paths in the binary.
if grep -q 'mqtt5-[0-9]' "$work/root/usr/bin/massaged"; then
    fail "usr/bin/massaged contains the embedded broker (mqtt5)"
else
    ok "usr/bin/massaged has no mqtt5 code ($(wc -c <"$work/root/usr/bin/massaged") bytes)"
fi

mode=$(dpkg-deb -c "$DEB" | awk '$NF == "./usr/bin/massaged" { print $1 }')
[ "$mode" = "-rwxr-xr-x" ] && ok "binary mode $mode" || fail "binary mode '$mode'"

if grep -qx /etc/massaged/massaged.toml "$work/control/conffiles" 2>/dev/null; then
    ok "conffile /etc/massaged/massaged.toml"
else
    fail "/etc/massaged/massaged.toml not in conffiles"
fi

depends=$(dpkg-deb -f "$DEB" Depends)
case "$depends" in
*adduser*) ok "Depends: $depends" ;;
*) fail "Depends lacks adduser: '$depends'" ;;
esac

for script in postinst prerm postrm; do
    file="$work/control/$script"
    if [ ! -x "$file" ]; then
        fail "maintainer script $script missing or not executable"
    elif grep -q '#DEBHELPER#' "$file"; then
        fail "$script still has the #DEBHELPER# token"
    elif ! sh -n "$file"; then
        fail "$script is not valid sh"
    else
        ok "maintainer script $script"
    fi
done
expect_in() {
    if grep -q -- "$2" "$work/control/$1" 2>/dev/null; then ok "$1: $3"; else fail "$1: no $3"; fi
}
expect_in postinst 'adduser --system' "system user creation"
expect_in postinst 'enable massaged.service' "enable of massaged.service"
expect_in postinst 'daemon-reload' "systemctl daemon-reload"
expect_in prerm 'stop massaged.service' "stop of massaged.service"
expect_in postrm 'deluser' "user removal on purge"
expect_in postrm '/var/lib/massaged' "state removal on purge"

# The binary runs here when the package is for this machine's architecture, and a Pi's
# package under qemu-user when it is installed with the target's libraries (.ci/cross).
arch=$(dpkg-deb -f "$DEB" Architecture)
runner=none
case "$arch" in
"$(dpkg --print-architecture)") runner="" ;;
arm64) qemu=qemu-aarch64 sysroot=/usr/aarch64-linux-gnu ;;
armhf) qemu=qemu-arm sysroot=/usr/arm-linux-gnueabihf ;;
esac
if [ "$runner" = none ] && [ -n "${qemu:-}" ] && command -v "$qemu" >/dev/null 2>&1 && [ -d "$sysroot" ]; then
    runner="$qemu -L $sysroot"
fi
if [ "$runner" != none ]; then
    # $runner is empty or "qemu-ARCH -L SYSROOT": word splitting wanted.
    # shellcheck disable=SC2086
    if version=$($runner "$work/root/usr/bin/massaged" --version 2>&1); then
        ok "binary runs: $version"
    else
        fail "usr/bin/massaged --version: $version"
    fi
    # Built without the embedded-broker feature ([package.metadata.deb] in Cargo.toml): the
    # flag must fail at once and say why. (A build that has the broker would keep running
    # on a free port until the timeout, which fails this check too.)
    # shellcheck disable=SC2086
    if out=$(timeout 20 $runner "$work/root/usr/bin/massaged" --config "$work/root/etc/massaged/massaged.toml" \
        run --embedded-broker 127.0.0.1:0 2>&1); then
        fail "run --embedded-broker succeeded: $out"
    else
        case "$out" in
        *"no embedded broker"*) ok "no embedded broker: $out" ;;
        *) fail "run --embedded-broker did not say the build has no embedded broker: $out" ;;
        esac
    fi
else
    echo "skip running the binary: package is $arch (no qemu-user and target libraries here)"
fi

exit $status
