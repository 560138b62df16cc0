#!/usr/bin/env bash
# Installs the Debian 12 packages that only the nested suite needs, if any are missing.
# Idempotent: with everything installed it does nothing and touches no network.
# (veil's own build dependencies come from scripts/deps.)
set -euo pipefail

pkgs=(
	qemu-system-x86 # runs L1 under TCG
	qemu-system-arm # the arm64 platform's L1 (arm64.sh)
	busybox-static  # the L1 and L2 userlands
	cpio            # packs the initramfs images
	xz-utils zstd   # kernel modules from trixie-backports are .ko.xz
	apt dpkg        # apt-get download, dpkg-deb -x
	util-linux      # flock
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "nested/deps.sh: installing ${missing[*]}" >&2
sudo=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "nested/deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
	sudo="sudo -n"
fi
timeout 300 $sudo apt-get update -qq
timeout 600 $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	"${missing[@]}" >&2
