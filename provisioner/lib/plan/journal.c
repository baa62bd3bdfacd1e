/* SPDX-License-Identifier: MIT */
/*
 * journal.c — append-only JSON Lines journal of finished steps.
 *
 * Crash safety: a record is one line written by one write(2) on an
 * O_APPEND descriptor and followed by fsync(2), so after a power cut the
 * file holds every acknowledged record plus at most one incomplete line at
 * the end (no newline yet). Creating the file also fsyncs the directory, as
 * a new directory entry is not durable until its directory is (fsync(2),
 * "NOTES"). Reading drops the incomplete tail; a writable open truncates it
 * before appending so the next record starts on a line of its own.
 */
#include "journal.h"

#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "json-util.h"
#include "util.h"

#define JOURNAL_ID_MAX 256
#define JOURNAL_FIELD_MAX 64

struct journal {
	int fd;
	bool writable;
	bool torn;
	uint64_t size; /* bytes of complete lines */
	struct journal_record *records;
	size_t n, allocated;
};

static char errbuf[512];

const char *journal_error(void)
{
	return errbuf;
}

static void clear_error(void)
{
	errbuf[0] = '\0';
}

/* First error wins until the next public call clears it. */
__attribute__((format(printf, 2, 3))) static int fail(int error, const char *fmt, ...)
{
	va_list ap;

	if (!errbuf[0]) {
		va_start(ap, fmt);
		vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
		va_end(ap);
	}
	return error;
}

static const char *const status_names[_JOURNAL_STATUS_MAX] = {
	[JOURNAL_STATUS_APPLIED] = "applied",
	[JOURNAL_STATUS_FOUND] = "found",
};

const char *journal_status_to_string(enum journal_status s)
{
	if ((unsigned)s >= _JOURNAL_STATUS_MAX)
		return NULL;
	return status_names[s];
}

static int status_from_string(const char *s)
{
	for (size_t i = 0; i < ELEMENTSOF(status_names); i++)
		if (streq(s, status_names[i]))
			return (int)i;
	return -EINVAL;
}

static void record_done(struct journal_record *r)
{
	free(r->id);
	free(r->phase);
	free(r->node);
	free(r->time);
	if (r->result)
		json_object_put(r->result);
	*r = (struct journal_record){};
}

static struct journal *journal_new(void)
{
	struct journal *j = calloc(1, sizeof(*j));

	if (j)
		j->fd = -1;
	return j;
}

struct journal *journal_free(struct journal *j)
{
	if (!j)
		return NULL;
	for (size_t i = 0; i < j->n; i++)
		record_done(&j->records[i]);
	free(j->records);
	if (j->fd >= 0)
		close(j->fd); /* releases the flock */
	free(j);
	return NULL;
}


static bool is_hash(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	return n == 64;
}

static bool bounded(const char *s, size_t max)
{
	return s && *s && strnlen(s, max + 1) <= max;
}

/* The same rules for records read and records appended. */
static int record_validate(const struct journal_record *r)
{
	if (!bounded(r->id, JOURNAL_ID_MAX))
		return fail(-EINVAL, "\"id\" must be a string of 1..%d bytes", JOURNAL_ID_MAX);
	if (!bounded(r->phase, JOURNAL_FIELD_MAX))
		return fail(-EINVAL, "\"phase\" must be a non-empty string");
	if (r->node && !bounded(r->node, JOURNAL_FIELD_MAX))
		return fail(-EINVAL, "\"node\" must be a string of 1..%d bytes or null", JOURNAL_FIELD_MAX);
	if (r->time && !bounded(r->time, JOURNAL_FIELD_MAX))
		return fail(-EINVAL, "\"time\" must be a non-empty string");
	if (!journal_status_to_string(r->status))
		return fail(-EINVAL, "unknown status %d", (int)r->status);
	if (!is_hash(r->hash))
		return fail(-EINVAL, "\"hash\" must be 64 lower-case hex digits");
	if (r->result && !json_object_is_type(r->result, json_type_object))
		return fail(-EINVAL, "\"result\" must be an object");
	return 0;
}

static int dup_field(const struct json_object *o, const char *key, bool required, char **ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
		if (required)
			return fail(-EBADMSG, "missing \"%s\"", key);
		*ret = NULL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(-EBADMSG, "\"%s\" must be a string", key);
	*ret = strdup(json_object_get_string(v));
	return *ret ? 0 : -ENOMEM;
}

/* Decode one parsed line into *r (which the caller frees on failure too). */
static int record_from_json(const struct json_object *o, struct journal_record *r)
{
	_cleanup_free_ char *status = NULL, *hash = NULL;
	struct json_object *v;
	uint64_t version;
	int k;

	if (!json_object_is_type(o, json_type_object))
		return fail(-EBADMSG, "a record must be a JSON object");
	if (json_get_u64(o, "v", &version) < 0 || version != JOURNAL_FORMAT_VERSION)
		return fail(-EBADMSG, "\"v\" must be %d", JOURNAL_FORMAT_VERSION);
	if ((k = dup_field(o, "id", true, &r->id)) < 0 || (k = dup_field(o, "phase", true, &r->phase)) < 0 ||
	    (k = dup_field(o, "node", false, &r->node)) < 0 || (k = dup_field(o, "time", true, &r->time)) < 0 ||
	    (k = dup_field(o, "status", true, &status)) < 0 || (k = dup_field(o, "hash", true, &hash)) < 0)
		return k;
	k = status_from_string(status);
	if (k < 0)
		return fail(-EBADMSG, "unknown status \"%s\"", status);
	r->status = (enum journal_status)k;
	if (strnlen(hash, sizeof(r->hash)) >= sizeof(r->hash))
		return fail(-EBADMSG, "\"hash\" must be 64 lower-case hex digits");
	memcpy(r->hash, hash, strlen(hash) + 1);
	k = json_get_u64(o, "elapsed_ms", &r->elapsed_ms);
	if (k == -EINVAL)
		return fail(-EBADMSG, "\"elapsed_ms\" must be a non-negative integer");
	if (json_object_object_get_ex(o, "result", &v) && !json_object_is_type(v, json_type_null))
		r->result = json_object_get(v);
	/* Unknown keys are ignored: a newer build may add fields within version 1. */
	return record_validate(r) < 0 ? -EBADMSG : 0;
}

static int records_push(struct journal *j, struct journal_record *r)
{
	if (j->n == j->allocated) {
		size_t m = j->allocated ? j->allocated * 2 : 32;
		struct journal_record *p = reallocarray(j->records, m, sizeof(*p));

		if (!p)
			return -ENOMEM;
		j->records = p;
		j->allocated = m;
	}
	j->records[j->n++] = *r;
	*r = (struct journal_record){};
	return 0;
}

static int parse_line(struct journal *j, struct json_tokener *tok, const char *line, size_t len)
{
	_cleanup_json_ struct json_object *o = NULL;
	struct journal_record r = {};
	int k;

	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, line, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success)
		return fail(-EBADMSG, "not valid JSON: %s", json_tokener_error_desc(json_tokener_get_error(tok)));
	if (json_tokener_get_parse_end(tok) != len)
		return fail(-EBADMSG, "trailing data after the record");
	k = record_from_json(o, &r);
	if (k >= 0)
		k = records_push(j, &r);
	record_done(&r);
	return k;
}

/* Parse complete lines of data into j; *ret_valid = their total length. */
static int parse_into(struct journal *j, const char *data, size_t size, size_t *ret_valid)
{
	struct json_tokener *tok;
	size_t pos = 0;
	unsigned lineno = 0;
	int r = 0;

	if (size > JOURNAL_MAX_BYTES)
		return fail(-EFBIG, "journal is larger than %u bytes", JOURNAL_MAX_BYTES);
	tok = json_tokener_new_ex(JOURNAL_MAX_DEPTH);
	if (!tok)
		return -ENOMEM;
	while (pos < size) {
		const char *nl = memchr(data + pos, '\n', size - pos);
		size_t len;

		if (!nl) { /* torn: the write of the last record did not finish */
			j->torn = true;
			break;
		}
		len = (size_t)(nl - (data + pos));
		lineno++;
		if (len + 1 > JOURNAL_MAX_RECORD) {
			r = fail(-EBADMSG, "line %u: record longer than %u bytes", lineno, JOURNAL_MAX_RECORD);
			break;
		}
		if (memchr(data + pos, '\0', len)) {
			r = fail(-EBADMSG, "line %u: NUL byte in record", lineno);
			break;
		}
		r = parse_line(j, tok, data + pos, len);
		if (r < 0) {
			char detail[sizeof(errbuf)];

			memcpy(detail, errbuf, sizeof(detail));
			errbuf[0] = '\0';
			r = fail(r, "line %u: %s", lineno, detail);
			break;
		}
		pos += len + 1;
	}
	json_tokener_free(tok);
	if (r < 0)
		return r;
	*ret_valid = pos;
	return 0;
}

int journal_parse(const char *data, size_t size, struct journal **ret, size_t *ret_valid)
{
	_cleanup_(journal_freep) struct journal *j = NULL;
	size_t valid = 0;
	int r;

	clear_error();
	j = journal_new();
	if (!j)
		return -ENOMEM;
	r = parse_into(j, data, size, &valid);
	if (r < 0)
		return r;
	j->size = valid;
	*ret = TAKE_PTR(j);
	if (ret_valid)
		*ret_valid = valid;
	return 0;
}

static int fsync_parent_dir(const char *path)
{
	_cleanup_free_ char *copy = strdup(path);
	_cleanup_close_ int dfd = -1;

	if (!copy)
		return -ENOMEM;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		return fail(negative_errno(), "cannot sync the directory of '%s': %m", path);
	return 0;
}

static int open_file(const char *path, unsigned flags, int *ret_fd)
{
	int fd;

	if (flags & JOURNAL_READ_ONLY) {
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return fail(negative_errno(), "cannot open journal '%s': %m", path);
		*ret_fd = fd;
		return 0;
	}
	for (;;) {
		fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY);
		if (fd >= 0 || errno != ENOENT || !(flags & JOURNAL_CREATE))
			break;
		fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC | O_NOCTTY | O_CREAT | O_EXCL, 0600);
		if (fd >= 0) {
			int r = fsync_parent_dir(path);

			if (r < 0) {
				close(fd);
				return r;
			}
			break;
		}
		if (errno != EEXIST) /* EEXIST: another run created it; open that */
			break;
	}
	if (fd < 0)
		return fail(negative_errno(), "cannot open journal '%s': %m", path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int r = errno == EWOULDBLOCK ? -EBUSY : negative_errno();

		close(fd);
		return fail(r, "journal '%s' is locked by another devopslab run", path);
	}
	*ret_fd = fd;
	return 0;
}

static int read_all(int fd, const char *path, char **ret, size_t *ret_size)
{
	_cleanup_free_ char *buf = NULL;
	struct stat st;
	size_t got = 0;

	if (fstat(fd, &st) < 0)
		return fail(negative_errno(), "cannot stat journal '%s': %m", path);
	if (!S_ISREG(st.st_mode))
		return fail(-EBADF, "journal '%s' is not a regular file", path);
	if ((uint64_t)st.st_size > JOURNAL_MAX_BYTES)
		return fail(-EFBIG, "journal '%s' is larger than %u bytes", path, JOURNAL_MAX_BYTES);
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fail(negative_errno(), "cannot read journal '%s': %m", path);
		if (n == 0)
			break; /* shrank under us: parse what is there */
		got += (size_t)n;
	}
	*ret = TAKE_PTR(buf);
	*ret_size = got;
	return 0;
}

int journal_open(const char *path, unsigned flags, struct journal **ret)
{
	_cleanup_(journal_freep) struct journal *j = NULL;
	_cleanup_free_ char *data = NULL;
	size_t size = 0, valid = 0;
	int r;

	clear_error();
	j = journal_new();
	if (!j)
		return -ENOMEM;
	r = open_file(path, flags, &j->fd);
	if (r < 0)
		return r;
	j->writable = !(flags & JOURNAL_READ_ONLY);
	r = read_all(j->fd, path, &data, &size);
	if (r < 0)
		return r;
	r = parse_into(j, data, size, &valid);
	if (r < 0) {
		char detail[sizeof(errbuf)];

		memcpy(detail, errbuf, sizeof(detail));
		errbuf[0] = '\0';
		return fail(r, "%s: %s", path, detail);
	}
	j->size = valid;
	if (j->torn && j->writable) {
		if (ftruncate(j->fd, (off_t)valid) < 0 || fsync(j->fd) < 0)
			return fail(negative_errno(), "cannot cut the torn last record of '%s': %m", path);
	}
	*ret = TAKE_PTR(j);
	return 0;
}

static int record_to_json(const struct journal_record *rec, const char *time, struct json_object **ret)
{
	_cleanup_json_ struct json_object *o = json_object_new_object();
	int r;

	if (!o)
		return -ENOMEM;
	if ((r = json_add_u64(o, "v", JOURNAL_FORMAT_VERSION)) < 0 || (r = json_add_string(o, "id", rec->id)) < 0 ||
	    (r = json_add_string(o, "phase", rec->phase)) < 0 || (r = json_add_string(o, "node", rec->node)) < 0 ||
	    (r = json_add_string(o, "time", time)) < 0 ||
	    (r = json_add_string(o, "status", journal_status_to_string(rec->status))) < 0 ||
	    (r = json_add_string(o, "hash", rec->hash)) < 0 || (r = json_add_u64(o, "elapsed_ms", rec->elapsed_ms)) < 0)
		return r;
	if (rec->result && (r = json_add(o, "result", json_object_get(rec->result))) < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

static int copy_record(const struct journal_record *src, const char *time, struct journal_record *dst)
{
	*dst = (struct journal_record){
		.id = strdup(src->id),
		.phase = strdup(src->phase),
		.node = src->node ? strdup(src->node) : NULL,
		.time = strdup(time),
		.status = src->status,
		.elapsed_ms = src->elapsed_ms,
		.result = src->result ? json_object_get(src->result) : NULL,
	};
	memcpy(dst->hash, src->hash, sizeof(dst->hash));
	if (!dst->id || !dst->phase || (src->node && !dst->node) || !dst->time) {
		record_done(dst);
		return -ENOMEM;
	}
	return 0;
}

/* One write() for the whole line: the kernel appends it at the end
 * (O_APPEND) and a crash leaves either nothing or a prefix of it. */
static int write_line(struct journal *j, const char *line, size_t len)
{
	ssize_t n;
	int r;

	do
		n = write(j->fd, line, len);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len) {
		if (fsync(j->fd) == 0)
			return 0;
		r = negative_errno();
	} else {
		r = n < 0 ? negative_errno() : -EIO;
		/* Best effort: cut a partial line now rather than at the next open. */
		if (n > 0 && ftruncate(j->fd, (off_t)j->size) == 0)
			(void)fsync(j->fd);
	}
	return fail(r, "cannot write journal record: %s", strerror(-r));
}

/* The power-cut harness's checkpoint (docs/plan.md, "Power cuts"): with
 * DEVOPSLAB_KILL_AFTER_RECORDS=N in the environment, the process kills
 * itself with SIGKILL, as a power cut would stop it, once the journal holds
 * N records, right after the Nth is on disk. For tests: nothing in the
 * image or the installed system sets it. */
static void checkpoint(const struct journal *j)
{
	const char *v = getenv("DEVOPSLAB_KILL_AFTER_RECORDS");
	unsigned long long n;
	char *end;

	if (!v || !*v)
		return;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (!errno && !*end && n > 0 && j->n >= n)
		raise(SIGKILL);
}

int journal_append(struct journal *j, const struct journal_record *rec)
{
	_cleanup_json_ struct json_object *o = NULL;
	_cleanup_free_ char *line = NULL;
	struct journal_record copy;
	char now[RFC3339_MAX];
	const char *s, *time = rec->time;
	size_t len;
	int r;

	clear_error();
	if (!j->writable)
		return fail(-EROFS, "journal is open read-only");
	if (!time) {
		r = fmt_rfc3339(wall_ms(), now);
		if (r < 0)
			return fail(r, "cannot read the clock");
		time = now;
	}
	r = record_validate(rec);
	if (r < 0)
		return r;
	r = record_to_json(rec, time, &o);
	if (r < 0)
		return r;
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		return -ENOMEM;
	len = strlen(s);
	if (len + 1 > JOURNAL_MAX_RECORD)
		return fail(-E2BIG, "record for '%s' is %zu bytes, more than %u", rec->id, len + 1, JOURNAL_MAX_RECORD);
	if (j->size + len + 1 > JOURNAL_MAX_BYTES)
		return fail(-EFBIG, "journal would exceed %u bytes", JOURNAL_MAX_BYTES);
	r = copy_record(rec, time, &copy); /* before writing: no ENOMEM after the fact */
	if (r < 0)
		return r;
	line = malloc(len + 1);
	if (!line) {
		record_done(&copy);
		return -ENOMEM;
	}
	memcpy(line, s, len);
	line[len] = '\n';
	r = write_line(j, line, len + 1);
	if (r < 0) {
		record_done(&copy);
		return r;
	}
	j->size += len + 1;
	r = records_push(j, &copy);
	record_done(&copy);
	if (r >= 0)
		checkpoint(j);
	return r;
}

const struct journal_record *journal_find(const struct journal *j, const char *id)
{
	for (size_t i = j->n; i > 0; i--)
		if (streq(j->records[i - 1].id, id))
			return &j->records[i - 1];
	return NULL;
}

size_t journal_n_records(const struct journal *j)
{
	return j->n;
}

const struct journal_record *journal_get(const struct journal *j, size_t i)
{
	return i < j->n ? &j->records[i] : NULL;
}

bool journal_was_torn(const struct journal *j)
{
	return j->torn;
}
