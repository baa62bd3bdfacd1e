#!/bin/sh
# tests/data/k3s/install-standin.sh — stands in for K3s's install script
# (get.k3s.io) in the real guest test, for the part the provisioner uses:
# with INSTALL_K3S_SKIP_DOWNLOAD=true it takes /usr/local/bin/k3s as it is,
# writes the systemd unit for INSTALL_K3S_EXEC (server: k3s.service, agent:
# k3s-agent.service), enables and starts it. Anything else is refused, so a
# change in how the provisioner calls it shows.
set -eu
[ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" = true ] || { echo "install: would download K3s" >&2; exit 1; }
[ -x /usr/local/bin/k3s ] || { echo "install: /usr/local/bin/k3s is missing" >&2; exit 1; }
case ${INSTALL_K3S_EXEC:-} in
server) unit=k3s ;;
agent) unit=k3s-agent ;;
*) echo "install: INSTALL_K3S_EXEC must be server or agent" >&2; exit 1 ;;
esac
[ -s /etc/rancher/k3s/config.yaml ] || { echo "install: no /etc/rancher/k3s/config.yaml" >&2; exit 1; }
cat >/etc/systemd/system/$unit.service <<UNIT
[Unit]
Description=K3s stand-in ($INSTALL_K3S_EXEC)
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart=/usr/local/bin/k3s $INSTALL_K3S_EXEC
Restart=always

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now $unit.service
