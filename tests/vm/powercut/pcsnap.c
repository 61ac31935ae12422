// SPDX-License-Identifier: GPL-2.0
/*
 * pcsnap: the writer and verifier of the power-cut workload "snap"
 * (tests/vm/powercut/wl-snap.sh): snapshots created and deleted on a
 * read-write device while data writes go on, the power cut in the middle.
 *
 *   pcsnap init DIR SIZE SEED [key=value...]      (after=N: round N+1 comes next;
 *                                                   atom=BYTES: see below)
 *   pcsnap run DIR DEV ROUND PROGRESS [LIMIT]
 *   pcsnap verify DIR IMAGE ROUND PROGRESS
 *
 * DIR (on the scratch disk) holds the state: the layout, what every block
 * of the device held after the last verification ("state"), the snapshots
 * the image had then ("snaps": "id name" lines) and what every block of
 * each of them holds ("vals-NAME").
 *
 * run: writer threads write to DEV as pcwrite does (O_DIRECT; the device
 * is a row of 4 KiB blocks cut into stripes, stripe i belongs to thread
 * i % threads; each thread issues a deterministic stream of operations,
 * one at a time: writes of 1..maxlen blocks, BLKZEROOUT and BLKDISCARD;
 * fdatasync every 1..batch operations; a written block is a record naming
 * seed, round, thread, seq and block).  Meanwhile the main thread creates
 * and deletes snapshots, one after the other.  The rounds alternate: an
 * odd round trims the snapshots to `low`, creates one (timed), prints the
 * cue PC-WRITER-START to /dev/kmsg and creates back to back (when `max`
 * exist, a delete, then a create); an even round tops them up to `top` + 1,
 * deletes one (timed), prints the cue and deletes back to back (when none
 * is left, a create, then a delete).  The harness cuts the power
 * $QCOW_VM_KILL_DELAY seconds after the cue: the timed operations begin a
 * random 200 ms..$QCOW_PC_SNAP_WINDOW (0.4 s) before that, less (not under
 * 120 ms) if at the pace of the operation timed the snapshots (or the room
 * for them) would run out before the cut; so the cut lands in a create in
 * odd rounds and in a delete in even ones.  The first operation that sets a round up runs
 * the snapshot command (`$QCOW_PC_SNAP_CMD create|delete DEV NAME`,
 * default `$QCOW_CTL snapshot`); the others, and all the timed ones, call
 * the QCOW_SNAPSHOT_CREATE and QCOW_SNAPSHOT_DELETE ioctls themselves, so
 * that the log lines around each bracket the ioctl and nothing else
 * (qcowctl takes longer to start under TCG than the ioctl takes to run).
 * With LIMIT (a clean round) every thread runs LIMIT operations, a few
 * snapshot operations run meanwhile, and it returns.
 *
 * PROGRESS (on the 9p output share: a line is on the host when write()
 * returns, so it survives the cut) gets
 *   S t seq                    after fdatasync returned: ops 1..seq of t durable
 *   Z t seq                    before a zero-out or discard is issued
 *   T ms create|delete W U E   the cue; the timed operations begin W ms later,
 *                              U ms before the cut is due; the timed
 *                              operation took E ms ("T ms clean": no cue)
 *   C ms name id c0 c1 ...     a create begins (id: the one it should get);
 *                              ct: the ops thread t had completed (they
 *                              must be in the snapshot)
 *   c ms name id i0 i1 ...     it returned id; it: the ops thread t had
 *                              issued (no later one may be in the snapshot)
 *   D ms name id               a delete begins
 *   d ms name                  it returned
 * (ms: CLOCK_MONOTONIC milliseconds; after the command, whose output does
 * not say, the id of the "c" line is the expected one).
 *
 * verify: the image must list, in `qemu-img snapshot -l`, exactly the
 * snapshots (ids and names, table order) before the operation the cut
 * interrupted or exactly those after it; each snapshot that existed before
 * the round must read (`qemu-img convert -l`) exactly what it read at the
 * last verification; a snapshot created this round must hold, in each
 * block of thread t, the content after ops 1..k of t for some k in
 * [ct, it] (what was completed when the create began, up to what was issued
 * when it returned; a create the cut interrupted has no upper bound but
 * the zero-outs issued); the active image must hold every block's durable
 * content (ops up to the last fdatasync, and up to ct of every create that
 * returned: create writes everything back), or that of a later operation.
 * A cut may tear a write that was not durable: with clusters under 4 KiB a
 * block is several pieces of the host disk, and init's atom=BYTES (the
 * cluster size) makes the verification accept a block whose every
 * BYTES-sized unit holds one of the contents allowed above; contents are
 * then kept per unit from round to round (a block stays torn until it is
 * written again, in the active image and in snapshots taken meanwhile).
 * Prints "PC-NOTE round R [TAG]: ..." with TAG the operation the cut hit:
 * create, delete, or idle (between two operations).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <linux/qcow.h>
#include <pthread.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pcunits.h"

#define BLK		4096
#define WORDS		(BLK / 8)
#define STATE_MAGIC	"PCSNAP01"
#define REC_MAGIC	0x31304e5343505350ULL	/* "PSPCSN01" */
#define MAX_THREADS	16
#define MAX_SNAPS	256
#define VAL_MIXED	(UINT64_MAX - 1)	/* units of a block differ */
#define NAME_LEN	64
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum { OP_WRITE, OP_ZERO, OP_DISCARD };

struct op {
	uint64_t start;
	uint32_t len;
	uint8_t type;
};

/* DIR/state: this header, then one uint64_t value per block (see val_*). */
struct sn_hdr {
	char magic[8];
	uint64_t seed;
	uint64_t nblocks;
	uint32_t threads;
	uint32_t stripe;	/* blocks per stripe */
	uint32_t maxlen;	/* blocks per write, at most */
	uint32_t zero_pct;
	uint32_t discard_pct;
	uint32_t batch;		/* operations between fdatasync, 1..batch */
	uint32_t last_round;	/* the round the state was taken after */
	uint32_t low;		/* odd rounds trim the snapshots to this many */
	uint32_t top;		/* even rounds top them up to this many */
	uint32_t max;		/* creates stop at this many */
	uint32_t atom;		/* bytes a cut cannot tear; 0: a whole block */
};

struct snap {
	char id[24];
	char name[NAME_LEN];
};

struct snaplist {
	struct snap s[MAX_SNAPS];
	int n;
};

/* A block's value: 0 = zeros, else (round << 40 | thread << 32 | seq). */
static uint64_t val_make(uint32_t round, uint32_t t, uint32_t seq)
{
	return (uint64_t)round << 40 | (uint64_t)t << 32 | seq;
}

static void val_str(uint64_t v, char *buf, size_t n)
{
	if (!v)
		snprintf(buf, n, "zeros");
	else if (v == UINT64_MAX)
		snprintf(buf, n, "garbage");
	else if (v == VAL_MIXED)
		snprintf(buf, n, "a block torn by an earlier cut");
	else
		snprintf(buf, n, "r%" PRIu64 "/t%" PRIu64 "/s%" PRIu64,
			 v >> 40, (v >> 32) & 0xff, v & 0xffffffff);
}

/* Values kept per block: one per unit a cut cannot tear. */
static uint32_t units(const struct sn_hdr *h)
{
	return h->atom ? BLK / h->atom : 1;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pcsnap: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static uint64_t mix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ULL;
	return mix(*s);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Operation @seq (from 1) of thread @t in @round: a function of them alone. */
static void gen_op(const struct sn_hdr *h, uint32_t round, uint32_t t, uint32_t seq,
		   struct op *o)
{
	uint64_t nstripes = h->nblocks / h->stripe;
	uint64_t mine = (nstripes - t + h->threads - 1) / h->threads;
	uint64_t st = mix(h->seed ^ mix((uint64_t)round << 32 | t) ^ mix(~(uint64_t)seq));
	uint32_t p = next(&st) % 100, off, max;

	o->type = p < h->zero_pct ? OP_ZERO :
		  p < h->zero_pct + h->discard_pct ? OP_DISCARD : OP_WRITE;
	max = o->type == OP_WRITE ? h->maxlen : h->stripe;
	o->len = 1 + next(&st) % max;
	off = next(&st) % h->stripe;
	o->start = ((next(&st) % mine) * h->threads + t) * h->stripe + off;
	if (off + o->len > h->stripe)
		o->len = h->stripe - off;
}

static void fill(uint64_t *w, const struct sn_hdr *h, uint32_t round,
		 uint32_t t, uint32_t seq, uint64_t blk)
{
	uint64_t x;
	int i;

	w[0] = REC_MAGIC;
	w[1] = h->seed;
	w[2] = (uint64_t)round << 32 | t;
	w[3] = seq;
	w[4] = blk;
	x = mix(h->seed ^ mix(w[2] ^ mix(seq ^ mix(blk))));
	for (i = 5; i < WORDS; i++)
		w[i] = next(&x);
}

/* What a block read back holds: 0, a record's value, or UINT64_MAX. */
static uint64_t classify(const uint64_t *w, const struct sn_hdr *h,
			 uint64_t blk, uint64_t *where)
{
	static uint64_t exp[WORDS];
	uint32_t round, t, seq;
	int i;

	*where = blk;
	for (i = 0; i < WORDS && !w[i]; i++)
		;
	if (i == WORDS)
		return 0;
	if (w[0] != REC_MAGIC || w[1] != h->seed)
		return UINT64_MAX;
	round = w[2] >> 32;
	t = (uint32_t)w[2];
	seq = (uint32_t)w[3];
	if (w[3] >> 32 || round >= 1U << 24 || t >= h->threads || !seq ||
	    w[4] >= h->nblocks)
		return UINT64_MAX;
	fill(exp, h, round, t, seq, w[4]);
	if (memcmp(exp, w, BLK))
		return UINT64_MAX;
	*where = w[4];
	return val_make(round, t, seq);
}

/* --- state -------------------------------------------------------------- */

static char *path_of(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s/%s", dir, name) < 0)
		die("out of memory");
	return p;
}

static void fsync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);

	if (dfd < 0 || fsync(dfd))
		die("fsync %s: %s", dir, strerror(errno));
	close(dfd);
}

/* Write DIR/NAME so that a power cut leaves the old or the new content. */
static void save_file(const char *dir, const char *name, const void *a, size_t alen,
		      const void *b, size_t blen)
{
	char *path = path_of(dir, name), *tmp;
	FILE *f;

	if (asprintf(&tmp, "%s.tmp", path) < 0)
		die("out of memory");
	f = fopen(tmp, "wb");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	if ((alen && fwrite(a, alen, 1, f) != 1) || (blen && fwrite(b, blen, 1, f) != 1) ||
	    fflush(f) || fsync(fileno(f)) || fclose(f))
		die("%s: write: %s", tmp, strerror(errno));
	if (rename(tmp, path))
		die("rename %s: %s", path, strerror(errno));
	free(tmp);
	free(path);
}

static void *load_file(const char *dir, const char *name, size_t *len)
{
	char *path = path_of(dir, name);
	struct stat st;
	void *buf;
	FILE *f = fopen(path, "rb");

	if (!f || fstat(fileno(f), &st))
		die("%s: %s", path, strerror(errno));
	buf = malloc(st.st_size + 1);
	if (!buf)
		die("out of memory");
	if (st.st_size && fread(buf, st.st_size, 1, f) != 1)
		die("%s: read error", path);
	((char *)buf)[st.st_size] = 0;
	fclose(f);
	free(path);
	*len = st.st_size;
	return buf;
}

static uint64_t *load_state(const char *dir, struct sn_hdr *h)
{
	size_t len;
	char *buf = load_file(dir, "state", &len);
	uint64_t *base;

	if (len < sizeof(*h) || memcmp(buf, STATE_MAGIC, 8))
		die("%s/state: not a pcsnap state file", dir);
	memcpy(h, buf, sizeof(*h));
	if (h->atom && (h->atom < 512 || h->atom >= BLK || (h->atom & (h->atom - 1))))
		die("%s/state: bad atom %u", dir, h->atom);
	if (len != sizeof(*h) + h->nblocks * units(h) * 8)
		die("%s/state: truncated", dir);
	base = malloc(h->nblocks * units(h) * 8);
	if (!base)
		die("out of memory");
	memcpy(base, buf + sizeof(*h), h->nblocks * units(h) * 8);
	free(buf);
	return base;
}

static void load_snaps(const char *dir, struct snaplist *l)
{
	size_t len;
	char *buf = load_file(dir, "snaps", &len), *line, *save = NULL;

	l->n = 0;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (l->n == MAX_SNAPS)
			die("%s/snaps: too many snapshots", dir);
		if (sscanf(line, "%23s %63s", l->s[l->n].id, l->s[l->n].name) != 2)
			die("%s/snaps: bad line '%s'", dir, line);
		l->n++;
	}
	free(buf);
}

static void save_snaps(const char *dir, const struct snaplist *l)
{
	char *buf = malloc((size_t)MAX_SNAPS * 96 + 1);
	size_t n = 0;
	int i;

	if (!buf)
		die("out of memory");
	buf[0] = 0;
	for (i = 0; i < l->n; i++)
		n += sprintf(buf + n, "%s %s\n", l->s[i].id, l->s[i].name);
	save_file(dir, "snaps", buf, n, NULL, 0);
	free(buf);
}

static int snap_find(const struct snaplist *l, const char *name)
{
	int i;

	for (i = 0; i < l->n; i++)
		if (!strcmp(l->s[i].name, name))
			return i;
	return -1;
}

/* The id a new snapshot gets: one more than the largest (QEMU's rule). */
static void snap_next_id(const struct snaplist *l, char *id, size_t n)
{
	unsigned long long max = 0, v;
	int i;

	for (i = 0; i < l->n; i++) {
		v = strtoull(l->s[i].id, NULL, 10);
		if (v > max)
			max = v;
	}
	snprintf(id, n, "%llu", max + 1);
}

static void snap_add(struct snaplist *l, const char *id, const char *name)
{
	if (l->n == MAX_SNAPS)
		die("too many snapshots");
	snprintf(l->s[l->n].id, sizeof(l->s[0].id), "%s", id);
	snprintf(l->s[l->n].name, sizeof(l->s[0].name), "%s", name);
	l->n++;
}

static void snap_del(struct snaplist *l, int i)
{
	memmove(&l->s[i], &l->s[i + 1], (l->n - i - 1) * sizeof(l->s[0]));
	l->n--;
}

static bool snaps_equal(const struct snaplist *a, const struct snaplist *b)
{
	int i;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->s[i].id, b->s[i].id) || strcmp(a->s[i].name, b->s[i].name))
			return false;
	return true;
}

static void snaps_str(const struct snaplist *l, char *buf, size_t n)
{
	size_t used = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < l->n && used < n; i++)
		used += snprintf(buf + used, n - used, "%s%s:%s", i ? " " : "",
				 l->s[i].id, l->s[i].name);
	if (!l->n)
		snprintf(buf, n, "(none)");
}

static uint32_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > UINT32_MAX)
		die("bad %s '%s'", what, s);
	return v;
}

static int cmd_init(int argc, char **argv)
{
	struct sn_hdr h = { .magic = STATE_MAGIC, .threads = 2, .stripe = 32,
			    .maxlen = 16, .zero_pct = 4, .discard_pct = 4, .batch = 4,
			    .low = 1, .top = 8, .max = 8 };
	static const struct { const char *k; size_t o; } keys[] = {
		{ "threads", offsetof(struct sn_hdr, threads) },
		{ "stripe", offsetof(struct sn_hdr, stripe) },
		{ "maxlen", offsetof(struct sn_hdr, maxlen) },
		{ "zero", offsetof(struct sn_hdr, zero_pct) },
		{ "discard", offsetof(struct sn_hdr, discard_pct) },
		{ "batch", offsetof(struct sn_hdr, batch) },
		{ "after", offsetof(struct sn_hdr, last_round) },
		{ "low", offsetof(struct sn_hdr, low) },
		{ "top", offsetof(struct sn_hdr, top) },
		{ "max", offsetof(struct sn_hdr, max) },
		{ "atom", offsetof(struct sn_hdr, atom) },
	};
	struct snaplist none = { .n = 0 };
	uint64_t *base;
	int i;

	if (argc < 3)
		die("usage: pcsnap init DIR SIZE SEED [key=value...]");
	h.nblocks = strtoull(argv[1], NULL, 0) / BLK;
	h.seed = strtoull(argv[2], NULL, 0);
	for (i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		size_t k;

		if (!eq)
			die("bad option '%s'", argv[i]);
		*eq = 0;
		for (k = 0; k < ARRAY_SIZE(keys); k++)
			if (!strcmp(keys[k].k, argv[i]))
				break;
		if (k == ARRAY_SIZE(keys))
			die("unknown option '%s'", argv[i]);
		*(uint32_t *)((char *)&h + keys[k].o) = num(eq + 1, argv[i]);
	}
	if (!h.threads || h.threads > MAX_THREADS || !h.stripe || !h.maxlen ||
	    h.maxlen > h.stripe || !h.batch || h.zero_pct + h.discard_pct > 100 ||
	    h.nblocks / h.stripe < h.threads || h.nblocks > (1ULL << 32) ||
	    h.low > h.top || h.top > h.max || !h.max || h.max >= MAX_SNAPS ||
	    (h.atom && (h.atom < 512 || h.atom > BLK || (h.atom & (h.atom - 1)))))
		die("inconsistent layout parameters");
	if (h.atom == BLK)
		h.atom = 0;
	base = calloc(h.nblocks * units(&h), sizeof(*base));
	if (!base)
		die("out of memory");
	if (mkdir(argv[0], 0755) && errno != EEXIST)
		die("mkdir %s: %s", argv[0], strerror(errno));
	save_snaps(argv[0], &none);
	save_file(argv[0], "state", &h, sizeof(h), base,
		  h.nblocks * units(&h) * sizeof(*base));
	fsync_dir(argv[0]);
	printf("pcsnap: %" PRIu64 " blocks, %u threads, stripe %u, write 1..%u blocks, "
	       "zero %u%%, discard %u%%, fdatasync every 1..%u ops; snapshots: odd rounds "
	       "trim to %u and create (up to %u), even rounds top up to %u and delete; seed %"
	       PRIu64 "\n", h.nblocks, h.threads, h.stripe, h.maxlen, h.zero_pct,
	       h.discard_pct, h.batch, h.low, h.max, h.top, h.seed);
	if (h.atom)
		printf("pcsnap: a cut may tear a block: verified in units of %u bytes\n",
		       h.atom);
	return 0;
}

/* --- run ---------------------------------------------------------------- */

static struct {
	struct sn_hdr h;
	int fd;
	int sfd;		/* the device again, for the snapshot ioctls */
	int prog;
	uint32_t round;
	uint32_t limit;		/* ops per thread; 0: until the cut */
	pthread_mutex_t lock;
	uint32_t done[MAX_THREADS];	/* ops completed (atomic) */
	uint32_t issued[MAX_THREADS];	/* ops issued (atomic) */
	const char *dev;
	char **cmd;		/* the snapshot command, before "create|delete DEV NAME" */
	int ncmd;
} W = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void kmsg(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int fd, n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fd = open("/dev/kmsg", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, buf, n) < 0)
			n = 0;
		close(fd);
	}
	fprintf(stderr, "%s\n", buf);
}

/* One progress line; returns once it is on the host. */
/* The end line of the last snapshot operation, while it waits (see snap_line()). */
static char pending[1024];
static bool defer_end;
static bool lock_held;		/* the main thread holds W.lock already */

/* Sleep until CLOCK_MONOTONIC reaches @ms. */
static void sleep_until(uint64_t ms)
{
	uint64_t now = now_ms();
	struct timespec ts;

	if (ms <= now)
		return;
	ts.tv_sec = (ms - now) / 1000;
	ts.tv_nsec = (ms - now) % 1000 * 1000000;
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static void progress_write(const char *buf, int n)
{
	if (write(W.prog, buf, n) != n) {
		kmsg("PC-WRITER-ERROR progress file: %s", strerror(errno));
		exit(1);
	}
}

/* One progress line; returns once it is on the host. */
static void progress(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	pthread_mutex_lock(&W.lock);
	progress_write(line, n);
	pthread_mutex_unlock(&W.lock);
}

/*
 * A snapshot operation's begin or end line.  With defer_end, an end line
 * waits and goes out with the next begin line in one write(): no moment
 * then has the log show no operation under way, as it would between two
 * writes, and the cut cannot land "between" two back-to-back operations.
 */
static void snap_line(bool end, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	if (!lock_held)
		pthread_mutex_lock(&W.lock);
	lock_held = false;
	n = snprintf(buf, sizeof(buf), "%s", pending);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	buf[n] = 0;
	if (end && defer_end) {
		snprintf(pending, sizeof(pending), "%s", buf);
	} else {
		progress_write(buf, n);
		pending[0] = 0;
	}
	pthread_mutex_unlock(&W.lock);
}

static void wfail(uint32_t t, uint32_t s, const struct op *o, const char *what)
{
	kmsg("PC-WRITER-ERROR round=%u thread=%u seq=%u op %u of %u blocks at block %" PRIu64
	     ": %s: %s", W.round, t, s, o->type, o->len, o->start, what, strerror(errno));
	exit(1);
}

static void *writer(void *arg)
{
	uint32_t t = (uintptr_t)arg, s = 0, left = 0;
	uint64_t *buf, rnd = mix(time(NULL) ^ (uint64_t)t << 40 ^ getpid());
	struct op o;

	if (posix_memalign((void **)&buf, BLK, (size_t)W.h.maxlen * BLK))
		die("out of memory");
	while (!W.limit || s < W.limit) {
		uint64_t range[2];
		struct iovec iov;
		uint32_t i;

		gen_op(&W.h, W.round, t, ++s, &o);
		range[0] = o.start * BLK;
		range[1] = (uint64_t)o.len * BLK;
		iov.iov_base = buf;
		iov.iov_len = (size_t)o.len * BLK;
		if (!left)
			left = 1 + next(&rnd) % W.h.batch;
		if (o.type != OP_WRITE)
			progress("Z %u %u", t, s);
		else
			for (i = 0; i < o.len; i++)
				fill(buf + (size_t)i * WORDS, &W.h, W.round, t, s, o.start + i);
		__atomic_store_n(&W.issued[t], s, __ATOMIC_SEQ_CST);
		switch (o.type) {
		case OP_WRITE:
			if (pwritev(W.fd, &iov, 1, range[0]) != (ssize_t)iov.iov_len)
				wfail(t, s, &o, "pwritev");
			break;
		case OP_ZERO:
			if (ioctl(W.fd, BLKZEROOUT, range))
				wfail(t, s, &o, "BLKZEROOUT");
			break;
		case OP_DISCARD:
			/* Advisory: a device without discard keeps the data, which is allowed. */
			if (ioctl(W.fd, BLKDISCARD, range) && errno != EOPNOTSUPP)
				wfail(t, s, &o, "BLKDISCARD");
			break;
		}
		__atomic_store_n(&W.done[t], s, __ATOMIC_SEQ_CST);
		if (!--left || s == W.limit) {
			if (fdatasync(W.fd))
				wfail(t, s, &o, "fdatasync");
			progress("S %u %u", t, s);
		}
	}
	free(buf);
	return NULL;
}

/* " n0 n1 ..." of the counters @c, into @buf. */
static void counters(uint32_t *c, char *buf, size_t n)
{
	size_t used = 0;
	uint32_t t;

	for (t = 0; t < W.h.threads; t++)
		used += snprintf(buf + used, n - used, " %u",
				 __atomic_load_n(&c[t], __ATOMIC_SEQ_CST));
}

/* Run the snapshot command (qcowctl): `CMD create|delete DEV NAME`. */
static void snap_cmd(const char *op, const char *name)
{
	char *argv[16];
	pid_t pid;
	int i, st, err;

	for (i = 0; i < W.ncmd; i++)
		argv[i] = W.cmd[i];
	argv[i++] = (char *)op;
	argv[i++] = (char *)W.dev;
	argv[i++] = (char *)name;
	argv[i] = NULL;
	err = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
	if (err) {
		kmsg("PC-WRITER-ERROR cannot run %s: %s", argv[0], strerror(err));
		exit(1);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		kmsg("PC-WRITER-ERROR round=%u: %s %s %s %s failed (status 0x%x)", W.round,
		     W.cmd[0], op, W.dev, name, st);
		exit(1);
	}
}

/* The snapshot ioctl itself, on the device: the log lines bracket it. */
static void snap_ioctl(unsigned long req, const char *name, char *id, size_t idlen)
{
	struct qcow_snapshot_cmd c;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", name);
	if (ioctl(W.sfd, req, &c)) {
		kmsg("PC-WRITER-ERROR round=%u: %s of snapshot %s on %s: %s", W.round,
		     req == QCOW_SNAPSHOT_CREATE ? "QCOW_SNAPSHOT_CREATE" : "QCOW_SNAPSHOT_DELETE",
		     name, W.dev, strerror(errno));
		exit(1);
	}
	if (id) {
		if (strnlen(c.id, sizeof(c.id)) >= idlen)
			die("snapshot %s: id '%.40s...' too long", name, c.id);
		memcpy(id, c.id, strlen(c.id) + 1);
	}
}

/* Create a snapshot, through the command (@cmd) or the ioctl; its ms. */
static uint64_t snap_create(struct snaplist *l, uint32_t *serial, bool cmd)
{
	char name[NAME_LEN], id[24], got[24], c[256];
	uint64_t t0, t1;

	snprintf(name, sizeof(name), "r%u-%u", W.round, ++*serial);
	snap_next_id(l, id, sizeof(id));
	snprintf(got, sizeof(got), "%s", id);	/* the command does not say */
	counters(W.done, c, sizeof(c));
	t0 = now_ms();
	snap_line(false, "C %" PRIu64 " %s %s%s", t0, name, id, c);
	if (cmd)
		snap_cmd("create", name);
	else
		snap_ioctl(QCOW_SNAPSHOT_CREATE, name, got, sizeof(got));
	counters(W.issued, c, sizeof(c));
	t1 = now_ms();
	snap_line(true, "c %" PRIu64 " %s %s%s", t1, name, got, c);
	snap_add(l, got, name);
	return t1 - t0;
}

/* Delete a snapshot picked from @rnd; its ms. */
static uint64_t snap_delete(struct snaplist *l, uint64_t *rnd, bool cmd)
{
	int i = next(rnd) % l->n;
	char name[NAME_LEN];
	uint64_t t0, t1;

	snprintf(name, sizeof(name), "%s", l->s[i].name);
	t0 = now_ms();
	snap_line(false, "D %" PRIu64 " %s %s", t0, name, l->s[i].id);
	if (cmd)
		snap_cmd("delete", name);
	else
		snap_ioctl(QCOW_SNAPSHOT_DELETE, name, NULL, 0);
	t1 = now_ms();
	snap_line(true, "d %" PRIu64 " %s", t1, name);
	snap_del(l, i);
	return t1 - t0;
}

static int cmd_run(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	struct snaplist l;
	uint64_t size, rnd, wait_ms, u, est, start;
	uint32_t t, serial = 0;
	const char *cmd, *ctl, *delay, *window;
	char *words;
	int odd;

	if (argc < 4)
		die("usage: pcsnap run DIR DEV ROUND PROGRESS [LIMIT]");
	free(load_state(argv[0], &W.h));
	load_snaps(argv[0], &l);
	W.dev = argv[1];
	W.round = num(argv[2], "round");
	W.limit = argc > 4 ? num(argv[4], "limit") : 0;
	if (W.h.last_round + 1 != W.round)
		die("%s holds the state after round %u, not %u", argv[0], W.h.last_round,
		    W.round - 1);
	/* The snapshot command, split on spaces. */
	cmd = getenv("QCOW_PC_SNAP_CMD");
	ctl = getenv("QCOW_CTL");
	if (!cmd || !*cmd) {
		if (asprintf(&words, "%s snapshot", ctl && *ctl ? ctl : "qcowctl") < 0)
			die("out of memory");
	} else {
		words = strdup(cmd);
	}
	W.cmd = calloc(12, sizeof(*W.cmd));
	for (char *save = NULL, *w = strtok_r(words, " ", &save); w && W.ncmd < 12;
	     w = strtok_r(NULL, " ", &save))
		W.cmd[W.ncmd++] = w;
	if (!W.ncmd || W.ncmd > 12)
		die("bad QCOW_PC_SNAP_CMD");

	W.fd = open(W.dev, O_RDWR | O_DIRECT);
	W.sfd = open(W.dev, O_RDWR);
	if (W.fd < 0 || W.sfd < 0)
		die("%s: %s", W.dev, strerror(errno));
	if (ioctl(W.fd, BLKGETSIZE64, &size))
		die("%s: BLKGETSIZE64: %s", W.dev, strerror(errno));
	if (size < W.h.nblocks * BLK)
		die("%s: %" PRIu64 " bytes, the layout needs %" PRIu64, W.dev, size,
		    W.h.nblocks * BLK);
	W.prog = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (W.prog < 0)
		die("%s: %s", argv[3], strerror(errno));
	/* Which snapshot goes: from the seed, so that -s SEED replays it. */
	rnd = mix(W.h.seed ^ 0x736e6170ULL ^ (uint64_t)W.round << 20);
	for (t = 0; t < W.h.threads; t++)
		if (pthread_create(&th[t], NULL, writer, (void *)(uintptr_t)t))
			die("pthread_create failed");

	if (W.limit) {
		/* A clean round: a few snapshot operations while the writers run. */
		kmsg("PC-WRITER-RUN round=%u", W.round);
		progress("T %" PRIu64 " clean", now_ms());
		snap_create(&l, &serial, true);
		if (l.n > 1)
			snap_delete(&l, &rnd, false);
		snap_create(&l, &serial, false);
		if (l.n > (int)W.h.top)
			snap_delete(&l, &rnd, true);
		for (t = 0; t < W.h.threads; t++)
			pthread_join(th[t], NULL);
		close(W.fd);
		close(W.sfd);
		kmsg("PC-WRITER-DONE round=%u (%d snapshots)", W.round, l.n);
		return 0;
	}
	odd = W.round % 2;
	/*
	 * Set the round up (the cut comes after the cue): the first operation
	 * through the command (qcowctl), the others through the ioctls, which
	 * are quicker (qcowctl takes a good second to start under TCG).  The
	 * last is one of the round's kind, timed: how long the next ones take.
	 */
	if (odd ? l.n > (int)W.h.low : l.n > (int)W.h.top)
		snap_delete(&l, &rnd, true);
	else
		snap_create(&l, &serial, true);
	while (odd && l.n > (int)W.h.low)
		snap_delete(&l, &rnd, false);
	while (!odd && l.n <= (int)W.h.top)
		snap_create(&l, &serial, false);
	if (odd)
		est = snap_create(&l, &serial, false);
	else
		est = snap_delete(&l, &rnd, false);
	/*
	 * The harness cuts the power $QCOW_VM_KILL_DELAY seconds after it sees
	 * the cue.  The timed operations begin a random 200 ms..window (0.4 s)
	 * before that, the writers going on meanwhile, but not so early that
	 * the snapshots (deletes) or the room for them (creates) would run out
	 * before the cut at the pace of the operation just timed: so the cut
	 * lands in a create in odd rounds and in a delete in even ones.
	 */
	delay = getenv("QCOW_VM_KILL_DELAY");
	window = getenv("QCOW_PC_SNAP_WINDOW");
	wait_ms = 0;
	u = 0;
	if (delay && *delay) {
		uint64_t w = window && *window ? strtod(window, NULL) * 1000 : 400;
		uint64_t d = strtod(delay, NULL) * 1000;
		int supply = odd ? (int)W.h.max - l.n : l.n;

		uint64_t umin;

		/* Two thirds of the pace measured, one operation to spare. */
		if (supply > 1 && (supply - 1) * est * 2 / 3 < w)
			w = (supply - 1) * est * 2 / 3;
		/*
		 * Not too close to the cut either: a loaded host can hold the
		 * vCPU or qemu's 9p server back for a tenth of a second and more.
		 */
		if (w < 120)
			w = 120;
		umin = w < 200 ? w : 200;
		u = umin + next(&rnd) % (w - umin + 1);
		wait_ms = d > u ? d - u : 0;
	}
	progress("T %" PRIu64 " %s %" PRIu64 " %" PRIu64 " %" PRIu64, now_ms(),
		 odd ? "create" : "delete", wait_ms, u, est);
	kmsg("PC-WRITER-START round=%u: %ss from %d snapshots in %" PRIu64 " ms", W.round,
	     odd ? "create" : "delete", l.n, wait_ms);
	/*
	 * The last 50 ms with the log's lock held, so that the first begin
	 * line does not wait for the writers' lines (9p writes are slow on a
	 * loaded host); snap_line() lets it go.
	 */
	start = now_ms() + wait_ms;
	sleep_until(start - 50);
	pthread_mutex_lock(&W.lock);
	lock_held = true;
	sleep_until(start);
	/* Back to back, each ioctl between its two log lines. */
	defer_end = true;
	for (;;) {
		if (odd) {
			if (l.n >= (int)W.h.max)
				snap_delete(&l, &rnd, false);
			snap_create(&l, &serial, false);
		} else {
			if (!l.n)
				snap_create(&l, &serial, false);
			snap_delete(&l, &rnd, false);
		}
	}
	return 0;
}

/* --- verify ------------------------------------------------------------- */

/* Run @argv, its stdout into @out (malloc'ed) when not NULL; exit status. */
static int run_cmd(char *const argv[], char **out)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	posix_spawn_file_actions_t fa;
	int p[2], st, err;
	pid_t pid;

	if (pipe(p))
		die("pipe: %s", strerror(errno));
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addclose(&fa, p[0]);
	err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (err)
		die("cannot run %s: %s", argv[0], strerror(err));
	close(p[1]);
	for (;;) {
		ssize_t n;

		if (len + 4096 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				die("out of memory");
		}
		n = read(p[0], buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(p[0]);
	buf[len] = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			die("waitpid: %s", strerror(errno));
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* The snapshots `qemu-img snapshot -l` lists, in table order. */
static int qemu_snaps(const char *image, struct snaplist *l)
{
	char *argv[] = { "qemu-img", "snapshot", "-l", (char *)image, NULL };
	char *out, *line, *save = NULL;
	int rc = run_cmd(argv, &out), hdr = 0;

	l->n = 0;
	if (rc) {
		printf("pcsnap: qemu-img snapshot -l failed (exit %d)\n", rc);
		free(out);
		return -1;
	}
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "Snapshot list:", 14) || !strncmp(line, "ID ", 3)) {
			hdr++;
			continue;
		}
		if (hdr < 2 || l->n == MAX_SNAPS ||
		    sscanf(line, "%23s %63s", l->s[l->n].id, l->s[l->n].name) != 2) {
			printf("pcsnap: cannot parse qemu-img snapshot -l: '%s'\n", line);
			free(out);
			return -1;
		}
		l->n++;
	}
	free(out);
	return 0;
}

/* One snapshot operation of the progress log. */
struct snapop {
	char kind;		/* 'C' create, 'D' delete */
	char name[NAME_LEN];
	char id[24];		/* create: the id QEMU's rule gives */
	char got[24];		/* create: the id it returned */
	bool ended;
	uint64_t t0, t1;
	uint32_t lo[MAX_THREADS];	/* create: ops completed when it began */
	uint32_t hi[MAX_THREADS];	/* create: ops issued when it returned */
};

struct progress {
	uint32_t synced[MAX_THREADS];
	uint32_t zissued[MAX_THREADS];
	struct snapop *ops;
	int nops;
	char phase[16];
	uint64_t phase_ms;
	int timed_from;		/* ops[timed_from] is the first after the cue */
};

static int read_counters(char *rest, uint32_t threads, uint32_t *c)
{
	char *save = NULL, *w = strtok_r(rest, " ", &save);
	uint32_t t;

	for (t = 0; t < threads; t++, w = strtok_r(NULL, " ", &save)) {
		if (!w)
			return -1;
		c[t] = strtoul(w, NULL, 10);
	}
	return 0;
}

static void read_progress(const char *path, const struct sn_hdr *h, struct progress *p)
{
	char line[1024];
	FILE *f = fopen(path, "r");
	int cap = 0;

	memset(p, 0, sizeof(*p));
	if (!f) {
		if (errno == ENOENT)
			return;	/* the cut came before anything was logged */
		die("%s: %s", path, strerror(errno));
	}
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		unsigned int tt, seq;
		unsigned long long ms;
		char name[NAME_LEN], id[24], kind = line[0];
		int off = 0, n2 = 0;
		struct snapop *o = p->nops ? &p->ops[p->nops - 1] : NULL;

		/* A line cut short by the power cut is not a claim. */
		if (!n || line[n - 1] != '\n')
			continue;
		line[n - 1] = 0;
		switch (kind) {
		case 'S':
		case 'Z':
			if (sscanf(line + 1, "%u %u", &tt, &seq) != 2 || tt >= h->threads || !seq)
				die("%s: bad line '%s'", path, line);
			if (kind == 'S' && seq > p->synced[tt])
				p->synced[tt] = seq;
			if (kind == 'Z' && seq > p->zissued[tt])
				p->zissued[tt] = seq;
			break;
		case 'T':
			if (sscanf(line + 1, "%llu %15s", &ms, p->phase) != 2)
				die("%s: bad line '%s'", path, line);
			p->phase_ms = ms;
			p->timed_from = p->nops;
			break;
		case 'C':
		case 'D':
			if (o && !o->ended)
				die("%s: '%s' while %s %s is under way", path, line,
				    o->kind == 'C' ? "create" : "delete", o->name);
			if (sscanf(line + 1, "%llu %63s %23s %n", &ms, name, id, &off) != 3)
				die("%s: bad line '%s'", path, line);
			if (p->nops == cap) {
				cap = cap ? cap * 2 : 64;
				p->ops = realloc(p->ops, cap * sizeof(*p->ops));
				if (!p->ops)
					die("out of memory");
			}
			o = &p->ops[p->nops++];
			memset(o, 0, sizeof(*o));
			o->kind = kind;
			o->t0 = ms;
			snprintf(o->name, sizeof(o->name), "%s", name);
			snprintf(o->id, sizeof(o->id), "%s", id);
			if (kind == 'C' && read_counters(line + 1 + off, h->threads, o->lo))
				die("%s: bad line '%s'", path, line);
			break;
		case 'c':
		case 'd':
			if (sscanf(line + 1, "%llu %63s %n", &ms, name, &off) != 2 || !o ||
			    o->ended || strcmp(o->name, name) || o->kind != toupper(kind))
				die("%s: '%s' does not follow its begin line", path, line);
			o->ended = true;
			o->t1 = ms;
			if (kind == 'd')
				break;
			if (sscanf(line + 1 + off, "%23s %n", o->got, &n2) != 1 ||
			    read_counters(line + 1 + off + n2, h->threads, o->hi))
				die("%s: bad line '%s'", path, line);
			break;
		default:
			die("%s: bad line '%s'", path, line);
		}
	}
	fclose(f);
}

/*
 * What a block may hold: its content after ops 1..lo of its thread, or
 * after a later op (writes up to hiw, zero-outs and discards up to hiz).
 * Contents are kept per unit (units()): a block torn by a cut holds parts
 * of different writes.
 */
struct expect {
	uint64_t *v;		/* the content after ops 1..lo, per unit */
	uint8_t *vz;		/* or zeros (a discard) */
	uint8_t *laterz;	/* a later zero-out/discard may have zeroed it */
	uint32_t lo[MAX_THREADS];
	uint32_t hiw[MAX_THREADS];	/* UINT32_MAX: no bound */
	uint32_t last[MAX_THREADS];	/* the last op that may have been issued */
};

static void expect_build(const struct sn_hdr *h, uint32_t round, const uint64_t *base,
			 const uint32_t *lo, const uint32_t *hiw, const uint32_t *hiz,
			 struct expect *e)
{
	uint32_t t, s, u = units(h), k;
	uint64_t b;
	struct op o;

	e->v = malloc(h->nblocks * u * 8);
	e->vz = calloc(h->nblocks, 1);
	e->laterz = calloc(h->nblocks, 1);
	if (!e->v || !e->vz || !e->laterz)
		die("out of memory");
	memcpy(e->v, base, h->nblocks * u * 8);
	for (t = 0; t < h->threads; t++) {
		uint32_t end = lo[t] > hiz[t] ? lo[t] : hiz[t];

		e->lo[t] = lo[t];
		e->hiw[t] = hiw[t];
		/*
		 * Unbounded: a thread syncs every batch ops at most, and a
		 * zero-out or discard is logged before it is issued.
		 */
		e->last[t] = hiw[t] != UINT32_MAX ? hiw[t] : end + h->batch + 1;
		for (s = 1; s <= end; s++) {
			gen_op(h, round, t, s, &o);
			for (b = o.start; b < o.start + o.len; b++) {
				if (s > lo[t]) {
					if (o.type != OP_WRITE && s <= hiz[t])
						e->laterz[b] = 1;
				} else if (o.type == OP_WRITE) {
					for (k = 0; k < u; k++)
						e->v[b * u + k] = val_make(round, t, s);
					e->vz[b] = 0;
				} else if (o.type == OP_ZERO) {
					for (k = 0; k < u; k++)
						e->v[b * u + k] = 0;
					e->vz[b] = 0;
				} else {
					e->vz[b] = 1;
				}
			}
		}
	}
}

static void expect_free(struct expect *e)
{
	free(e->v);
	free(e->vz);
	free(e->laterz);
}

struct tally {
	uint64_t same, later, zeros, torn, bad;
};

#define MAX_REPORT 20
#define MAX_TORN_REPORT 3

struct fill_ctx {
	const struct sn_hdr *h;
	uint64_t x;
};

static void fill_val(const void *ctx, uint64_t v, uint64_t *exp)
{
	const struct fill_ctx *c = ctx;

	fill(exp, c->h, v >> 40, (v >> 32) & 0xff, (uint32_t)v, c->x);
}

/*
 * A block that holds no single allowed content, where a cut may tear one:
 * can each unit hold one of the contents allowed in it (pc_units_ok())?  A
 * unit may hold what was expected there (@want, per unit), zeros if @zok,
 * or its part of a record of a later write of this round to the block
 * (ops after @lo up to @last of the block's owner thread; none when @last
 * is 0).  Sets @got[] to what each unit holds.
 */
static bool units_ok(const uint64_t *w, const struct sn_hdr *h, uint32_t round,
		     uint64_t x, const uint64_t *want, bool zok, uint32_t lo,
		     uint32_t last, uint64_t *got)
{
	static uint64_t exp[WORDS], *later;
	static uint32_t max;
	uint32_t t = (x / h->stripe) % h->threads, n = 0, s;
	struct fill_ctx c = { h, x };
	struct op o;

	if (last > lo && last - lo > max) {
		max = last - lo;
		free(later);
		later = malloc(max * sizeof(*later));
		if (!later)
			die("out of memory");
	}
	for (s = lo + 1; s <= last; s++) {
		gen_op(h, round, t, s, &o);
		if (o.type == OP_WRITE && x >= o.start && x < o.start + o.len)
			later[n++] = val_make(round, t, s);
	}
	return pc_units_ok(w, WORDS, units(h), want, zok, later, n, fill_val, &c,
			   exp, got);
}

/*
 * Check the raw image @raw block by block against @e (or, @e NULL, against
 * @exact, per unit); what is there goes to @seen, per unit.  A block that
 * is no whole allowed content passes if each of its units holds one of the
 * contents allowed there (units_ok()): a cut tore a write that was not
 * durable.  Return the number of bad blocks.
 */
static uint64_t check_raw(const char *what, const char *raw, const struct sn_hdr *h,
			  uint32_t round, const struct expect *e, const uint64_t *exact,
			  uint64_t *seen, struct tally *ty)
{
	uint32_t u = units(h), k;
	size_t chunk = 256, i;
	uint64_t *w, b, held[BLK / 512];
	int fd = open(raw, O_RDONLY);
	struct stat st;

	memset(ty, 0, sizeof(*ty));
	if (fd < 0 || fstat(fd, &st))
		die("%s: %s", raw, strerror(errno));
	if ((uint64_t)st.st_size < h->nblocks * BLK) {
		printf("pcsnap: BAD %s: %" PRIu64 " bytes, not %" PRIu64 "\n", what,
		       (uint64_t)st.st_size, h->nblocks * BLK);
		close(fd);
		return ++ty->bad;
	}
	w = malloc(chunk * BLK);
	if (!w)
		die("out of memory");
	for (b = 0; b < h->nblocks; b += chunk) {
		size_t nb = h->nblocks - b < chunk ? h->nblocks - b : chunk;

		if (pread(fd, w, nb * BLK, b * BLK) != (ssize_t)(nb * BLK))
			die("%s: short read at block %" PRIu64, raw, b);
		for (i = 0; i < nb; i++) {
			uint64_t x = b + i, where, v;
			const uint64_t *wu = e ? e->v + x * u : exact + x * u;
			uint64_t want = wu[0];
			uint32_t owner = (x / h->stripe) % h->threads;
			const char *why = NULL;
			char sv[64], sw[64];

			/* The one content expected, or VAL_MIXED. */
			for (k = 1; k < u; k++)
				if (wu[k] != want)
					want = VAL_MIXED;
			v = classify(w + i * WORDS, h, x, &where);
			for (k = 0; k < u; k++)
				seen[x * u + k] = v;
			if (v == UINT64_MAX) {
				why = "garbage (neither zeros nor a valid record)";
			} else if (where != x) {
				why = "a record written for another block";
			} else if (v == want) {
				ty->same++;
			} else if (!e) {
				why = "not what it held before";
			} else if (!v && (e->vz[x] || e->laterz[x])) {
				ty->zeros++;
			} else if (v && (v >> 40) == round) {
				uint32_t t = (v >> 32) & 0xff, s = (uint32_t)v;
				struct op o;

				gen_op(h, round, t, s, &o);
				if (s <= e->lo[t])
					why = "an older write of this round";
				else if (s > e->hiw[t])
					why = "a write issued after the snapshot was taken";
				else if (o.type != OP_WRITE || x < o.start || x >= o.start + o.len)
					why = "a record this round never wrote here";
				else
					ty->later++;
			} else {
				why = "lost: an older value or zeros instead of the expected one";
			}
			if (why && u > 1 &&
			    units_ok(w + i * WORDS, h, round, x, wu,
				     e && (e->vz[x] || e->laterz[x]), e ? e->lo[owner] : 0,
				     e ? e->last[owner] : 0, held)) {
				/* Torn, or left torn by an earlier cut: each unit is fine. */
				why = NULL;
				memcpy(seen + x * u, held, u * sizeof(*held));
				if (!memcmp(held, wu, u * sizeof(*held))) {
					ty->same++;
				} else if (ty->torn++ < MAX_TORN_REPORT) {
					printf("pcsnap: %s block %" PRIu64 " torn by a cut, units of "
					       "%u bytes:", what, x, h->atom);
					for (k = 0; k < u; k++) {
						val_str(held[k], sv, sizeof(sv));
						printf(" %s", sv);
					}
					printf("\n");
				}
			}
			if (!why)
				continue;
			if (ty->bad++ < MAX_REPORT) {
				val_str(want, sw, sizeof(sw));
				val_str(v, sv, sizeof(sv));
				printf("pcsnap: BAD %s block %" PRIu64 " (offset 0x%" PRIx64
				       "): holds %s%s, expected %s%s%s: %s\n", what, x, x * BLK, sv,
				       where != x ? " (record of another block)" : "", sw,
				       e && e->vz[x] ? " or zeros (discarded)" : "",
				       e && e->laterz[x] ?
				       " or zeros (a later zero-out/discard)" : "",
				       why);
			}
		}
	}
	free(w);
	close(fd);
	return ty->bad;
}

/* A raw view of the image (snap NULL) or of a snapshot, by qemu-img convert. */
struct view {
	const char *snap;
	char *path;
	char *sel;
	pid_t pid;
	int rc;
};

/* Convert all @n views, @jobs at a time (qemu-img's start dominates). */
static void convert_all(const char *image, struct view *v, int n, int jobs)
{
	int started = 0, running = 0, i, st;
	pid_t pid;

	while (started < n || running) {
		while (started < n && running < jobs) {
			struct view *x = &v[started++];
			char *argv[10];
			int k = 0, err;

			argv[k++] = "qemu-img";
			argv[k++] = "convert";
			if (x->snap) {
				if (asprintf(&x->sel, "snapshot.name=%s", x->snap) < 0)
					die("out of memory");
				argv[k++] = "-l";
				argv[k++] = x->sel;
			}
			argv[k++] = "-O";
			argv[k++] = "raw";
			argv[k++] = (char *)image;
			argv[k++] = x->path;
			argv[k] = NULL;
			unlink(x->path);
			err = posix_spawnp(&x->pid, argv[0], NULL, NULL, argv, environ);
			if (err)
				die("cannot run qemu-img: %s", strerror(err));
			running++;
		}
		pid = waitpid(-1, &st, 0);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			die("waitpid: %s", strerror(errno));
		}
		for (i = 0; i < started; i++)
			if (v[i].pid == pid) {
				v[i].pid = 0;
				v[i].rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
				running--;
				if (v[i].rc)
					printf("pcsnap: qemu-img convert%s%s failed (exit %d)\n",
					       v[i].snap ? " -l " : "", v[i].snap ? v[i].sel : "",
					       v[i].rc);
			}
	}
}

static void remove_stale_vals(const char *dir, const struct snaplist *l)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *p;

		if (strncmp(de->d_name, "vals-", 5) || snap_find(l, de->d_name + 5) >= 0)
			continue;
		p = path_of(dir, de->d_name);
		unlink(p);
		free(p);
	}
	closedir(d);
}

static int cmd_verify(int argc, char **argv)
{
	const char *tmpdir = getenv("TMPDIR"), *jobs_env = getenv("QCOW_PC_SNAP_JOBS");
	const char *dir, *image;
	struct snaplist l0, before, after, actual;
	struct progress p;
	struct sn_hdr h;
	struct expect e;
	struct tally ty;
	struct snapop *inflight = NULL;
	struct view *views;
	uint64_t *base, *active, *seen, nbad = 0, t0;
	uint32_t round, t, dur[MAX_THREADS], unbounded[MAX_THREADS];
	char sb[4096], sa[4096], note[512];
	int i, j, created = 0, deleted = 0, checked_old = 0, checked_new = 0, jobs;

	if (argc < 4)
		die("usage: pcsnap verify DIR IMAGE ROUND PROGRESS");
	dir = argv[0];
	image = argv[1];
	base = load_state(dir, &h);
	load_snaps(dir, &l0);
	round = num(argv[2], "round");
	if (h.last_round + 1 != round)
		die("%s holds the state after round %u, cannot verify round %u", dir,
		    h.last_round, round);
	read_progress(argv[3], &h, &p);
	seen = malloc(h.nblocks * units(&h) * 8);
	active = malloc(h.nblocks * units(&h) * 8);
	if (!seen || !active)
		die("out of memory");
	jobs = jobs_env && *jobs_env ? (int)num(jobs_env, "QCOW_PC_SNAP_JOBS") : 2;
	if (jobs < 1)
		jobs = 1;

	/* The snapshot list: replay the operations that returned. */
	before = l0;
	for (i = 0; i < p.nops; i++) {
		struct snapop *o = &p.ops[i];
		char id[24];

		if (o->kind == 'C') {
			snap_next_id(&before, id, sizeof(id));
			if (strcmp(id, o->id))
				die("%s: create %s expected id %s, the replay gives %s", argv[3],
				    o->name, o->id, id);
			if (o->ended && strcmp(o->got, o->id)) {
				printf("pcsnap: BAD create of %s returned id %s; QEMU gives a "
				       "new snapshot the largest id plus one, %s\n", o->name,
				       o->got, o->id);
				return 1;
			}
		} else if (snap_find(&before, o->name) < 0) {
			die("%s: delete of %s, which the replay does not have", argv[3], o->name);
		}
		if (!o->ended) {
			inflight = o;
			break;
		}
		if (o->kind == 'C') {
			snap_add(&before, o->id, o->name);
			created++;
		} else {
			snap_del(&before, snap_find(&before, o->name));
			deleted++;
		}
	}
	after = before;
	if (inflight && inflight->kind == 'C')
		snap_add(&after, inflight->id, inflight->name);
	else if (inflight)
		snap_del(&after, snap_find(&after, inflight->name));

	if (inflight)
		snprintf(note, sizeof(note), "cut during the %s of snapshot %s (%s round; %d "
			 "creates and %d deletes returned before it)",
			 inflight->kind == 'C' ? "create" : "delete",
			 inflight->name, p.phase[0] ? p.phase : "no", created, deleted);
	else if (p.phase[0] && p.nops == p.timed_from)
		snprintf(note, sizeof(note), "cut before the first operation after the cue "
			 "(%s round; %d creates and %d deletes returned)", p.phase, created,
			 deleted);
	else
		snprintf(note, sizeof(note), "cut between snapshot operations (%s round; %d "
			 "creates and %d deletes returned)", p.phase[0] ? p.phase : "no",
			 created, deleted);
	printf("PC-NOTE round %u [%s]: %s\n", round,
	       !inflight ? "idle" : inflight->kind == 'C' ? "create" : "delete", note);

	snaps_str(&before, sb, sizeof(sb));
	snaps_str(&after, sa, sizeof(sa));
	t0 = now_ms();
	if (qemu_snaps(image, &actual))
		return 1;
	if (!snaps_equal(&actual, &before) && !snaps_equal(&actual, &after)) {
		char sx[4096];

		snaps_str(&actual, sx, sizeof(sx));
		printf("pcsnap: BAD snapshot list: qemu-img snapshot -l lists %s\n", sx);
		printf("pcsnap:   expected %s\n", sb);
		if (inflight)
			printf("pcsnap:   or, with the %s of %s, %s\n",
			       inflight->kind == 'C' ? "create" : "delete", inflight->name, sa);
		return 1;
	}
	printf("pcsnap: round %u snapshot list: %s%s\n", round, sb,
	       !inflight ? "" : snaps_equal(&actual, &after) ?
	       " (the interrupted operation took effect)" :
	       " (the interrupted operation did not take effect)");
	if (inflight && snaps_equal(&actual, &after)) {
		snaps_str(&after, sa, sizeof(sa));
		printf("pcsnap: round %u snapshot list now: %s\n", round, sa);
	}

	/* Raw views of the active image and of every snapshot, all at once. */
	views = calloc(actual.n + 1, sizeof(*views));
	if (!views)
		die("out of memory");
	for (i = 0; i <= actual.n; i++) {
		views[i].snap = i ? actual.s[i - 1].name : NULL;
		if (asprintf(&views[i].path, "%s/pcsnap-view-%d.raw",
			     tmpdir && *tmpdir ? tmpdir : "/tmp", i) < 0)
			die("out of memory");
	}
	convert_all(image, views, actual.n + 1, jobs);
	for (i = 0; i <= actual.n; i++)
		if (views[i].rc)
			return 1;
	printf("pcsnap: round %u: the list and %d raw views read in %" PRIu64 " ms\n", round,
	       actual.n + 1, now_ms() - t0);

	/* The active image. */
	for (t = 0; t < h.threads; t++) {
		dur[t] = p.synced[t];
		unbounded[t] = UINT32_MAX;
		for (i = 0; i < p.nops; i++)
			if (p.ops[i].kind == 'C' && p.ops[i].ended && p.ops[i].lo[t] > dur[t])
				dur[t] = p.ops[i].lo[t];
		printf("pcsnap: round %u thread %u: ops 1..%u durable (%u synced), zero-outs/"
		       "discards issued up to %u\n", round, t, dur[t], p.synced[t], p.zissued[t]);
	}
	expect_build(&h, round, base, dur, unbounded, p.zissued, &e);
	nbad += check_raw("active", views[0].path, &h, round, &e, NULL, active, &ty);
	expect_free(&e);
	unlink(views[0].path);
	printf("pcsnap: round %u active image: %" PRIu64 " blocks as durable, %" PRIu64
	       " later writes landed, %" PRIu64 " zeros of a discard/zero-out, %" PRIu64
	       " torn, %" PRIu64 " bad\n", round, ty.same, ty.later, ty.zeros, ty.torn, ty.bad);

	/* Every snapshot. */
	for (i = 0; i < actual.n; i++) {
		const char *name = actual.s[i].name, *raw = views[i + 1].path;
		char what[NAME_LEN + 16], vn[NAME_LEN + 8];
		struct snapop *o = NULL;
		uint64_t bad;

		snprintf(what, sizeof(what), "snapshot %s", name);
		snprintf(vn, sizeof(vn), "vals-%s", name);
		for (j = 0; j < p.nops; j++)
			if (p.ops[j].kind == 'C' && !strcmp(p.ops[j].name, name))
				o = &p.ops[j];
		if (o) {
			uint32_t hiw[MAX_THREADS], hiz[MAX_THREADS];

			for (t = 0; t < h.threads; t++) {
				hiw[t] = o->ended ? o->hi[t] : UINT32_MAX;
				hiz[t] = o->ended ? o->hi[t] : p.zissued[t];
				if (hiz[t] < o->lo[t])
					hiz[t] = o->lo[t];
			}
			expect_build(&h, round, base, o->lo, hiw, hiz, &e);
			bad = check_raw(what, raw, &h, round, &e, NULL, seen, &ty);
			expect_free(&e);
			printf("pcsnap: round %u snapshot %s (new): %" PRIu64 " blocks as when the "
			       "create began, %" PRIu64 " writes in flight during it, %" PRIu64
			       " zeros of a discard/zero-out, %" PRIu64 " torn, %" PRIu64
			       " bad\n", round, name, ty.same, ty.later, ty.zeros, ty.torn,
			       ty.bad);
			if (!bad)
				save_file(dir, vn, seen, h.nblocks * units(&h) * 8, NULL, 0);
			checked_new++;
		} else {
			size_t len;
			uint64_t *vals = load_file(dir, vn, &len);

			if (len != h.nblocks * units(&h) * 8)
				die("%s/%s: truncated", dir, vn);
			bad = check_raw(what, raw, &h, round, NULL, vals, seen, &ty);
			free(vals);
			checked_old++;
		}
		unlink(raw);
		nbad += bad;
	}
	printf("pcsnap: round %u verified: the active image and %d snapshots (%d new, %d "
	       "as they were); %" PRIu64 " bad blocks\n", round, actual.n, checked_new,
	       checked_old, nbad);
	if (nbad)
		return 1;
	h.last_round = round;
	save_snaps(dir, &actual);
	save_file(dir, "state", &h, sizeof(h), active, h.nblocks * units(&h) * 8);
	fsync_dir(dir);
	remove_stale_vals(dir, &actual);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		die("usage: pcsnap init|run|verify ...");
	if (!strcmp(argv[1], "init"))
		return cmd_init(argc - 2, argv + 2);
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 2, argv + 2);
	die("unknown command '%s'", argv[1]);
	return 2;
}
