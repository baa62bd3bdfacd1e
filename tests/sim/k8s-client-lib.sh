# shellcheck shell=bash
# tests/sim/k8s-client-lib.sh — the client the simulators' own tests
# (t-sim-argocd, t-sim-monitoring, t-sim-registry, t-sim-logs) talk to the
# Kubernetes simulator with: curl at $K8S_URL trusting
# $TESTTMP/server-ca.crt, as the bearer $TOKEN when it is set, else with
# the admin's client certificate ($TESTTMP/admin.{crt,key}).

# k METHOD PATH [FILE [CONTENT-TYPE [CURL-ARGS...]]]: the answer's body in
# $TESTTMP/k.json, its headers in $TESTTMP/k.head; prints the HTTP status
# (METHOD HEAD: no body).
k() {
	local args=(-sS -o "$TESTTMP/k.json" -D "$TESTTMP/k.head" -w '%{http_code}' --cacert "$TESTTMP/server-ca.crt")
	if [ -n "${TOKEN:-}" ]; then args+=(-H "Authorization: Bearer $TOKEN")
	else args+=(--cert "$TESTTMP/admin.crt" --key "$TESTTMP/admin.key"); fi
	if [ "$1" = HEAD ]; then args+=(--head); else args+=(-X "$1"); fi
	[ -z "${3:-}" ] || args+=(--data-binary "@$3" -H "Content-Type: ${4:-application/json}")
	curl "${args[@]}" "${@:5}" "$K8S_URL$2"
}
kok() { # METHOD PATH [FILE [CONTENT-TYPE]]: k, which must answer 2xx
	local code
	code=$(k "$@")
	case $code in 2??) ;; *) cat "$TESTTMP/k.json" >&2; fail "$1 $2 answered $code" ;; esac
}
jget() { jq -r "$1" "$TESTTMP/k.json"; } # a jq expression over the last answer
header() { tr -d '\r' <"$TESTTMP/k.head" | sed -n "s/^$1: //Ip"; } # NAME: its value in the last answer
answers() { [ "$(k GET "$2")" = "$1" ]; } # CODE PATH: GET PATH answers CODE
poll() { # SECONDS WHAT CMD...: CMD until it succeeds, at most SECONDS
	local end=$((SECONDS + $1)) what=$2
	shift 2
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || { cat "$TESTTMP/k.json" >&2; fail "timed out waiting for $what"; }
		sleep 0.1
	done
}
