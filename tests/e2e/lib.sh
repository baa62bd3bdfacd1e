# tests/e2e/lib.sh — sourced by tests/integration/t-e2e-*.sh after
# tests/lib.sh: build the boot image for a test, boot it under QEMU (TCG),
# wait for console lines with a bounded loop.
#
#   e2e_setup            keys, bundles (good, wrong key, corrupt) in $E2E
#   e2e_build [args]     image/build.sh into $E2E/out (kernel cache shared)
#   e2e_boot NAME MODE [qemu-boot.sh args]   start; log in $E2E/NAME.log
#   e2e_wait NAME REGEX [SECONDS]            wait for a console line
#   e2e_console NAME     the console log without escape sequences
: "${E2E:=$TESTTMP}"
export OUT=$E2E/out CACHE=${E2E_CACHE:-$TOP/out/cache} ZSTD_LEVEL=${ZSTD_LEVEL:-3}
E2E_BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-600}
declare -A E2E_PID

e2e_setup() {
	mkdir -p "$E2E/www"
	# Placeholder assets, secrets, a signing key (scripts/example-inputs.sh),
	# and another key for the "wrong key" bundle.
	"$TOP/scripts/example-inputs.sh" "$TOP/examples/homelab.yaml" "$E2E" >/dev/null
	cp "$E2E/signing.key" "$E2E/key.pem"
	cp "$E2E/signing.pub" "$E2E/pub.pem"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$E2E/other.pem" 2>/dev/null
	local k
	for k in key:good other:wrongkey; do
		"$DEVOPSLAB" bundle create --manifest "$TOP/examples/homelab.yaml" --assets "$E2E/assets" \
			--secrets "$E2E/secrets.env" --secret-key "$E2E/secret.key" \
			--key "$E2E/${k%%:*}.pem" -o "$E2E/www/${k#*:}.tar.zst" >/dev/null
	done
	cp "$E2E/www/good.tar.zst" "$E2E/www/corrupt.tar.zst"
	local size
	size=$(stat -c %s "$E2E/www/corrupt.tar.zst")
	printf '\xff\xff\xff\xff' | dd of="$E2E/www/corrupt.tar.zst" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
}

e2e_build() {
	"$TOP/image/build.sh" --pubkey "$E2E/pub.pem" --binary "$DEVOPSLAB" "$@" >"$E2E/build.log" 2>&1 ||
		{ tail -30 "$E2E/build.log" >&2; fail "image build failed"; }
}

# The bundle server for netboot: 127.0.0.1 only; the guest reaches it as
# 10.0.2.2 (QEMU user networking maps that address to the host's loopback).
e2e_httpd() {
	bg_start "$PY" "$TOP/tests/e2e/httpd.py" "$E2E/www" >"$E2E/httpd.port" 2>"$E2E/httpd.log"
	local i
	for i in $(seq 50); do [ -s "$E2E/httpd.port" ] && break; sleep 0.1; done
	E2E_HTTP_PORT=$(head -1 "$E2E/httpd.port")
	[ -n "$E2E_HTTP_PORT" ] || fail "httpd did not start"
}

e2e_boot() { # NAME MODE [args]
	local name=$1 mode=$2 pid
	shift 2
	mkdir -p "$E2E/vm-$name"
	# This test's own artefacts, never the ones in $TOP/out.
	pid=$("$TOP/scripts/qemu-boot.sh" --mode "$mode" --iso "$OUT/devopslab.iso" --pxe "$OUT/pxe" \
		--log "$E2E/$name.log" --workdir "$E2E/vm-$name" --background "$@")
	_test_pids+=("$pid")
	E2E_PID[$name]=$pid
	echo "e2e: $name: booting ($mode $*), pid $pid"
}

e2e_console() {
	sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g' "$E2E/$1.log" 2>/dev/null | tr -d '\r'
}

e2e_wait() { # NAME REGEX [SECONDS]
	local name=$1 re=$2 tmo=${3:-$E2E_BOOT_TIMEOUT} start=$SECONDS
	while ((SECONDS - start < tmo)); do
		if e2e_console "$name" | grep -aE -- "$re" >/dev/null; then
			echo "e2e: $name: '$re' after $((SECONDS - start)) s"
			return 0
		fi
		if ! kill -0 "${E2E_PID[$name]}" 2>/dev/null; then
			e2e_console "$name" | tail -40 >&2
			cat "$E2E/vm-$name/qemu.out" >&2 || true
			fail "$name: QEMU exited before '$re'"
		fi
		sleep 1
	done
	e2e_console "$name" | tail -40 >&2
	fail "$name: no '$re' on the console within $tmo s"
}

# Like e2e_wait, for long work (an install): no total limit short of
# SECONDS, but a guest whose kernel reported a stuck NVMe command and whose
# console then stays silent for E2E_STALL seconds (300) is hung: returns 2
# (the caller may power-cycle it, and says so). A guest that is only slow
# (a loaded machine) keeps printing and is waited for.
E2E_STALL=${E2E_STALL:-300}
e2e_wait_or_hang() { # NAME REGEX [SECONDS]
	local name=$1 re=$2 tmo=${3:-1800} start=$SECONDS size=-1 since=$SECONDS now
	while ((SECONDS - start < tmo)); do
		if e2e_console "$name" | grep -aE -- "$re" >/dev/null; then
			echo "e2e: $name: '$re' after $((SECONDS - start)) s"
			return 0
		fi
		if ! kill -0 "${E2E_PID[$name]}" 2>/dev/null; then
			e2e_console "$name" | tail -40 >&2
			cat "$E2E/vm-$name/qemu.out" >&2 || true
			fail "$name: QEMU exited before '$re'"
		fi
		now=$(stat -c %s "$E2E/$name.log" 2>/dev/null || echo 0)
		if [ "$now" != "$size" ]; then size=$now since=$SECONDS; fi
		if ((SECONDS - since >= E2E_STALL)) &&
			e2e_console "$name" | grep -aE 'nvme[0-9]+: I/O [0-9]+ (\(.*\) )?QID [0-9]+ timeout' >/dev/null; then
			echo "e2e: $name: an NVMe command timed out and the console has been silent for $((SECONDS - since)) s"
			e2e_console "$name" | grep -aE 'nvme|blocked for more than' | tail -20
			return 2
		fi
		sleep 2
	done
	e2e_console "$name" | tail -40 >&2
	fail "$name: no '$re' on the console within $tmo s"
}

e2e_assert() { # NAME TEXT
	e2e_console "$1" | grep -aF -- "$2" >/dev/null || { e2e_console "$1" | tail -40 >&2; fail "$1: console lacks '$2'"; }
}

# The boot stopped in the rescue shell and stays there: QEMU (-no-reboot)
# still runs, and the image booted exactly once.
e2e_assert_rescue() { # NAME
	e2e_wait "$1" '^\(devopslab rescue\) .*#' 300
	sleep 3
	kill -0 "${E2E_PID[$1]}" 2>/dev/null || fail "$1: QEMU exited: the guest rebooted or powered off"
	local boots
	boots=$(e2e_console "$1" | grep -ac 'devopslab: DevOpsLab boot image' || true)
	assert_eq 1 "$boots" "$1: number of boots"
}

e2e_stop() { # NAME
	kill "${E2E_PID[$1]}" 2>/dev/null || true
	wait "${E2E_PID[$1]}" 2>/dev/null || true
}

# The guest powered off or rebooted (QEMU runs with -no-reboot): its QEMU
# exits by itself within SECONDS.
e2e_wait_exit() { # NAME SECONDS
	local name=$1 tmo=$2 start=$SECONDS
	while ((SECONDS - start < tmo)); do
		if ! kill -0 "${E2E_PID[$name]}" 2>/dev/null; then
			wait "${E2E_PID[$name]}" 2>/dev/null || true
			echo "e2e: $name: QEMU exited after $((SECONDS - start)) s"
			return 0
		fi
		sleep 1
	done
	e2e_console "$name" | tail -20 >&2
	fail "$name: QEMU still runs $tmo s later"
}
