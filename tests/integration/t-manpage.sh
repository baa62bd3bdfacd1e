#!/bin/bash
# docs/devopslab.1 and --help agree: every verb of the table (and its
# synopsis, as printed) has its own .SS heading in the man page, every .SS
# heading is a verb of the table, and every exit code --help names is in
# EXIT STATUS.
. "$TOP/tests/lib.sh"
"$DEVOPSLAB" --help >"$TESTTMP/help"
$PY - "$TESTTMP/help" "$TOP/docs/devopslab.1" <<'PY'
import re, sys
help_text = open(sys.argv[1]).read()
man = open(sys.argv[2]).read()
verbs = {}
lines = help_text.split("\n")
start = lines.index("Verbs:") + 1
i = start
while i < len(lines) and lines[i].startswith("  "):
    m = re.match(r"^  (\S+(?: (?!-)\S+)?)\s+(.*)$", lines[i])
    if not m:
        sys.exit("FAIL: cannot read verb line %r" % lines[i])
    name, syn = m.group(1), m.group(2)
    # "bundle create" is two words only when the second is not an option
    verbs[name] = syn
    i += 2
headings = re.findall(r'^\.SS "(.*)"$', man, re.M)
unroff = lambda s: s.replace("\\-", "-")
man_verbs = {}
for h in headings:
    h = unroff(h)
    for name in verbs:
        if h == name or h.startswith(name + " "):
            if len(name) > len(man_verbs.get(h, "")):
                man_verbs[h] = name
bad = []
for name, syn in verbs.items():
    want = (name + " " + syn).strip()
    if want not in [unroff(h) for h in headings]:
        bad.append("verb %r: no .SS \"%s\" in the man page" % (name, want))
for h in headings:
    if unroff(h) not in man_verbs:
        bad.append("man page .SS %r is not a verb of --help" % h)
codes = re.findall(r"(\d+) [a-z]", help_text.split("Exit status:")[1])
es = man.split(".SH EXIT STATUS")[1].split(".SH")[0]
for c in codes:
    if not re.search(r"^\.B %s$" % c, es, re.M):
        bad.append("exit code %s of --help is not in EXIT STATUS" % c)
if len(verbs) < 5:
    bad.append("only %d verbs read from --help" % len(verbs))
if bad:
    sys.exit("FAIL:\n  " + "\n  ".join(bad))
print("ok: %d verbs, %d exit codes agree" % (len(verbs), len(codes)))
PY
