#!/bin/bash
# scripts/check-layout.py on this tree (it must pass), then on a copy of it
# broken five ways, each of which it must name: a stray top-level file, a
# lib/ folder without its README, an include against a folder's "May
# include:", an include circle between modules, and an include circle
# between folders.
# sanitizer: skip
. "$TOP/tests/lib.sh"
command -v git >/dev/null || skip "git not installed"

"$TOP/scripts/check-layout.py" >"$TESTTMP/self.out" 2>&1 || { cat "$TESTTMP/self.out" >&2; fail "the tree breaks its own layout"; }

# A copy of every file git knows or would add (not build output).
copy=$TESTTMP/tree
mkdir -p "$copy"
(cd "$TOP" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$copy" 2>/dev/null) || true
[ -f "$copy/provisioner/lib/bundle/sig.h" ] || fail "copy of the tree is incomplete"
(cd "$copy" && git init -q && git add -A) || fail "git init of the copy"

check_copy() { # EXPECTED-FINDING
	set +e
	LAYOUT_TOP=$copy "$TOP/scripts/check-layout.py" >"$TESTTMP/out" 2>&1
	local rc=$?
	set -e
	[ "$rc" = 1 ] || { cat "$TESTTMP/out" >&2; fail "check-layout exited $rc, expected 1 for: $1"; }
	grep -qF -- "$1" "$TESTTMP/out" || { cat "$TESTTMP/out" >&2; fail "check-layout did not report: $1"; }
	echo "layout: reported: $1"
}
reset_copy() { (cd "$copy" && git checkout -q -- . && git clean -qfd); }

LAYOUT_TOP=$copy "$TOP/scripts/check-layout.py" >"$TESTTMP/out" 2>&1 || { cat "$TESTTMP/out" >&2; fail "the copy fails"; }

# 1. The kind of stray file a literal "$1" in a script once made.
mkdir -p "$copy/\$1/.packages" && echo x >"$copy/\$1/.packages/.packages"
check_copy "\$1: tracked, but not in README.md's layout"
reset_copy

# 2. A folder of lib/ without a README.
mkdir -p "$copy/provisioner/lib/k8s" && printf '/* x */\n' >"$copy/provisioner/lib/k8s/k8s.h"
check_copy "provisioner/lib/k8s: no README.md"
reset_copy

# 3. bundle/ (first in the pipeline) including from pve/ (last).
sed -i 's|^#include "util.h"$|#include "util.h"\n#include "pve/http.h"|' "$copy/provisioner/lib/bundle/extract.c"
check_copy 'provisioner/lib/bundle/extract.c: #include "pve/http.h": lib/bundle may not include from lib/pve'
reset_copy

# 4. The circle issue 10 named: the backends' base declaring a backend.
sed -i 's|^#include <stdint.h>$|#include <stdint.h>\n#include "sig-openssl.h"|' "$copy/provisioner/lib/bundle/sig.h"
check_copy "include circle between modules: provisioner/lib/bundle/sig <-> provisioner/lib/bundle/sig-openssl"
reset_copy

# 5. Two folders including each other.
sed -i 's|^May include: .*$|May include: basic, plan|' "$copy/provisioner/lib/manifest/README.md"
sed -i 's|^#include "util.h"$|#include "util.h"\n#include "plan/journal.h"|' "$copy/provisioner/lib/manifest/diag.c"
check_copy "include circle between folders: lib:manifest <-> lib:plan"
echo "layout: all checks passed"
