# Sourced by nested.sh and arm64.sh: how the nested platforms reach Debian's packages.
# shellcheck shell=bash

# Options for apt-get download: as root, apt would fall back to an unsandboxed download with a
# warning anyway, because the _apt user cannot write into the build directory.
apt_dl_opts() { [ "$(id -u)" -ne 0 ] || echo "-o APT::Sandbox::User=root"; }

# The Debian mirror URI this machine already uses (never written into the repository).
mirror_uri() {
	if [ -n "${NESTED_DEBIAN_MIRROR:-}" ]; then echo "$NESTED_DEBIAN_MIRROR"; return; fi
	local f=/etc/apt/sources.list.d/debian.sources uri=
	if [ -r "$f" ]; then
		# deb822: the first URI of the first stanza that is not the security archive.
		uri=$(awk 'BEGIN { RS = "" }
			$0 !~ /(^|\n)Suites:[^\n]*-security/ {
				if (match($0, /(^|\n)URIs:[ \t]*[^ \t\n]+/)) {
					s = substr($0, RSTART, RLENGTH); sub(/^\n?URIs:[ \t]*/, "", s); print s; exit
				}
			}' "$f")
	fi
	if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
		uri=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list)
	fi
	[ -n "$uri" ] || { echo "no Debian mirror URI found in $f (set NESTED_DEBIAN_MIRROR)" >&2; return 1; }
	echo "$uri"
}
