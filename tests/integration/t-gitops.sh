#!/bin/bash
# GitOps against the simulators (docs/gitops.md): the lab of t-edge.sh (three
# simulated Proxmox VE nodes, K3s with kube-vip, one Technitium DNS VM, the
# edge) with a gitops section: Argo CD's chart (a stand-in of ours,
# tests/data/gitops/argo-cd, with its CRDs in crds/ as the real chart can
# ship them) and an image tarball from the assets, a private repository over
# HTTPS with a token. The Kubernetes simulator installs the chart as K3s's
# helm controller does (the CRDs from crds/, helm's way), validates every
# Application against the stored CRD's schema, and models Argo CD's
# application controller over a set of Git repositories (--git-repos).
# Checked from the outside:
#   - the HelmChart kube-system/argo-cd with the plan's values; the chart on
#     every server and the image on every K3s VM (from the payload);
#   - Secret argocd/devopslab-repo of Argo CD's declarative form with the
#     token (never in the output, the report or the journal), Application
#     argocd/root with the manifest's source, Synced and Healthy;
#   - the UI at the edge: IngressRoute argocd/devopslab-argocd and the
#     allow-list and rate limit in its namespace; the verification asks for
#     it through the edge stand-in and Argo CD's status (row gitops);
#   - the report: the console and where Argo CD's admin password lives;
#   - a converged re-run writes nothing to the Kubernetes API;
#   - a wrong token: the step fails with Argo CD's "authentication
#     required"; a revision the repository lacks: "unable to resolve";
#   - the Application changed by hand is set back;
#   - the UI's host dropped: its route and middlewares go.
# Under ASan (LABEL=asan) it stops after the converged re-run: the rest is
# the same C code with other inputs.
# timeout: 420
. "$TOP/tests/lib.sh"
. "$TOP/tests/sim/cluster-lib.sh"
. "$TOP/tests/sim/guests-lib.sh"
. "$TOP/tests/sim/k3s-lib.sh"
. "$TOP/tests/sim/dns-lib.sh"

command -v qemu-img >/dev/null || fail "qemu-img is missing (scripts/install-deps.sh installs it)"

dns_edge_init
REPO=https://git.home.arpa/lab/cluster-config.git
SHA=4b825dc642cb6eb9a060e54bf8d69288fbee4904
TOKEN='git t0ken s3cret'
printf '%s\n' "$TOKEN" >"$TESTTMP/git.token"
printf 'not the token\n' >"$TESTTMP/git.wrong"
mkdir -p "$A/charts" "$A/images"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$TOP/tests/data/gitops" \
	-czf "$A/charts/argo-cd-7.7.0.tgz" argo-cd
printf 'argocd image stand-in\n' >"$A/images/argocd-v2.13.0.tar"
"$PY" - "$TESTTMP/cluster.yaml" "$REPO" <<'PYEOF'
import sys
p, repo = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("  - {name: kube-vip, file: k3s/kube-vip.tar}",
              "  - {name: kube-vip, file: k3s/kube-vip.tar}\n"
              "  - {name: argocd-chart, file: charts/argo-cd-7.7.0.tgz}\n"
              "  - {name: argocd-image, file: images/argocd-v2.13.0.tar}")
s = s.replace("dash_pw]", "dash_pw, git_token]")
s += """gitops:
  repo: %s
  revision: main
  path: clusters/lab
  credentials: {username: devopslab, password: {secret: git_token}}
  chart: argocd-chart
  images: [argocd-image]
  host: argocd.home.arpa
""" % repo
open(p, "w").write(s)
PYEOF
"$DEVOPSLAB" validate "$TESTTMP/cluster.yaml" >"$TESTTMP/validate.out" 2>&1 ||
	{ cat "$TESTTMP/validate.out" >&2; fail "the test manifest does not validate"; }
# The Git server the simulated Argo CD reaches: one repository, its token.
"$PY" - "$TESTTMP/git-repos.json" "$REPO" "$SHA" "$TOKEN" <<'PYEOF'
import json, sys
p, repo, sha, token = sys.argv[1:]
json.dump({repo: {"auth": {"username": "devopslab", "password": token},
                  "refs": {"main": sha, "HEAD": sha}, "paths": ["clusters/lab", "."]}}, open(p, "w"))
PYEOF

lab_start --git-repos "$TESTTMP/git-repos.json" --argocd-ms 300
gitops_args() { lab_args "${1:-60}" --gitops-credential-file "${CRED:-$TESTTMP/git.token}"; }
gitops_args
no_secret_out() { lab_secret_absent "$TOKEN" "the token"; }

# ---- first run: Argo CD installed and synced; nothing serves the edge yet --------------

lab_form
for t in "Installing the K3s charts" "Routing the web consoles through the edge" "Handing the cluster to Argo CD"; do
	grep -q "$t: done" <<<"$OUT" || { echo "$OUT" >&2; fail "step '$t' not done"; }
done
grep -q "Argo CD follows $REPO at main (commit $SHA)" <<<"$OUT" || { echo "$OUT" >&2; fail "no sync reported"; }
grep -q "^gitops .*Application argocd/root .*yes .*Synced to ${SHA:0:12}, Healthy" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "no passing gitops row"; }
no_secret_out
k3s_kubeconfig_pems

kget /apis/helm.cattle.io/v1/namespaces/kube-system/helmcharts/argo-cd >"$TESTTMP/hc.json" || fail "no HelmChart argo-cd"
kget /apis/apiextensions.k8s.io/v1/customresourcedefinitions/applications.argoproj.io >/dev/null ||
	fail "the chart's CRDs were not installed"
kget /api/v1/namespaces/argocd/secrets/devopslab-repo >"$TESTTMP/repo.json" || fail "no repository Secret"
kget /apis/argoproj.io/v1alpha1/namespaces/argocd/applications/root >"$TESTTMP/app.json" || fail "no Application root"
kget /apis/traefik.io/v1alpha1/namespaces/argocd/ingressroutes/devopslab-argocd >"$TESTTMP/route.json" ||
	fail "no IngressRoute for Argo CD"
kget /apis/traefik.io/v1alpha1/namespaces/argocd/middlewares/devopslab-allow >"$TESTTMP/allow.json" ||
	fail "no allow-list in namespace argocd"
kget /apis/traefik.io/v1alpha1/namespaces/argocd/middlewares/devopslab-ratelimit >"$TESTTMP/rl.json" ||
	fail "no rate limit in namespace argocd"
"$PY" - "$TESTTMP" "$REPO" "$SHA" "$TOKEN" <<'PYEOF' || fail "Argo CD's objects"
import base64, json, sys, yaml
d, repo, sha, token = sys.argv[1:]
def j(n): return json.load(open("%s/%s.json" % (d, n)))
hc = j("hc")["spec"]
assert hc["chart"].endswith("/static/charts/argo-cd.tgz") and hc["targetNamespace"] == "argocd", hc
v = yaml.safe_load(hc["valuesContent"])
assert v["crds"] == {"install": True, "keep": True}, v
assert v["global"]["domain"] == "argocd.home.arpa" and v["configs"]["params"]["server.insecure"] is True, v
assert v["dex"]["enabled"] is False and v["notifications"]["enabled"] is False, v
s = j("repo")
assert s["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository", s["metadata"]
data = {k: base64.b64decode(x).decode() for k, x in s["data"].items()}
assert data == {"type": "git", "url": repo, "username": "devopslab", "password": token}, sorted(data)
a = j("app")
sp = a["spec"]
assert sp["project"] == "default", sp
assert sp["source"] == {"repoURL": repo, "targetRevision": "main", "path": "clusters/lab"}, sp["source"]
assert sp["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "default"}, sp
assert sp["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}, sp
st = a["status"]
assert st["sync"]["status"] == "Synced" and st["sync"]["revision"] == sha, st
assert st["health"]["status"] == "Healthy", st
r = j("route")["spec"]
assert r["entryPoints"] == ["websecure"] and r["routes"][0]["match"] == "Host(`argocd.home.arpa`)", r
assert r["routes"][0]["services"] == [{"name": "argocd-server", "port": 80}], r
assert [m["name"] for m in r["routes"][0]["middlewares"]] == ["devopslab-allow", "devopslab-ratelimit"], r
assert j("allow")["spec"]["ipAllowList"]["sourceRange"] == ["10.0.0.0/24", "192.168.50.0/24"]
assert j("rl")["spec"]["rateLimit"] == {"average": 50, "burst": 100}
PYEOF
# the payload: the chart on every server, the image on every K3s VM
k3s_guest_files "$TESTTMP/guestfs"
for v in k3s-server-01 k3s-server-02 k3s-server-03; do
	cmp -s "$A/charts/argo-cd-7.7.0.tgz" "$TESTTMP/guestfs/$v/var/lib/rancher/k3s/server/static/charts/argo-cd.tgz" ||
		fail "Argo CD's chart is not on $v"
done
for v in k3s-server-01 k3s-worker-01; do
	cmp -s "$A/images/argocd-v2.13.0.tar" "$TESTTMP/guestfs/$v/var/lib/rancher/k3s/agent/images/argocd-v2.13.0.tar" ||
		fail "Argo CD's image is not on $v"
done

# ---- the edge serves the provisioner's certificate: everything answers ----------------

lab_edge_serve argocd.home.arpa=200
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run with the edge served exited $RC"; }
grep -q "^edge .*https://argocd.home.arpa/ .*yes .*HTTP 200, certificate by the cluster CA" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "Argo CD's UI not verified through the edge"; }
"$PY" - "$TESTTMP/report/report.json" "$TOP/docs/report.schema.json" <<'PYEOF' || fail "the report"
import json, sys, jsonschema
r = json.load(open(sys.argv[1]))
jsonschema.validate(r, json.load(open(sys.argv[2])))
assert r["outcome"] == "complete", r["outcome"]
assert "https://argocd.home.arpa/" in {c["url"] for c in r["consoles"]}, r["consoles"]
c = [c for c in r["credentials"] if c["kubernetes_secret"]]
assert c == [{"what": "Argo CD (its initial admin password)", "user": "admin", "secret": None, "file": None,
              "kubernetes_secret": "argocd/argocd-initial-admin-secret", "key": "password"}], c
assert {"gitops"} <= {x["check"] for x in r["verification"]}, r["verification"]
PYEOF
no_secret_out

# Converged: a re-run writes nothing.
w0=$(k8s_mutations)
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the converged re-run exited $RC"; }
[ "$(k8s_mutations)" = "$w0" ] || fail "the converged re-run wrote to the Kubernetes API ($w0 -> $(k8s_mutations))"
[ "${LABEL:-}" = asan ] && exit 0

# ---- a wrong token: Argo CD's own words ---------------------------------------------

CRED=$TESTTMP/git.wrong gitops_args 6
lab_run1 --verify-timeout 2
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "a wrong token passed"; }
grep -q "error: cluster/gitops/root: Argo CD has not synced Application argocd/root after 6 s: .*authentication required" \
	<<<"$OUT" || { echo "$OUT" >&2; fail "the wrong token is not reported in Argo CD's words"; }
grep -q "the repository Secret differs from ours: setting it back" <<<"$OUT" || { echo "$OUT" >&2; fail "no update"; }
grep -qF "not the token" "$TESTTMP"/fb-*.out && fail "the wrong token in the output"

# Right again, and the Application changed by hand: both set back.
gitops_args
curl -sS --fail --cacert "$TESTTMP/kc-ca.pem" --cert "$TESTTMP/kc-cert.pem" --key "$TESTTMP/kc-key.pem" \
	-X PATCH -H "Content-Type: application/merge-patch+json" --data '{"spec":{"source":{"path":"."}}}' \
	"$K8S_URL/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/root" >/dev/null ||
	fail "changing the Application by hand"
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run after the wrong token exited $RC"; }
grep -q "the root Application differs from ours: setting it back" <<<"$OUT" || { echo "$OUT" >&2; fail "not set back"; }
kget /apis/argoproj.io/v1alpha1/namespaces/argocd/applications/root >"$TESTTMP/app.json" ||
	fail "no Application root"
"$PY" -c 'import json, sys; assert json.load(open(sys.argv[1]))["spec"]["source"]["path"] == "clusters/lab"' \
	"$TESTTMP/app.json" || fail "the Application's path was not set back"

# ---- a revision the repository lacks ---------------------------------------------------

sed -i 's/^  revision: main$/  revision: release-9/' "$TESTTMP/cluster.yaml"
gitops_args 6
lab_run1 --verify-timeout 2
[ "$RC" != 0 ] || { echo "$OUT" >&2; fail "an unknown revision passed"; }
grep -q "error: cluster/gitops/root: .*unable to resolve 'release-9' to a commit SHA" <<<"$OUT" ||
	{ echo "$OUT" >&2; fail "the unknown revision is not reported in Argo CD's words"; }

# ---- the UI's host dropped: its route and middlewares go ----------------------------------

sed -i -e 's/^  revision: release-9$/  revision: main/' -e '/^  host: argocd.home.arpa$/d' "$TESTTMP/cluster.yaml"
gitops_args
lab_run1 --verify-timeout 10
[ "$RC" = 0 ] || { echo "$OUT" >&2; fail "the run without gitops.host exited $RC"; }
for o in ingressroutes/devopslab-argocd middlewares/devopslab-allow middlewares/devopslab-ratelimit; do
	kget "/apis/traefik.io/v1alpha1/namespaces/argocd/$o" >/dev/null 2>&1 && fail "$o is still there"
done
grep -q "https://argocd.home.arpa/" <<<"$OUT" && { echo "$OUT" >&2; fail "the dropped UI was verified"; }
no_secret_out
exit 0
