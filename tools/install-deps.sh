#!/bin/sh
# Installs the Debian 12 packages aaclip needs, only those missing.
# As root it runs apt-get; otherwise it prints the exact command and stops.
set -eu
PKGS="build-essential cmake pkg-config libopenblas-dev libjansson-dev libpcre2-dev zlib1g-dev libzip-dev clang libclang-rt-14-dev python3-numpy libdcmtk-dev libinsighttoolkit5-dev python3-nibabel python3-pydicom python3-sklearn libpng-dev libjpeg62-turbo-dev libxml2-dev dcmtk dicom3tools python3-scipy dcm2niix orthanc libssl-dev openssl libopenmpi-dev openmpi-bin libdnnl-dev libopenjp2-7-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  echo "install-deps: installing:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing
else
  echo "install-deps: missing Debian packages:$missing" >&2
  echo "install-deps: run: sudo apt-get install -y$missing" >&2
  exit 1
fi
