/* SPDX-License-Identifier: MIT */
/*
 * cmd-disk.c — `devopslab disk list|plan|apply`. docs/disk.md.
 *
 *   disk list [--json]                 every whole disk and what is on it
 *   disk plan  SOURCE --node N [--device PATH] [--memory SIZE]
 *   disk apply SOURCE --node N [--device PATH] [--memory SIZE] [--yes]
 *              [--recovery] [--backup-dir DIR]
 *   SOURCE = --manifest M | --bundle B --pubkey P
 *
 * apply's pipeline: select the disk (or take --device), open and lock it,
 * the safety policy, print the plan, confirm, then the three stages, each
 * check() then apply() — what the step engine does with the same pairs.
 *
 * Exit status: 0 done (or nothing to do); 1 a stage failed; 2 bad usage or
 * manifest; 3 refused (no or several matching disks, in use, not wipeable,
 * no --yes); 4 bundle verification failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "disk/disk-apply.h"
#include "disk/disk-step.h"
#include "disk/disk-select.h"
#include "disk/disk.h"
#include "input.h"
#include "plan/json-util.h"
#include "disk/layout.h"
#include "log.h"
#include "manifest/manifest.h"
#include "parse.h"
#include "plan/plan.h"
#include "progress.h"
#include "plan/run.h"
#include "plan/engine.h"
#include "plan/step.h"
#include "util.h"
#include "verbs.h"
#include "step-ops.h"

/* The image's init creates this file; with cluster.unattended it stands in
 * for --yes (an operator at a shell never has it). */
#include "verbs.h" /* INSTALLER_MARKER */

struct disk_args {
	struct input_opts in;
	const char *node, *device, *backup_dir;
	uint64_t memory;
	bool json, yes, recovery;
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: devopslab disk list [--json]\n"
		   "       devopslab disk plan  (--manifest M | --bundle B --pubkey P) --node NAME [--device PATH]\n"
		   "       devopslab disk apply (--manifest M | --bundle B --pubkey P) --node NAME [--device PATH]\n"
		   "                            [--yes] [--recovery] [--backup-dir DIR]\n\n"
		   "  --node NAME       the manifest node whose disk rules and storage apply\n"
		   "  --device PATH     a block device or a disk image file, instead of the rules\n"
		   "  --memory SIZE     RAM for the swap size (default: this machine's MemTotal)\n"
		   "  --yes             do not ask; required when not on a terminal\n"
		   "  --recovery        disaster recovery: wipe whatever is on the disk\n"
		   "  --backup-dir DIR  where the old partition tables are saved before wiping\n"
		   "  --json            (list) one JSON document on stdout\n");
}

static int parse_args(int argc, char *argv[], struct disk_args *a)
{
	static const struct option options[] = {
		{ "bundle", required_argument, NULL, 'b' },  { "pubkey", required_argument, NULL, 'p' },
		{ "manifest", required_argument, NULL, 'm' }, { "node", required_argument, NULL, 'n' },
		{ "device", required_argument, NULL, 'd' },  { "memory", required_argument, NULL, 'M' },
		{ "backup-dir", required_argument, NULL, 'B' }, { "json", no_argument, NULL, 'j' },
		{ "yes", no_argument, NULL, 'y' },           { "recovery", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },          {}
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'b': a->in.bundle = optarg; break;
		case 'p': a->in.pubkey = optarg; break;
		case 'm': a->in.manifest = optarg; break;
		case 'n': a->node = optarg; break;
		case 'd': a->device = optarg; break;
		case 'B': a->backup_dir = optarg; break;
		case 'j': a->json = true; break;
		case 'y': a->yes = true; break;
		case 'r': a->recovery = true; break;
		case 'M':
			if (parse_size(optarg, &a->memory) < 0 || !a->memory) {
				log_error("--memory: '%s' is not a size like 16G", optarg);
				return EXIT_BADINPUT;
			}
			break;
		case 'h': usage(stdout); return -1;
		default: usage(stderr); return EXIT_BADINPUT;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return EXIT_BADINPUT;
	}
	return EXIT_OK;
}

/* ---- disk list ------------------------------------------------------------- */

static struct json_object *jstr(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

static struct json_object *sig_json(const struct disk_sig *s)
{
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "type", jstr(s->type));
	json_object_object_add(o, "label", jstr(s->label));
	json_object_object_add(o, "uuid", jstr(s->uuid));
	return o;
}

static struct json_object *disk_json(const struct disk *d)
{
	struct json_object *o = json_object_new_object(), *a;

	json_object_object_add(o, "name", jstr(d->name));
	json_object_object_add(o, "path", jstr(d->path));
	a = json_object_new_array();
	for (size_t i = 0; i < d->n_by_id; i++)
		json_object_array_add(a, json_object_new_string(d->by_id[i]));
	json_object_object_add(o, "by_id", a);
	json_object_object_add(o, "transport", jstr(disk_transport_name(d->transport)));
	json_object_object_add(o, "model", jstr(d->model));
	json_object_object_add(o, "serial", jstr(d->serial));
	json_object_object_add(o, "wwn", jstr(d->wwn));
	json_object_object_add(o, "size", json_object_new_uint64(d->size));
	json_object_object_add(o, "logical_sector_size", json_object_new_int((int)d->logical_sector));
	json_object_object_add(o, "physical_sector_size", json_object_new_int((int)d->physical_sector));
	json_object_object_add(o, "removable", json_object_new_boolean(d->removable));
	json_object_object_add(o, "rotational", json_object_new_boolean(d->rotational));
	json_object_object_add(o, "readonly", json_object_new_boolean(d->readonly));
	json_object_object_add(o, "backing_file", jstr(d->backing_file));
	json_object_object_add(o, "probed", json_object_new_boolean(d->probed));
	json_object_object_add(o, "pttype", jstr(d->pttype));
	json_object_object_add(o, "ptuuid", jstr(d->ptuuid));
	a = json_object_new_array();
	for (size_t i = 0; i < d->n_sigs; i++)
		json_object_array_add(a, sig_json(&d->sigs[i]));
	json_object_object_add(o, "signatures", a);
	a = json_object_new_array();
	for (size_t i = 0; i < d->n_parts; i++) {
		const struct disk_part *p = &d->parts[i];
		struct json_object *po = json_object_new_object();
		json_object_object_add(po, "number", json_object_new_int((int)p->number));
		json_object_object_add(po, "devname", jstr(p->devname));
		json_object_object_add(po, "start", json_object_new_uint64(p->start));
		json_object_object_add(po, "size", json_object_new_uint64(p->size));
		json_object_object_add(po, "type", jstr(p->type));
		json_object_object_add(po, "name", jstr(p->name));
		json_object_object_add(po, "uuid", jstr(p->uuid));
		json_object_object_add(po, "content", p->sig.type ? sig_json(&p->sig) : NULL);
		json_object_array_add(a, po);
	}
	json_object_object_add(o, "partitions", a);
	json_object_object_add(o, "boot", json_object_new_boolean(d->boot));
	json_object_object_add(o, "mounted", json_object_new_boolean(d->mounted));
	json_object_object_add(o, "swap", json_object_new_boolean(d->swap));
	json_object_object_add(o, "held", json_object_new_boolean(d->held));
	json_object_object_add(o, "in_use", jstr(d->in_use));
	return o;
}

static void print_disk(const struct disk *d)
{
	char sz[32], what[512];

	disk_format_size(d->size, sz, sizeof(sz));
	disk_describe_content(d, what, sizeof(what));
	printf("%-10s %-7s %10s %4u/%-4u %-24s %-20s %s\n", d->name, disk_transport_name(d->transport), sz,
	       d->logical_sector, d->physical_sector, d->model ? d->model : "-", d->serial ? d->serial : "-",
	       d->in_use ? d->in_use : "");
	for (size_t i = 0; i < d->n_by_id; i++)
		printf("    by-id: %s\n", d->by_id[i]);
	if (d->wwn)
		printf("    wwn: %s\n", d->wwn);
	printf("    content: %s\n", d->probed ? what : "(not readable)");
}

int verb_disk_list(int argc, char *argv[])
{
	struct disk_args a = { 0 };
	_cleanup_(disk_list_freep) struct disk_list *l = NULL;
	int r = parse_args(argc, argv, &a);

	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	r = disk_probe_all(NULL, &l);
	if (r < 0) {
		log_error("listing disks: %s", disk_errbuf());
		return EXIT_FAIL;
	}
	if (a.json) {
		_cleanup_json_ struct json_object *o = json_object_new_object();
		struct json_object *arr = json_object_new_array();
		for (size_t i = 0; i < l->n; i++)
			json_object_array_add(arr, disk_json(&l->disks[i]));
		json_object_object_add(o, "disks", arr);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
		return EXIT_OK;
	}
	printf("%-10s %-7s %10s %-9s %-24s %-20s %s\n", "NAME", "TRAN", "SIZE", "LOG/PHYS", "MODEL", "SERIAL",
	       "IN USE");
	for (size_t i = 0; i < l->n; i++)
		print_disk(&l->disks[i]);
	return EXIT_OK;
}

/* ---- plan and apply ----------------------------------------------------------- */

static void print_plan(const struct disk_target *t)
{
	const struct layout *l = &t->layout;
	char sz[32];

	disk_format_size(l->disk_bytes, sz, sizeof(sz));
	printf("disk %s: %s, %u-byte sectors, GPT disk GUID %s\n", t->path, sz, l->sector_size, t->spec.disk_uuid);
	printf("  %-2s %12s %12s %10s  %-36s  %-16s %s\n", "#", "start", "end", "size", "type", "name", "fs");
	for (size_t i = 0; i < l->n_parts; i++) {
		const struct layout_part *p = &l->parts[i];
		disk_format_size((p->end - p->start + 1) * l->sector_size, sz, sizeof(sz));
		printf("  %-2u %12" PRIu64 " %12" PRIu64 " %10s  %-36s  %-16s %s (PARTUUID %s)\n", p->number, p->start,
		       p->end, sz, p->type_guid, p->name, p->fs ? p->fs : "-", t->spec.part_uuid[i]);
	}
	printf("  VG pve on partition %u:\n", layout_lvm_part(l)->number);
	if (l->swap_kib)
		printf("    swap %12" PRIu64 " KiB  swap\n", l->swap_kib);
	printf("    root %12" PRIu64 " KiB  ext4\n", l->root_kib);
	if (l->thin)
		printf("    data %12" PRIu64 " KiB  thin pool, metadata %" PRIu64 " KiB\n", l->data_kib, l->meta_kib);
	else
		printf("    data: none (4 GiB or less left for it)\n");
	printf("    minfree %9" PRIu64 " KiB left in the VG\n", l->minfree_kib);
	printf("  current table: %s (%s)\n", part_state_name(t->part_state), t->part_why);
}

static bool confirm(const char *path)
{
	char line[16];

	if (!isatty(STDIN_FILENO))
		return false;
	fprintf(stderr, "Everything on %s will be replaced by this layout. Type 'yes' to go on: ", path);
	return fgets(line, sizeof(line), stdin) && streq(line, "yes\n");
}

int verbs_exit_for_disk(int r)
{
	switch (r) {
	case -ENODEV: case -ENOTUNIQ: case -EPERM: case -EBUSY: case -EWOULDBLOCK: case -ENOSPC: case -EEXIST:
		return EXIT_REFUSED;
	case -EINVAL:
		return EXIT_BADINPUT;
	default:
		return EXIT_FAIL;
	}
}

/* Load the manifest, find the node, then select (or take --device), open,
 * lock and check the policy — the disk-select step, done up front so the
 * plan can be shown before anything is written. */
static int prepare(struct disk_args *a, const char *verb, struct manifest **ret_m, const struct mf_node **ret_n,
		   struct disk_step_state *st)
{
	const struct mf_node *n;
	int r;

	r = input_check(&a->in, verb);
	if (r != EXIT_OK)
		return r;
	if (!a->node) {
		log_error("%s: --node NAME is required", verb);
		return EXIT_BADINPUT;
	}
	r = input_load_manifest(&a->in, ret_m);
	if (r != EXIT_OK)
		return r;
	n = manifest_find_node(*ret_m, a->node);
	if (!n) {
		log_error("no node '%s' in the manifest", a->node);
		return EXIT_BADINPUT;
	}
	*ret_n = n;
	st->device = a->device;
	st->ram_bytes = a->memory;
	st->backup_dir = a->backup_dir;
	st->recovery = a->recovery;
	r = disk_step_open(st, *ret_m, n);
	if (r < 0) {
		if (st->have_layout && !streq(verb, "disk apply"))
			print_plan(&st->target);
		verbs_log_lines("", st->err);
		return verbs_exit_for_disk(r);
	}
	if (!a->device)
		log_info("node '%s': selected %s", n->name, st->target.path);
	return EXIT_OK;
}

static const char *verdict_text(enum disk_verdict_code v)
{
	return v == DISK_OK_CONVERGE ? "finish or confirm this layout (no wipe)" :
	       v == DISK_OK_WIPE     ? "save the old tables, wipe, then write" :
				       "write onto the empty disk";
}

int verb_disk_plan(int argc, char *argv[])
{
	struct disk_args a = { 0 };
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	struct disk_step_state st;
	const struct mf_node *n = NULL;
	int r = parse_args(argc, argv, &a);

	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	disk_step_state_init(&st);
	r = prepare(&a, "disk plan", &m, &n, &st);
	if (r == EXIT_OK) {
		print_plan(&st.target);
		printf("  apply would: %s\n", verdict_text(st.verdict));
	}
	disk_step_state_done(&st);
	return r;
}

static bool is_disk_step(const struct step *s, void *userdata)
{
	(void)userdata;
	return disk_step_kind(s->kind);
}

/* The disk steps of the node's plan — the ones `install` runs — in order. */
static int disk_steps(const struct manifest *m, const char *node, struct plan **ret)
{
	_cleanup_(plan_freep) struct plan *full = NULL;
	_cleanup_(plan_freep) struct plan *sub = NULL;
	int r;

	r = plan_build(m, node, &full);
	if (r >= 0)
		r = plan_filter(full, is_disk_step, NULL, &sub);
	if (r < 0) {
		log_error("building the plan: %s", r == -ENOMEM ? strerror(-r) : plan_error());
		return r;
	}
	if (sub->n_steps != 4) {
		log_error("the plan has %zu disk steps for node '%s', expected 4", sub->n_steps, node);
		return -EPROTO;
	}
	*ret = TAKE_PTR(sub);
	return 0;
}

struct apply_progress {
	struct disk_step_state *st;
	bool changed;
};

static void on_progress(const struct step_progress *p, void *userdata)
{
	struct apply_progress *ap = userdata;
	char line[512];

	if (step_progress_format(p, line, sizeof(line)) > 0)
		fputs(line, stdout);
	if (p->event == STEP_EVENT_APPLIED) {
		ap->changed = true;
		if (ap->st->target.done[0])
			printf("    %s\n", ap->st->target.done);
	}
	fflush(stdout);
}

int verb_disk_apply(int argc, char *argv[])
{
	struct disk_args a = { 0 };
	_cleanup_(manifest_freep) struct manifest *m = NULL;
	struct disk_step_state st;
	_cleanup_(plan_freep) struct plan *steps = NULL;
	struct apply_progress ap = { .st = &st };
	struct run_ctx ctx;
	const struct mf_node *n = NULL;
	int r = parse_args(argc, argv, &a);

	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	disk_step_state_init(&st);
	run_ctx_init(&ctx);
	ctx.ops = step_ops_table;
	r = prepare(&a, "disk apply", &m, &n, &st);
	if (r != EXIT_OK)
		goto out;
	print_plan(&st.target);
	printf("  apply will: %s\n", verdict_text(st.verdict));
	fflush(stdout);
	st.confirmed = a.yes || (m->cluster.unattended && access(INSTALLER_MARKER, F_OK) == 0);
	if (st.verdict != DISK_OK_CONVERGE && !st.confirmed) {
		if (!confirm(st.target.path)) {
			log_error("refusing to write to '%s' without --yes", st.target.path);
			r = EXIT_REFUSED;
			goto out;
		}
		st.confirmed = true;
	}
	if (disk_steps(m, n->name, &steps) < 0) {
		r = EXIT_FAIL;
		goto out;
	}
	ctx.manifest = m;
	ctx.node = n->name;
	ctx.disk = &st;
	ctx.progress = on_progress;
	ctx.userdata = &ap;
	r = step_run(&ctx, steps, STEP_PHASE_ANY);
	if (r < 0) {
		verbs_log_lines("", ctx.error[0] ? ctx.error : strerror(-r));
		r = verbs_exit_for_disk(r);
		goto out;
	}
	printf("%s: %s\n", st.target.path, ap.changed ? "done" : "already matches the layout, nothing to do");
	r = EXIT_OK;
out:
	run_ctx_done(&ctx);
	disk_step_state_done(&st);
	return r;
}
