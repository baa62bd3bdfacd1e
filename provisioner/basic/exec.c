/* SPDX-License-Identifier: MIT */
/*
 * exec.c — fork + execvpe with captured output. A third CLOEXEC pipe
 * carries exec's errno back to the parent, so "no such program" is an error
 * of exec_run() and not an exit status the caller must guess at (the same
 * trick as systemd's and util-linux's spawn helpers).
 */
#define _GNU_SOURCE
#include "exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "util.h"

extern char **environ;

struct capture {
	char *buf;
	size_t len, cap, max;
	bool truncated;
};

static int capture_read(struct capture *c, int fd)
{
	char tmp[8192];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 1 : negative_errno();
	if (n == 0)
		return 0;
	size_t keep = (size_t)n;
	if (c->len + keep > c->max) {
		keep = c->max - c->len;
		c->truncated = true;
	}
	if (c->len + keep + 1 > c->cap) {
		size_t ncap = c->cap ? c->cap : 4096;
		while (ncap < c->len + keep + 1)
			ncap *= 2;
		char *nb = realloc(c->buf, ncap);
		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, tmp, keep);
	c->len += keep;
	c->buf[c->len] = '\0';
	return 1;
}

static void close_pair(int p[2])
{
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	p[0] = p[1] = -1;
}

static void child(char *const argv[], const struct exec_opts *o, int in, int out, int err, int errp)
{
	int e;

	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		goto fail;
	/* Everything above stderr goes, except the errno pipe (CLOEXEC). */
	for (int fd = 3; fd < 1024; fd++)
		if (fd != errp)
			close(fd);
	signal(SIGPIPE, SIG_DFL);
	if (o && o->root && (chroot(o->root) < 0 || chdir("/") < 0))
		goto fail;
	execvpe(argv[0], argv, o && o->env ? o->env : environ);
fail:
	e = errno;
	(void)!write(errp, &e, sizeof(e));
	_exit(127);
}

/* Feed stdin (small: argument-sized data) and drain both pipes. The
 * write end is closed as soon as everything is written (*in_w = -1): a
 * child that reads stdin to its end must see EOF while we still wait for
 * its output. */
static int pump(int *in_w, const struct exec_opts *o, int out_r, int err_r, struct capture *co, struct capture *ce)
{
	size_t off = 0;
	int r = 0;

	while (out_r >= 0 || err_r >= 0 || *in_w >= 0) {
		struct pollfd p[3] = { { out_r, POLLIN, 0 }, { err_r, POLLIN, 0 }, { *in_w, POLLOUT, 0 } };
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &out_r : &err_r;
			if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = capture_read(i == 0 ? co : ce, *fd);
			if (r < 0)
				return r;
			if (r == 0)
				*fd = -1; /* closed by the caller */
		}
		if (*in_w >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = o->stdin_len > off ? write(*in_w, o->stdin_data + off, o->stdin_len - off) : 0;
			if (n > 0)
				off += (size_t)n;
			if (n <= 0 || off >= o->stdin_len) {
				close(*in_w);
				*in_w = -1;
			}
		}
	}
	return 0;
}

int exec_run(char *const argv[], const struct exec_opts *opts, struct exec_result *ret)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, ep[2] = { -1, -1 };
	struct capture co = { 0 }, ce = { 0 };
	size_t max = opts && opts->max_output ? opts->max_output : EXEC_DEFAULT_MAX_OUTPUT;
	int r, status, e = 0;
	pid_t pid;

	if (!argv || !argv[0] || !ret)
		return -EINVAL;
	*ret = (struct exec_result){ 0 };
	co.max = ce.max = max;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0 ||
	    pipe2(in, O_CLOEXEC) < 0) {
		r = negative_errno();
		goto finish;
	}
	pid = fork();
	if (pid < 0) {
		r = negative_errno();
		goto finish;
	}
	if (pid == 0)
		child(argv, opts, in[0], out[1], err[1], ep[1]);

	close(in[0]), close(out[1]), close(err[1]), close(ep[1]);
	in[0] = out[1] = err[1] = ep[1] = -1;
	if (!opts || !opts->stdin_data)
		close(in[1]), in[1] = -1;
	{
		struct sigaction ign = { .sa_handler = SIG_IGN }, old;
		sigaction(SIGPIPE, &ign, &old);
		r = pump(&in[1], opts, out[0], err[0], &co, &ce);
		sigaction(SIGPIPE, &old, NULL);
	}
	if (in[1] >= 0)
		close(in[1]), in[1] = -1;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			r = negative_errno();
			goto finish;
		}
	if (r < 0)
		goto finish;
	if (read(ep[0], &e, sizeof(e)) == (ssize_t)sizeof(e) && e > 0) {
		r = -e;
		goto finish;
	}
	ret->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	ret->out = co.buf ? TAKE_PTR(co.buf) : strdup("");
	ret->err = ce.buf ? TAKE_PTR(ce.buf) : strdup("");
	ret->out_len = co.len;
	ret->err_len = ce.len;
	ret->truncated = co.truncated || ce.truncated;
	r = ret->out && ret->err ? 0 : -ENOMEM;
	if (r < 0)
		exec_result_done(ret);
finish:
	close_pair(in), close_pair(out), close_pair(err), close_pair(ep);
	free(co.buf);
	free(ce.buf);
	return r;
}

void exec_result_done(struct exec_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
	*r = (struct exec_result){ 0 };
}

void exec_format_argv(char *const argv[], char *buf, size_t size)
{
	size_t off = 0;

	if (!size)
		return;
	buf[0] = '\0';
	for (size_t i = 0; argv && argv[i] && off + 1 < size; i++) {
		bool plain = argv[i][0] && strspn(argv[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
							   "0123456789-_./=:,+@%") == strlen(argv[i]);
		int n = snprintf(buf + off, size - off, plain ? "%s%s" : "%s'%s'", i ? " " : "", argv[i]);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

const char *exec_result_brief(const struct exec_result *r, char *buf, size_t size)
{
	const char *src = r && r->err_len ? r->err : r && r->out ? r->out : "";
	const char *best = NULL, *best_end = NULL;

	if (!size)
		return "";
	for (const char *p = src; *p;) {
		const char *e = strchrnul(p, '\n'), *s = p;
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		/* lvm's chatter is not the reason it failed */
		if (e > s && strncmp(s, "WARNING:", 8) != 0)
			best = s, best_end = e;
		p = *e ? e + 1 : e;
	}
	if (!best)
		best = src, best_end = strchrnul(src, '\n');
	snprintf(buf, size, "%.*s", (int)(best_end - best), best);
	return buf;
}
