#!/bin/bash
# docs/manifest.schema.json (for editors) agrees with the C validator:
# - examples/*.yaml and tests/manifest/valid/*.yaml: both accept;
# - tests/manifest/invalid/*.yaml: the C validator rejects (exit 2); the
#   schema rejects too, except files whose first line is "# schema: accepts"
#   (errors only the C validator can see: duplicates, references, subnet
#   membership, YAML features a YAML library resolves silently), which the
#   schema must then accept, so that the mark itself is checked.
# A file that PyYAML cannot load at all (syntax error, two documents) counts
# as rejected by the schema side.
. "$TOP/tests/lib.sh"

"$PY" - "$TOP" "$DEVOPSLAB" <<'PYEOF'
import glob, json, os, subprocess, sys
import jsonschema, yaml

top, devopslab = sys.argv[1], sys.argv[2]
schema = json.load(open(os.path.join(top, "docs/manifest.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)
failures, checked = [], 0

def schema_accepts(path):
    try:
        data = yaml.safe_load(open(path))
    except yaml.YAMLError as e:
        return False, "YAML: %s" % str(e).splitlines()[0]
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        return False, "%s: %s" % ("/".join(map(str, e.path)), e.message[:200])
    return True, ""

def c_exit(path):
    return subprocess.run([devopslab, "validate", path], capture_output=True).returncode

valid = sorted(glob.glob(os.path.join(top, "examples/*.yaml")) + glob.glob(os.path.join(top, "tests/manifest/valid/*.yaml")))
invalid = sorted(glob.glob(os.path.join(top, "tests/manifest/invalid/*.yaml")))
assert len(valid) >= 3 and len(invalid) >= 30, (len(valid), len(invalid))

for path in valid:
    ok, why = schema_accepts(path)
    rc = c_exit(path)
    checked += 1
    if not ok:
        failures.append("%s: valid, but the schema rejects it (%s)" % (path, why))
    if rc != 0:
        failures.append("%s: valid, but validate exits %d" % (path, rc))

marked = 0
for path in invalid:
    with open(path) as f:
        c_only = f.readline().rstrip("\n") == "# schema: accepts"
    marked += c_only
    ok, why = schema_accepts(path)
    rc = c_exit(path)
    checked += 1
    if rc != 2:
        failures.append("%s: invalid, but validate exits %d" % (path, rc))
    if c_only and not ok:
        failures.append("%s: marked '# schema: accepts', but the schema rejects it (%s)" % (path, why))
    if not c_only and ok:
        failures.append("%s: structural error, but the schema accepts it (mark it '# schema: accepts' "
                        "if only the C validator can see it)" % path)

assert 0 < marked < len(invalid), marked
for f in failures:
    print("FAIL:", f, file=sys.stderr)
print("checked %d files (%d C-only)" % (checked, marked))
sys.exit(1 if failures else 0)
PYEOF
