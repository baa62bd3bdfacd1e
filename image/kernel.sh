#!/bin/bash
# image/kernel.sh — fetch Debian's kernel (the package linux-image-amd64
# depends on: on Debian 12 that versioned package is the signed kernel)
# with `apt-get download` into out/cache/, and unpack it into
# out/cache/kernel/ (vmlinuz, modules, version). The build host's own kernel
# is never used. A cached .deb is reused; KERNEL_DEB=FILE uses a given one.
. "$(dirname "$0")/lib.sh"

mkdir -p "$CACHE"
deb=${KERNEL_DEB:-}
if [ -z "$deb" ]; then
	resolve() {
		apt-cache depends linux-image-amd64 2>/dev/null |
			sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1
	}
	pkg=$(resolve)
	# A fresh machine may have no package lists yet.
	if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
		apt-get update -qq >&2 || true
		pkg=$(resolve)
	fi
	if [ -z "$pkg" ]; then
		# Offline, or no package lists: fall back on any cached kernel.
		deb=$(ls "$CACHE"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort | tail -1 || true)
		[ -n "$deb" ] || die "cannot resolve linux-image-amd64 (run apt-get update) and no cached kernel"
	else
		deb=$(ls "$CACHE/${pkg}"_*.deb 2>/dev/null | sort | tail -1 || true)
		if [ -z "$deb" ]; then
			msg "downloading $pkg"
			# apt's sandbox user cannot write a root-only directory.
			tmp=$(mktemp -d /tmp/devopslab-kernel.XXXXXX)
			chmod 755 "$tmp"
			(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
			mv "$tmp"/*.deb "$CACHE/"
			rmdir "$tmp"
			deb=$(ls "$CACHE/${pkg}"_*.deb | sort | tail -1)
		fi
	fi
fi

stamp=$CACHE/kernel/.from
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(basename "$deb")" ]; then
	exit 0
fi
msg "unpacking $(basename "$deb")"
rm -rf "$CACHE/kernel"
mkdir -p "$CACHE/kernel"
dpkg-deb -x "$deb" "$CACHE/kernel/root"
ver=$(ls "$CACHE/kernel/root/lib/modules" | head -1)
[ -n "$ver" ] || die "$deb has no modules"
# The package ships no modules.dep (its postinst runs depmod).
depmod -b "$CACHE/kernel/root" "$ver"
cp "$CACHE/kernel/root/boot/vmlinuz-$ver" "$CACHE/kernel/vmlinuz"
echo "$ver" >"$CACHE/kernel/version"
basename "$deb" >"$stamp"
