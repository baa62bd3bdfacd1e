/* SPDX-License-Identifier: MIT */
/*
 * fuzz-pve.c — what the Proxmox client parses from a server: task ids
 * (UPIDs), certificate fingerprints, and the JSON answers of
 * /cluster/status, /cluster/config/join, /cluster/resources (guests) and
 * the guest agent's network-get-interfaces and exec-status, and the
 * Kubernetes API's NodeList, HelmChartList, PodList, Job and EventList (k3s/kube.h), and a
 * Technitium DNS Server API reply (dns/technitium.h). Whatever a (hostile) server
 * sends must be refused or decoded within the limits, never crash.
 * The first byte picks the parser; the rest is its input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pve/http.h"
#include "plan/json-util.h"
#include "pve/pve.h"
#include "pve/pve-guest.h"
#include "k3s/kube.h"
#include "dns/technitium.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pve_cluster_status *cs;
	struct pve_join_info *ji;
	struct json_tokener *tok;
	struct json_object *o;
	struct pve_upid u;
	uint8_t fp[HTTP_FP_LEN];
	char *s, *e = NULL;

	if (size < 1 || size > 65536)
		return 0;
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	switch (data[0] % 8) {
	case 0:
		if (pve_upid_parse(s, &u) == 0 && (!u.node[0] || !u.type[0] || !u.user[0]))
			abort();
		break;
	case 1:
		if (http_fp_parse(s, fp) == 0) {
			char buf[HTTP_FP_TEXT_MAX];
			uint8_t again[HTTP_FP_LEN];

			http_fp_format(fp, buf, sizeof(buf));
			if (http_fp_parse(buf, again) != 0 || memcmp(fp, again, sizeof(fp)) != 0)
				abort();
		}
		if (pve_escape(s, &e) == 0)
			free(e);
		{ /* a Technitium reply: ok, error (its message cut to the buffer), or refused */
			struct json_object *reply = NULL;
			char msg[32];
			int r = tn_decode_reply(s, strlen(s), &reply, msg, sizeof(msg));

			if ((r == 0) != (reply != NULL) || strlen(msg) >= sizeof(msg))
				abort();
			json_object_put(reply);
		}
		break;
	default:
		tok = json_tokener_new_ex(32);
		if (!tok)
			break;
		o = json_tokener_parse_ex(tok, s, (int)strlen(s));
		json_tokener_free(tok);
		cs = calloc(1, sizeof(*cs));
		ji = calloc(1, sizeof(*ji));
		if (cs && ji) {
			struct pve_guest *g = NULL;
			uint32_t ips[4];
			size_t n = 0;

			switch (data[0] % 8) {
			case 2:
				if (pve_decode_cluster_status(o, cs) == 0 && cs->n_members > PVE_MAX_MEMBERS)
					abort();
				break;
			case 3:
				if (pve_decode_join_info(o, ji) == 0 && ji->n_nodes > PVE_MAX_MEMBERS)
					abort();
				break;
			case 4:
				if (pve_decode_guests(o, &g, &n) == 0) {
					for (size_t i = 0; i < n; i++)
						if (g[i].vmid < 100 || !g[i].node[0])
							abort();
					free(g);
				}
				break;
			case 6: {
				struct pve_exec_status st;

				if (pve_decode_exec_status(o, &st) == 0) {
					if (!st.out || !st.err)
						abort();
					pve_exec_status_done(&st);
				}
				break;
			}
			case 7: { /* the Kubernetes decoders, each on the same answer */
				struct kube_node *kn = NULL;
				struct kube_helm_chart *hc = NULL;
				struct kube_pod *pods = NULL;
				struct kube_job job;
				char msg[64];

				if (kube_decode_nodes(o, &kn, &n) == 0) {
					for (size_t i = 0; i < n; i++)
						if (!kn[i].name[0])
							abort();
					free(kn);
				}
				if (kube_decode_helm_charts(o, &hc, &n) == 0) {
					for (size_t i = 0; i < n; i++)
						if (!hc[i].name[0])
							abort();
					kube_helm_charts_free(hc, n);
				}
				if (kube_decode_pods(o, &pods, &n) == 0) {
					for (size_t i = 0; i < n; i++)
						if (!pods[i].name[0])
							abort();
					free(pods);
				}
				if (kube_decode_job(o, &job) == 0 && job.complete + job.failed > 2)
					abort();
				if (kube_decode_event_message(o, "ApplyManifestFailed", msg, sizeof(msg)) == 0 &&
				    strlen(msg) >= sizeof(msg))
					abort();
				break;
			}
			default:
				if (pve_decode_agent_ipv4(o, "bc:24:11:00:00:01", ips, 4, &n) == 0 && n > 4)
					abort();
				break;
			}
		}
		free(cs);
		free(ji);
		json_object_put(o);
		break;
	}
	free(s);
	return 0;
}
