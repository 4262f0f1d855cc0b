#!/bin/sh
# Installs a built aaclip .deb into a clean Debian 12 (bookworm) system and runs what a user
# runs first: `aaclip make-sample-study`, `aaclip score` (demo model), `aaclip-slicer --xml`,
# `aaclip plugins` (the installed backend plugins load), and the library through pkg-config.
# The clean system is a minimal debootstrap chroot (only the
# essential packages); apt resolves the .deb's Depends from the Debian archive, so a missing or
# wrong dependency fails here. Needs root, debootstrap and network access to a Debian mirror.
#   tools/check-deb-clean-install.sh build/packages/aaclip_*.deb [CHROOT_DIR]
# Used by `make package-check`; results recorded in docs/validation.md.
set -eu
DEB=$(readlink -f "$1")
ROOT=${2:-$(mktemp -d /tmp/aaclip-deb12.XXXXXX)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || { echo "check-deb-clean-install: needs root (chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "check-deb-clean-install: apt-get install debootstrap" >&2; exit 1; }
if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
  echo "== debootstrap --variant=minbase bookworm $ROOT"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" > "$ROOT.debootstrap.log" 2>&1 ||
    { tail -20 "$ROOT.debootstrap.log"; exit 1; }
fi
cleanup() { umount "$ROOT/proc" 2>/dev/null || true; }
trap cleanup EXIT
mount -t proc proc "$ROOT/proc"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp "$DEB" "$ROOT/tmp/"
NAME=$(basename "$DEB")
chroot "$ROOT" /bin/sh -eu -c "
  export DEBIAN_FRONTEND=noninteractive LC_ALL=C
  echo '== packages before:' \$(dpkg-query -W | wc -l)
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends /tmp/$NAME > /tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }
  echo '== packages after:' \$(dpkg-query -W | wc -l)
  dpkg -s aaclip | grep -E '^(Status|Version|Depends):'
  cd /root
  aaclip --version
  aaclip make-sample-study -o /root/study
  aaclip score /root/study/dicom -o /root/results --quiet
  test -f /root/results/summary.json
  python3 -c 'pass' 2>/dev/null || true
  grep -o '\"regions\": [0-9]*' /root/results/summary.json
  grep -o '\"demo_model\": \"[^\"]*' /root/results/summary.json | head -c 120; echo
  ls /root/results/*/*/* | head -20
  /usr/lib/aaclip/slicer/aaclip-slicer --xml | head -3
  aaclip plugins
  ldd /usr/bin/aaclip | grep -c 'not found' | grep -qx 0
  echo '== clean install: OK'
"
