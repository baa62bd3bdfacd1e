# SPDX-License-Identifier: MIT
"""envfile.py — systemd's EnvironmentFile= as the simulated guest
(pve_sim_guests.py) and the Technitium simulator read the same file."""


def env_file(text):
    """KEY=VALUE lines, # and ; comments, optional quotes around a value."""
    out = {}
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith(("#", ";")) or "=" not in ln:
            continue
        k, v = ln.split("=", 1)
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]
        out[k.strip()] = v
    return out
