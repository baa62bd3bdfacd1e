#!/bin/bash
# scripts/demo.sh — what `make demo` runs: the example cluster, end to end as
# far as this build goes: validate the manifest, make a signed bundle with
# encrypted secrets, verify it, and print the plan every node will execute.
# Work files go to out/demo/ (placeholder assets: not a real rootfs or cloud
# image; keys generated there on first run).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bin=$top/provisioner/devopslab
manifest=examples/homelab.yaml
out=out/demo
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "1. Validate the manifest ($manifest)"
"$bin" validate "$manifest"

say "2. Make the inputs of a bundle (placeholder assets, secrets, keys) in $out"
scripts/example-inputs.sh "$manifest" "$out"
ls -l "$out" "$out/assets"

say "3. Create the signed bundle (secrets sealed with AES-256-GCM)"
rm -f "$out/homelab.bundle"
"$bin" bundle create --manifest "$manifest" --assets "$out/assets" --key "$out/signing.key" \
	--secrets "$out/secrets.env" --secret-key "$out/secret.key" -o "$out/homelab.bundle"

say "4. Verify it with the public key (mbedtls), as the image does"
"$bin" bundle verify --pubkey "$out/signing.pub" "$out/homelab.bundle"

say "5. The plan: the ordered steps install and firstboot will execute"
"$bin" plan --bundle "$out/homelab.bundle" --pubkey "$out/signing.pub"

say "Done. The bundle is $out/homelab.bundle; try:"
echo "  $bin plan --bundle $out/homelab.bundle --pubkey $out/signing.pub --node devops-node-02 --json"
