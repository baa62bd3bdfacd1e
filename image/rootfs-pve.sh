#!/bin/sh
# image/rootfs-pve.sh — the hooks of `image/rootfs.sh --variant pve`, the
# Proxmox VE 9 recipe (docs/install.md, "The Proxmox VE recipe"). mmdebstrap
# runs them; nothing else should.
#
# Usage: rootfs-pve.sh PHASE ROOT
#   setup      apt preferences: Proxmox's Secure Boot chain, never Debian's
#   essential  debconf answers, so that the build asks nothing (postfix)
#   verify     the boot chain came from Proxmox; no Debian kernel, no os-prober
#   customize  apt sources as pve-docs has them; nothing node-specific left
# Environment: ROOTFS_PVE_REPO, ROOTFS_MIRROR, ROOTFS_SUITE (exported by
# rootfs.sh); MMDEBSTRAP_APT_CONFIG (set by mmdebstrap for its hooks).
#
# Sources, cited where each choice is made:
#   [sb]    pve-docs, system-booting.adoc, section "Secure Boot" (9.1.3)
#   [repos] pve-docs, pve-package-repos.adoc, sections "Debian Base
#           Repositories", "Proxmox VE No-Subscription Repository", "SecureApt"
#   [deb13] https://pve.proxmox.com/wiki/Install_Proxmox_VE_on_Debian_13_Trixie
#           (not readable from the build machines: what rests on it is
#           listed in docs/install.md, "The Proxmox VE recipe")
#   [apt]   apt_preferences(5); [mmdeb] mmdebstrap(1), section "HOOKS"
# The whole recipe cannot run where it was written (Proxmox's repository is
# not reachable there): it is right by reading. What a build can check
# (where the boot chain came from, what the postinsts left behind) is
# checked below, failing the build rather than shipping a guess.
set -eu
umask 022

phase=${1:?phase}
root=${2:?root}
: "${ROOTFS_PVE_REPO:?}" "${ROOTFS_MIRROR:?}" "${ROOTFS_SUITE:?}"

# The Proxmox repository's host name: apt's `Pin: origin` matches a site by
# it ([apt], "origin" is the host, not the Release file's Origin field).
pve_host=${ROOTFS_PVE_REPO#*://}
pve_host=${pve_host%%/*}
pve_host=${pve_host%%:*}

say() { echo "rootfs-pve.sh: $*"; }
fail() { echo "rootfs-pve.sh: error: $*" >&2; exit 1; }

# ---- setup: before anything is downloaded ---------------------------------

# Proxmox VE 8.1+ boots with Secure Boot through Proxmox's shim-signed (shim
# signed by Microsoft, trusting Proxmox's key), shim-helpers-amd64-signed,
# grub-efi-amd64-signed and proxmox-kernel-*-signed, all from Proxmox's
# repository [sb]. Debian ships packages of the same names that trust
# Debian's key: its shim would refuse Proxmox's GRUB and kernel. apt picks
# the higher version among equal priorities, so without a pin the choice
# would depend on version strings; above 1000 Proxmox's build wins even
# against a higher Debian version (a downgrade, if one was installed) [apt].
# GRUB's other binary packages come along: the signed image pins its
# grub-efi-amd64-bin to the exact version, and one GRUB build is kept whole.
setup() {
	mkdir -p "$root/etc/apt/preferences.d"
	cat > "$root/etc/apt/preferences.d/proxmox-secure-boot.pref" <<EOF
Explanation: Written by image/rootfs.sh --variant pve (docs/install.md, "The Proxmox VE recipe").
Explanation: Proxmox VE boots with Secure Boot through Proxmox's shim, GRUB and
Explanation: kernel (pve-docs, system-booting.adoc, "Secure Boot"). Debian's
Explanation: packages of the same names trust Debian's key, not Proxmox's:
Explanation: Proxmox's build must win whatever the version strings say.
Package: shim-* grub-* grub2-* proxmox-kernel-*
Pin: origin "$pve_host"
Pin-Priority: 1001
EOF
}

# ---- essential: before the packages beyond Essential are configured -------

# [deb13] installs postfix and has its questions answered by hand ("Local
# only" unless there is a mail server to relay to); a build cannot answer,
# so the answers are given first ([mmdeb] shows debconf preseeding in
# --essential-hook; the Proxmox ISO installer preseeds postfix too,
# pve-installer Proxmox/Install.pm).
# The mail name and destinations are given without a host name: postfix's
# configure script would otherwise write the build host's (it reads
# `hostname --fqdn`), which every node would then carry; "localhost" has no
# dot, so it writes no /etc/mailname. customize() removes what it still
# derives from the build host.
essential() {
	chroot "$root" debconf-set-selections <<'EOF'
postfix postfix/main_mailer_type select Local only
postfix postfix/mailname string localhost
postfix postfix/destinations string $myhostname, localhost.$mydomain, localhost
EOF
}

# ---- verify: first customize hook, while apt's lists are still there ------

# mmdebstrap's own apt configuration: its sources (with the keyring's path on
# this host) and the chroot's dpkg status [mmdeb].
policy() {
	APT_CONFIG=${MMDEBSTRAP_APT_CONFIG:?} apt-cache policy "$1"
}

# Does the installed version of $1 come from $2 (a host)? In apt-cache
# policy's version table the installed version is marked "***" and its
# sources are the indented lines below it, up to the next version.
installed_from() {
	policy "$1" | awk -v host="://$2" '
		/^ \*\*\* / { mine = 1; next }
		/^     [^ ]/ { mine = 0 }
		mine && (index($0, host "/") || index($0, host ":")) { found = 1 }
		END { exit !found }'
}

# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
installed() {
	chroot "$root" dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "$@" 2>/dev/null |
		awk '$1 == "ii" { print $2 }' || true
}

verify() {
	for p in shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed grub-efi-amd64-bin; do
		[ -n "$(installed "$p")" ] || fail "'$p' is not installed: no Secure Boot chain"
		installed_from "$p" "$pve_host" ||
			fail "'$p' was not installed from $pve_host: Debian's build would not boot Proxmox's kernel with Secure Boot on"
	done
	kernels=$(installed 'proxmox-kernel-*-signed')
	[ -n "$kernels" ] || fail "no signed Proxmox kernel (proxmox-kernel-*-signed) is installed"
	# [deb13]: Proxmox's kernel instead of Debian's, and no os-prober (it
	# would put the guests' systems found on disks into the boot menu).
	[ -n "$(installed proxmox-default-kernel)" ] || fail "proxmox-default-kernel is not installed"
	debian=$(installed 'linux-image-*' os-prober)
	[ -z "$debian" ] || fail "installed, but [deb13] removes them: $(echo "$debian" | tr '\n' ' ')"
	say "boot chain from $pve_host: shim-signed, shim-helpers-amd64-signed, grub-efi-amd64-signed," \
		"$(echo "$kernels" | tr '\n' ' ')"
}

# ---- customize: last hook ---------------------------------------------------

# The repositories as pve-docs writes them, deb822 [repos]: Debian's base
# with main and non-free-firmware, Proxmox's no-subscription repository,
# both signed by the keyrings their packages keep up to date (the Proxmox
# key file becomes proxmox-archive-keyring's once that is installed [repos],
# so a rotated key reaches the nodes). The enterprise repository needs a
# subscription: its file (a pve-manager conffile) is removed, and dpkg does
# not bring back a conffile the administrator removed (dpkg(1),
# --force-confmiss). The build's one-line sources.list goes.
sources() {
	for k in debian-archive-keyring.gpg proxmox-archive-keyring.gpg; do
		[ -s "$root/usr/share/keyrings/$k" ] || fail "/usr/share/keyrings/$k is missing: the sources would not verify"
	done
	rm -f "$root/etc/apt/sources.list" "$root/etc/apt/sources.list.d/pve-enterprise.sources" \
		"$root/etc/apt/sources.list.d/pve-enterprise.list" "$root/etc/apt/sources.list.d/ceph.sources"
	cat > "$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $ROOTFS_MIRROR
Suites: $ROOTFS_SUITE $ROOTFS_SUITE-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.debian.org/debian-security
Suites: $ROOTFS_SUITE-security
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	cat > "$root/etc/apt/sources.list.d/proxmox.sources" <<EOF
Types: deb
URIs: $ROOTFS_PVE_REPO
Suites: $ROOTFS_SUITE
Components: pve-no-subscription
Signed-By: /usr/share/keyrings/proxmox-archive-keyring.gpg
EOF
}

# Remove a path made while building that each node must make for itself.
drop() {
	for p in "$@"; do
		if [ -e "$root$p" ] || [ -L "$root$p" ]; then
			say "removing $p (made while building; every node makes its own)"
			rm -rf "$root$p"
		fi
	done
}

# Postfix: its configure script set myhostname from the build host's name,
# and myorigin from /etc/mailname when that was written. Without them
# postfix takes the node's own name at run time (postconf(5), myhostname and
# mydomain defaults); delivery stays local only (inet_interfaces
# loopback-only, as "Local only" sets it).
postfix_generic() {
	cf=$root/etc/postfix/main.cf
	[ -f "$cf" ] || fail "no /etc/postfix/main.cf: postfix was not configured"
	for k in myhostname myorigin; do
		if chroot "$root" postconf -n | grep -q "^$k ="; then
			chroot "$root" postconf -X "$k"
		fi
	done
	# shellcheck disable=SC2016 # postfix's own $variables
	chroot "$root" postconf -e 'mydestination = $myhostname, localhost.$mydomain, localhost'
	drop /etc/mailname
	b=$(hostname)
	case $b in
	localhost | localhost.*) ;;
	*) ! grep -qwiF -e "$b" "$cf" || fail "/etc/postfix/main.cf still names the build host '$b'" ;;
	esac
}

# ssl-cert's postinst made a snakeoil key on the build host (make-ssl-cert
# generate-default-snakeoil): one private key on every node. It goes, and a
# unit makes each node's own, named after the node, before postfix (whose
# smtpd TLS settings name it) starts.
snakeoil() {
	drop /etc/ssl/private/ssl-cert-snakeoil.key /etc/ssl/certs/ssl-cert-snakeoil.pem
	find "$root/etc/ssl/certs" -type l -lname '*ssl-cert-snakeoil.pem' -exec rm -f {} +
	[ -x "$root/usr/sbin/make-ssl-cert" ] || return 0
	unit=devopslab-snakeoil.service
	cat > "$root/etc/systemd/system/$unit" <<'EOF'
# Written by image/rootfs.sh --variant pve: the rootfs ships without
# ssl-cert's snakeoil key, so that every node makes its own.
[Unit]
Description=Per-node snakeoil TLS key and certificate
ConditionPathExists=!/etc/ssl/private/ssl-cert-snakeoil.key
Before=postfix.service postfix@-.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/make-ssl-cert generate-default-snakeoil

[Install]
WantedBy=multi-user.target
EOF
	mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
	ln -sfn "/etc/systemd/system/$unit" "$root/etc/systemd/system/multi-user.target.wants/$unit"
}

# open-iscsi's postinst generated an InitiatorName (iscsi-iname) on the build
# host: an iSCSI target would take every node for the same initiator.
# "GenerateName=yes" makes iscsid's start-up check (startup-checks.sh, its
# ExecStartPre) write a fresh name on each node before iscsid first runs.
iscsi_name() {
	f=$root/etc/iscsi/initiatorname.iscsi
	[ -e "$f" ] || return 0
	grep -q '^InitiatorName=' "$f" || return 0
	grep -qsF 'GenerateName=yes' "$root/usr/lib/open-iscsi/startup-checks.sh" "$root/lib/open-iscsi/startup-checks.sh" ||
		fail "open-iscsi's startup-checks.sh no longer handles GenerateName=yes: the recipe needs updating"
	say "replacing the build's iSCSI InitiatorName: each node generates its own"
	printf '%s\n' "## Written by image/rootfs.sh --variant pve: iscsid's start-up check" \
		"## generates this node's InitiatorName in place of the next line." \
		"GenerateName=yes" > "$f"
	chmod 0600 "$f"
}

customize() {
	sources
	# pmxcfs's database, made by pve-cluster.service on its first start,
	# and what lives in it (certificates, keys: /etc/pve is its mount
	# point, empty underneath); corosync's cluster key and configuration
	# (cluster create/join); root's cluster SSH key (pvecm updatecerts);
	# the host name (the install's config-hostname); proxmox-boot-tool's
	# ESP list; systemd's seed and credential key. None should exist after
	# a build whose services never ran: removed if they do, and reported.
	drop /var/lib/pve-cluster/config.db /var/lib/pve-cluster/config.db-wal \
		/var/lib/pve-cluster/config.db-shm /var/lib/pve-cluster/backup \
		/etc/corosync/authkey /etc/corosync/corosync.conf \
		/root/.ssh/id_rsa /root/.ssh/id_rsa.pub /etc/hostname \
		/etc/kernel/proxmox-boot-uuids /var/lib/systemd/random-seed \
		/var/lib/systemd/credential.secret /var/log/pveam.log
	if [ -d "$root/etc/pve" ]; then
		for p in "$root"/etc/pve/* "$root"/etc/pve/.[!.]*; do
			[ -e "$p" ] || [ -L "$p" ] || continue
			drop "${p#"$root"}"
		done
	fi
	postfix_generic
	snakeoil
	iscsi_name
	# What the shared hooks of rootfs.sh remove, checked once more.
	for p in "$root"/etc/ssh/ssh_host_*; do
		if [ -e "$p" ]; then fail "${p#"$root"} is still there"; fi
	done
	[ ! -s "$root/etc/machine-id" ] || fail "/etc/machine-id is not empty"
	[ ! -e "$root/var/lib/dbus/machine-id" ] || fail "/var/lib/dbus/machine-id is still there"
}

case $phase in
setup | essential | verify | customize) "$phase" ;;
*) fail "unknown phase '$phase'" ;;
esac
