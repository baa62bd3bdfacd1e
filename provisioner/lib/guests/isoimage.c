/* SPDX-License-Identifier: MIT */
/*
 * isoimage.c — ISO 9660 + Rock Ridge + Joliet images with libisofs. See
 * isoimage.h.
 *
 * libisofs keeps process-wide state: its message queue, its abort
 * severity, and "now". isoimage_new() sets the first two the same way
 * every time (messages from SORRY up queued, none printed; SORRY and worse
 * abort a write, so a file that cannot be read fails the image rather than
 * being written as zeros) and iso_init() is never undone (iso_finish()
 * would pull the queue from under another image). "now" is not used: every
 * timestamp is given in the write options.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libisofs.h wants <stdint.h> first, declares iso_init() and iso_finish()
 * without (void), and has its own copy of libburn's struct burn_source
 * (which we read the image from) when told libburn.h is not included. */
#define LIBISOFS_WITHOUT_LIBBURN 1
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#include <libisofs.h>
#pragma GCC diagnostic pop

#include "errbuf.h"
#include "isoimage.h"
#include "util.h"

#define BLOCK 2048 /* ISO 9660's logical block; libisofs hands out the image in them */

struct isoimage {
	IsoImage *image;
	time_t mtime;
	size_t n_files;
	bool written;
	struct errbuf err;
};

bool isoimage_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	return n >= 1 && n <= ISOIMAGE_NAME_MAX && name[0] != '.' && name[0] != '-' &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") == n;
}

bool isoimage_volid_ok(const char *volid)
{
	size_t n = volid ? strlen(volid) : 0;

	return n >= 1 && n <= ISOIMAGE_VOLID_MAX &&
	       strspn(volid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == n;
}

const char *isoimage_error(const struct isoimage *img)
{
	return img->err.msg;
}

/* libisofs's first queued message from SORRY up, but for its bare
 * ERRFILE ones (the path alone; the message after it says what happened).
 * Empties the queue. */
static bool queued_message(char text[ISO_MSGS_MESSAGE_LEN])
{
	char severity[80], discard[ISO_MSGS_MESSAGE_LEN];
	int code = 0, imgid = 0;
	bool found = false;

	while (!found && iso_obtain_msgs((char *)"SORRY", &code, &imgid, text, severity) > 0)
		found = !streq(severity, "ERRFILE");
	iso_obtain_msgs((char *)"NEVER", &code, &imgid, discard, severity);
	return found;
}

/* libisofs's code (< 0) as a message: its queued message when there is
 * one (it names the file), else the code's text. */
static int fail_iso(struct isoimage *img, int code, const char *what)
{
	char text[ISO_MSGS_MESSAGE_LEN];

	if (queued_message(text))
		errbuf_setf(&img->err, "%s: %s", what, text);
	else
		errbuf_setf(&img->err, "%s: %s", what, iso_error_to_msg(code));
	return code == (int)ISO_OUT_OF_MEM ? -ENOMEM : -EIO;
}

int isoimage_new(const char *volume_id, time_t mtime, struct isoimage **ret)
{
	_cleanup_free_ struct isoimage *img = NULL;

	if (!isoimage_volid_ok(volume_id) || mtime < 0)
		return -EINVAL;
	/* bit0: leave the process's locale alone (names are ASCII, isoimage_name_ok()) */
	if (iso_init_with_flag(1) < 0 ||
	    iso_set_msgs_severities((char *)"SORRY", (char *)"NEVER", (char *)"devopslab") <= 0 ||
	    iso_set_abort_severity((char *)"SORRY") < 0)
		return -EIO;
	img = calloc(1, sizeof(*img));
	if (!img)
		return -ENOMEM;
	if (iso_image_new(volume_id, &img->image) < 0)
		return -ENOMEM; /* cppcheck-suppress memleak ; _cleanup_ frees img (cppcheck 2.10 misses it) */
	/* a file's contents, never its ACLs or extended attributes */
	iso_image_set_ignore_aclea(img->image, 3);
	img->mtime = mtime;
	*ret = TAKE_PTR(img);
	return 0;
}

struct isoimage *isoimage_free(struct isoimage *img)
{
	if (!img)
		return NULL;
	if (img->image)
		iso_image_unref(img->image);
	free(img);
	return NULL;
}

static int name_check(struct isoimage *img, const char *name)
{
	if (!isoimage_name_ok(name)) {
		errbuf_setf(&img->err, "'%s': not a file name for the image", name ? name : "");
		return -EINVAL;
	}
	if (img->n_files >= ISOIMAGE_FILES_MAX) {
		errbuf_setf(&img->err, "more than %u files", ISOIMAGE_FILES_MAX);
		return -E2BIG;
	}
	return 0;
}

/* libisofs's reply to adding name (< 0: failed). */
static int added(struct isoimage *img, const char *name, int r)
{
	if (r == (int)ISO_NODE_NAME_NOT_UNIQUE) {
		errbuf_setf(&img->err, "'%s': twice in the image", name);
		return -EINVAL;
	}
	if (r < 0)
		return fail_iso(img, r, name);
	img->n_files++;
	return 0;
}

int isoimage_add_data(struct isoimage *img, const char *name, const void *data, size_t size)
{
	unsigned char *copy;
	IsoStream *stream = NULL;
	int r = name_check(img, name);

	if (r < 0)
		return r;
	copy = malloc(size ? size : 1);
	if (!copy)
		return -ENOMEM;
	if (size)
		memcpy(copy, data, size);
	r = iso_memory_stream_new(copy, size, &stream); /* the stream owns copy from here */
	if (r < 0) {
		free(copy);
		return fail_iso(img, r, name);
	}
	r = iso_image_add_new_file(img->image, iso_image_get_root(img->image), name, stream, NULL);
	if (r < 0)
		iso_stream_unref(stream); /* else the new file node took our reference */
	return added(img, name, r);
}

int isoimage_add_file(struct isoimage *img, const char *name, const char *path)
{
	_cleanup_free_ char *abs = NULL;
	struct stat st;
	int r = name_check(img, name);

	if (r < 0)
		return r;
	/* libisofs takes an absolute path, and would add a symbolic link as one */
	abs = realpath(path, NULL);
	if (!abs || stat(abs, &st) < 0) {
		r = negative_errno();
		errbuf_setf(&img->err, "'%s': %s", path, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		errbuf_setf(&img->err, "'%s': not a regular file", path);
		return -EINVAL;
	}
	r = iso_tree_add_new_node(img->image, iso_image_get_root(img->image), name, abs, NULL);
	return added(img, name, r);
}

DEFINE_FREE_FUNC(IsoWriteOpts, iso_write_opts_free)

/* ECMA-119 8.4.26.1's "YYYYMMDDhhmmsscc" for the volume descriptors'
 * creation and modification times, in UTC: libisofs writes them as given,
 * with no time zone to depend on. */
static int volume_time(time_t t, char buf[17])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || strftime(buf, 17, "%Y%m%d%H%M%S00", &tm) != 16)
		return -EINVAL;
	return 0;
}

/* Rock Ridge (names, POSIX modes), Joliet (names for readers without Rock
 * Ridge), level 3 (files of 4 GiB and more, in several extents); every
 * owner, mode and timestamp fixed. */
static int options(struct isoimage *img, IsoWriteOpts **ret)
{
	_cleanup_(iso_write_opts_freep) IsoWriteOpts *o = NULL;
	char vtime[17];
	int r = volume_time(img->mtime, vtime);

	if (r < 0) {
		errbuf_setf(&img->err, "time %lld is out of range", (long long)img->mtime);
		return r;
	}
	r = iso_write_opts_new(&o, 0);
	if (r < 0)
		return fail_iso(img, r, "write options");
	if (iso_write_opts_set_iso_level(o, 3) < 0 || iso_write_opts_set_rockridge(o, 1) < 0 ||
	    iso_write_opts_set_joliet(o, 1) < 0 ||
	    /* the volume id as given ("cidata" in lower case, as cloud-localds writes it) */
	    iso_write_opts_set_relaxed_vol_atts(o, 1) < 0 ||
	    iso_write_opts_set_replace_mode(o, 2, 2, 2, 2) < 0 || iso_write_opts_set_default_dir_mode(o, 0555) < 0 ||
	    iso_write_opts_set_default_file_mode(o, 0444) < 0 || iso_write_opts_set_default_uid(o, 0) < 0 ||
	    iso_write_opts_set_default_gid(o, 0) < 0 ||
	    /* every directory record's and Rock Ridge's time: mtime */
	    iso_write_opts_set_dir_rec_mtime(o, 7) < 0 || iso_write_opts_set_replace_timestamps(o, 2) < 0 ||
	    iso_write_opts_set_default_timestamp(o, img->mtime) < 0 || iso_write_opts_set_always_gmt(o, 1) < 0 ||
	    iso_write_opts_set_pvd_times(o, img->mtime, img->mtime, 0, 0, vtime) < 0) {
		errbuf_setf(&img->err, "libisofs refused a write option");
		return -EIO;
	}
	*ret = TAKE_PTR(o);
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int isoimage_write(struct isoimage *img, int fd)
{
	_cleanup_(iso_write_opts_freep) IsoWriteOpts *o = NULL;
	struct burn_source *src = NULL;
	char buf[ISO_MSGS_MESSAGE_LEN]; /* >= BLOCK: the image's blocks, libisofs's messages */
	int n, r;

	if (img->written) {
		errbuf_setf(&img->err, "the image was written already");
		return -EINVAL;
	}
	img->written = true;
	r = options(img, &o);
	if (r < 0)
		return r;
	queued_message(buf); /* drop what an earlier image left in the queue */
	r = iso_image_create_burn_source(img->image, o, &src);
	if (r < 0)
		return fail_iso(img, r, "starting the image");
	r = 0;
	/* libisofs's writer thread fills a ring buffer; we drain it a block at a time */
	while ((n = src->read_xt(src, (unsigned char *)buf, BLOCK)) > 0) {
		r = write_all(fd, (const unsigned char *)buf, (size_t)n);
		if (r < 0) {
			errbuf_setf(&img->err, "writing the image: %s", strerror(-r));
			break;
		}
	}
	/* A file that could not be read, or changed size, cancels the writer
	 * (the abort severity): the stream then simply ends, and only the ring
	 * buffer's state, 3 "failing", tells a cut image from a whole one. */
	if (r == 0 && (n < 0 || iso_ring_buffer_get_status(src, NULL, NULL) != 2))
		r = fail_iso(img, (int)ISO_BUF_READ_ERROR, "writing the image");
	/* stops the writer thread if it still runs, and waits for it */
	src->free_data(src);
	free(src);
	return r;
}

int isoimage_write_path(struct isoimage *img, const char *path)
{
	_cleanup_free_ char *tmp = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	if (asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		errbuf_setf(&img->err, "'%s': %s", tmp, strerror(-r));
		return r;
	}
	r = isoimage_write(img, fd);
	if (r >= 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0)) {
		r = negative_errno();
		errbuf_setf(&img->err, "'%s': %s", tmp, strerror(-r));
	}
	if (r >= 0 && rename(tmp, path) < 0) {
		r = negative_errno();
		errbuf_setf(&img->err, "renaming '%s' to '%s': %s", tmp, path, strerror(-r));
	}
	if (r < 0)
		(void)unlink(tmp);
	return r;
}
