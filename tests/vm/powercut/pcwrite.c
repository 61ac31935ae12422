// SPDX-License-Identifier: GPL-2.0
/*
 * pcwrite: the fsync-heavy writer of the power-cut test and its verifier
 * (tests/vm/powercut.sh, workload "fsync").
 *
 *   pcwrite init STATE SIZE SEED [key=value...]   (after=N: round N+1 comes next)
 *   pcwrite write STATE DEV ROUND PROGRESS [LIMIT]   (DEV may be a file)
 *   pcwrite verify STATE RAW ROUND PROGRESS
 *   pcwrite ops STATE ROUND [N]       (list the operations, for debugging)
 *   pcwrite dataend FILE              (the end of FILE's last data extent:
 *                                      past it, a hole to the end of the file)
 *
 * The device is a row of 4 KiB blocks cut into stripes; stripe i belongs to
 * writer thread i % threads, so every block has one owner.  Each thread
 * issues a deterministic stream of operations (seed, round, thread): a write
 * of 1..maxlen blocks (some of them with RWF_DSYNC, i.e. FUA), a
 * BLKZEROOUT or a BLKDISCARD of up to a stripe, one at a time with O_DIRECT,
 * and calls fdatasync() after every 1..batch operations.  A written block is
 * a record: a header (magic, seed, round, thread, seq, block number) and a
 * payload derived from it, so a block read back is either all zeros, one
 * exact record, or garbage.
 *
 * PROGRESS (a file on the 9p output share: a write there is on the host
 * when write() returns, so it survives the power cut) gets one line
 *   S <thread> <seq>   after fdatasync() returned: ops 1..seq are durable
 *   F <thread> <seq>   after a RWF_DSYNC write returned: op seq is durable
 *   Z <thread> <seq>   before a zero-out or discard is issued
 * and the verifier turns those into the set of contents each block may hold
 * after the cut:
 *   - the value of its last durable write or zero-out (or, if none in this
 *     round, what the previous verification saw there); zeros as well if a
 *     durable discard hit it afterwards;
 *   - any record of a later, non-durable write to it (it may have landed);
 *   - zeros if a later, issued but non-durable zero-out/discard covers it.
 * Anything else is a lost durable write, garbage or a misplaced record.
 * What the verification saw becomes the baseline of the next round, kept
 * in STATE (written atomically) with the layout parameters.
 *
 * A cut may tear a write that was not durable: the disk keeps some of its
 * sectors and loses others.  A block stays whole when the image maps it to
 * one aligned 4 KiB piece of the host disk (clusters of 4 KiB or more); with
 * smaller clusters it does not, and init's atom=BYTES (the cluster size)
 * makes the verifier accept a block whose every BYTES-sized unit holds one
 * of the contents allowed above, each unit on its own.  The baseline is
 * then kept per unit.
 *
 * Without LIMIT the writer runs until the power cut, and prints
 * "PC-WRITER-START round=N" to /dev/kmsg once the device is open: the
 * host's cue to start the power-cut timer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "pcunits.h"

#define BLK		4096
#define WORDS		(BLK / 8)
#define STATE_MAGIC	"PCSTATE1"
#define REC_MAGIC	0x31304345524350ULL	/* "PCREC01" */
#define MAX_THREADS	64
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

enum { OP_WRITE, OP_ZERO, OP_DISCARD };
static const char *const op_name[] = { "write", "zero", "discard" };

struct op {
	uint64_t start;
	uint32_t len;
	uint8_t type;
	uint8_t fua;
};

/* STATE: this header, then one uint64_t value per unit (see val_*, units()). */
struct pc_hdr {
	char magic[8];
	uint64_t seed;
	uint64_t nblocks;
	uint32_t threads;
	uint32_t stripe;	/* blocks per stripe */
	uint32_t maxlen;	/* blocks per write, at most */
	uint32_t maxops;	/* operations per thread and round */
	uint32_t zero_pct;
	uint32_t discard_pct;
	uint32_t fua_pct;
	uint32_t batch;		/* operations between fdatasync, 1..batch */
	uint32_t last_round;	/* the round the baseline was taken after */
	uint32_t atom;		/* bytes a cut cannot tear; 0: a whole block */
};

/* Units of the baseline per block: a cut may tear a block into these. */
static uint32_t units(const struct pc_hdr *h)
{
	return h->atom ? BLK / h->atom : 1;
}

/* A block's value: 0 = zeros, else (round << 40 | thread << 32 | seq). */
#define VAL_MIXED	(UINT64_MAX - 1)	/* units of a block differ */
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
		snprintf(buf, n, "units of several writes (torn by an earlier cut)");
	else
		snprintf(buf, n, "r%" PRIu64 "/t%" PRIu64 "/s%" PRIu64,
			 v >> 40, (v >> 32) & 0xff, v & 0xffffffff);
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pcwrite: ");
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

/* The operations of one thread in one round, ops[1..maxops]. */
static struct op *gen_ops(const struct pc_hdr *h, uint32_t round, uint32_t t)
{
	uint64_t nstripes = h->nblocks / h->stripe;
	uint64_t mine = (nstripes - t + h->threads - 1) / h->threads;
	uint64_t st = mix(h->seed ^ mix((uint64_t)round << 32 | t));
	struct op *ops = calloc(h->maxops + 1, sizeof(*ops));
	uint32_t s;

	if (!ops)
		die("out of memory");
	for (s = 1; s <= h->maxops; s++) {
		struct op *o = &ops[s];
		uint32_t p = next(&st) % 100, off, max;

		o->type = p < h->zero_pct ? OP_ZERO :
			  p < h->zero_pct + h->discard_pct ? OP_DISCARD : OP_WRITE;
		o->fua = o->type == OP_WRITE && next(&st) % 100 < h->fua_pct;
		max = o->type == OP_WRITE ? h->maxlen : h->stripe;
		o->len = 1 + next(&st) % max;
		off = next(&st) % h->stripe;
		o->start = ((next(&st) % mine) * h->threads + t) * h->stripe + off;
		if (off + o->len > h->stripe)
			o->len = h->stripe - off;
	}
	return ops;
}

static void fill(uint64_t *w, const struct pc_hdr *h, uint32_t round,
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
static uint64_t classify(const uint64_t *w, const struct pc_hdr *h,
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
	    seq > h->maxops || w[4] >= h->nblocks)
		return UINT64_MAX;
	fill(exp, h, round, t, seq, w[4]);
	if (memcmp(exp, w, BLK))
		return UINT64_MAX;
	*where = w[4];
	return val_make(round, t, seq);
}

/* --- state file --------------------------------------------------------- */

static uint64_t *load_state(const char *path, struct pc_hdr *h)
{
	uint64_t *base;
	FILE *f = fopen(path, "rb");

	if (!f)
		die("%s: %s", path, strerror(errno));
	if (fread(h, sizeof(*h), 1, f) != 1 || memcmp(h->magic, STATE_MAGIC, 8))
		die("%s: not a pcwrite state file", path);
	if (h->atom && (h->atom < 512 || h->atom > BLK || (h->atom & (h->atom - 1))))
		die("%s: bad atom %u", path, h->atom);
	base = malloc(h->nblocks * units(h) * sizeof(*base));
	if (!base)
		die("out of memory");
	if (fread(base, sizeof(*base), h->nblocks * units(h), f) != h->nblocks * units(h))
		die("%s: truncated", path);
	fclose(f);
	return base;
}

/* Write STATE so that a power cut leaves either the old or the new one. */
static void save_state(const char *path, const struct pc_hdr *h, const uint64_t *base)
{
	char tmp[4096], dir[4096], *slash;
	int dfd;
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (!f)
		die("%s: %s", tmp, strerror(errno));
	if (fwrite(h, sizeof(*h), 1, f) != 1 ||
	    fwrite(base, sizeof(*base), h->nblocks * units(h), f) != h->nblocks * units(h) ||
	    fflush(f) || fsync(fileno(f)) || fclose(f))
		die("%s: write: %s", tmp, strerror(errno));
	if (rename(tmp, path))
		die("rename %s: %s", path, strerror(errno));
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd))
		die("fsync %s: %s", dir, strerror(errno));
	close(dfd);
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
	struct pc_hdr h = { .magic = STATE_MAGIC, .threads = 4, .stripe = 256,
			    .maxlen = 16, .maxops = 200000, .zero_pct = 5,
			    .discard_pct = 5, .fua_pct = 5, .batch = 4 };
	unsigned long long size;
	uint64_t *base;
	int i;

	if (argc < 3)
		die("usage: pcwrite init STATE SIZE SEED [key=value...]");
	size = strtoull(argv[1], NULL, 0);
	h.seed = strtoull(argv[2], NULL, 0);
	for (i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		static const struct { const char *k; size_t o; } keys[] = {
			{ "threads", offsetof(struct pc_hdr, threads) },
			{ "stripe", offsetof(struct pc_hdr, stripe) },
			{ "maxlen", offsetof(struct pc_hdr, maxlen) },
			{ "maxops", offsetof(struct pc_hdr, maxops) },
			{ "zero", offsetof(struct pc_hdr, zero_pct) },
			{ "discard", offsetof(struct pc_hdr, discard_pct) },
			{ "fua", offsetof(struct pc_hdr, fua_pct) },
			{ "batch", offsetof(struct pc_hdr, batch) },
			{ "after", offsetof(struct pc_hdr, last_round) },
			{ "atom", offsetof(struct pc_hdr, atom) },
		};
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
	h.nblocks = size / BLK;
	if (!h.threads || h.threads > MAX_THREADS || !h.stripe || !h.maxlen ||
	    h.maxlen > h.stripe || !h.batch || !h.maxops ||
	    h.zero_pct + h.discard_pct > 100 || h.fua_pct > 100 ||
	    h.nblocks / h.stripe < h.threads || h.nblocks > (1ULL << 40) ||
	    (h.atom && (h.atom < 512 || h.atom > BLK || (h.atom & (h.atom - 1)))))
		die("inconsistent layout parameters");
	if (h.atom == BLK)
		h.atom = 0;
	base = calloc(h.nblocks * units(&h), sizeof(*base));
	if (!base)
		die("out of memory");
	save_state(argv[0], &h, base);
	printf("pcwrite: %" PRIu64 " blocks, %u threads, stripe %u, write 1..%u blocks, "
	       "zero %u%%, discard %u%%, fua %u%%, fdatasync every 1..%u ops, seed %" PRIu64
	       ", verified in units of %u bytes\n",
	       h.nblocks, h.threads, h.stripe, h.maxlen, h.zero_pct, h.discard_pct,
	       h.fua_pct, h.batch, h.seed, BLK / units(&h));
	return 0;
}

/* --- writer ------------------------------------------------------------- */

static struct {
	struct pc_hdr h;
	int fd;
	int prog;
	int file;	/* a regular file (self-test on the host), not a device */
	uint32_t round;
	uint32_t limit;
	pthread_mutex_t lock;
	int failed;
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
static void progress(char kind, uint32_t t, uint32_t seq)
{
	char line[64];
	int n = snprintf(line, sizeof(line), "%c %u %u\n", kind, t, seq);

	pthread_mutex_lock(&W.lock);
	if (write(W.prog, line, n) != n) {
		kmsg("PC-WRITER-ERROR progress file: %s", strerror(errno));
		exit(1);
	}
	pthread_mutex_unlock(&W.lock);
}

static void wfail(uint32_t t, uint32_t s, const struct op *o, const char *what)
{
	kmsg("PC-WRITER-ERROR round=%u thread=%u seq=%u %s of %u blocks at block %" PRIu64
	     ": %s: %s", W.round, t, s, op_name[o->type], o->len, o->start, what, strerror(errno));
	exit(1);
}

static void *writer(void *arg)
{
	uint32_t t = (uintptr_t)arg, s = 0, left = 0, limit;
	uint64_t *buf, rnd = mix(time(NULL) ^ (uint64_t)t << 40 ^ getpid());
	struct op *ops = gen_ops(&W.h, W.round, t);

	if (posix_memalign((void **)&buf, BLK, (size_t)W.h.maxlen * BLK))
		die("out of memory");
	limit = W.limit ? W.limit : W.h.maxops;
	while (s < limit) {
		const struct op *o = &ops[++s];
		uint64_t range[2] = { o->start * BLK, (uint64_t)o->len * BLK };
		struct iovec iov = { buf, (size_t)o->len * BLK };
		uint32_t i;

		if (!left)
			left = 1 + next(&rnd) % W.h.batch;
		switch (o->type) {
		case OP_WRITE:
			for (i = 0; i < o->len; i++)
				fill(buf + (size_t)i * WORDS, &W.h, W.round, t, s, o->start + i);
			if (pwritev2(W.fd, &iov, 1, range[0], o->fua ? RWF_DSYNC : 0) !=
			    (ssize_t)iov.iov_len)
				wfail(t, s, o, "pwritev2");
			if (o->fua)
				progress('F', t, s);
			break;
		case OP_ZERO:
			progress('Z', t, s);
			if (W.file ? fallocate(W.fd, FALLOC_FL_ZERO_RANGE, range[0], range[1]) :
			    ioctl(W.fd, BLKZEROOUT, range))
				wfail(t, s, o, "zero-out");
			break;
		case OP_DISCARD:
			progress('Z', t, s);
			/* Advisory: a device without discard keeps the data, which is allowed. */
			if ((W.file ? fallocate(W.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						range[0], range[1]) :
			     ioctl(W.fd, BLKDISCARD, range)) && errno != EOPNOTSUPP)
				wfail(t, s, o, "discard");
			break;
		}
		if (!--left || s == limit) {
			if (fdatasync(W.fd))
				wfail(t, s, o, "fdatasync");
			progress('S', t, s);
		}
	}
	free(buf);
	free(ops);
	return NULL;
}

static int cmd_write(int argc, char **argv)
{
	pthread_t th[MAX_THREADS];
	uint64_t *base, size;
	struct stat st;
	uint32_t t;

	if (argc < 4)
		die("usage: pcwrite write STATE DEV ROUND PROGRESS [LIMIT]");
	base = load_state(argv[0], &W.h);
	free(base);
	W.round = num(argv[2], "round");
	W.limit = argc > 4 ? num(argv[4], "limit") : 0;
	if (W.h.last_round + 1 != W.round)
		die("%s holds the baseline after round %u, not %u", argv[0],
		    W.h.last_round, W.round - 1);
	if (W.limit > W.h.maxops)
		die("limit %u > maxops %u", W.limit, W.h.maxops);
	W.fd = open(argv[1], O_RDWR | O_DIRECT);
	if (W.fd < 0)
		die("%s: %s", argv[1], strerror(errno));
	if (fstat(W.fd, &st))
		die("%s: %s", argv[1], strerror(errno));
	W.file = S_ISREG(st.st_mode);
	if (W.file)
		size = st.st_size;
	else if (ioctl(W.fd, BLKGETSIZE64, &size))
		die("%s: BLKGETSIZE64: %s", argv[1], strerror(errno));
	if (size < W.h.nblocks * BLK)
		die("%s: %" PRIu64 " bytes, the layout needs %" PRIu64, argv[1], size,
		    W.h.nblocks * BLK);
	W.prog = open(argv[3], O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (W.prog < 0)
		die("%s: %s", argv[3], strerror(errno));
	/* The host's cue for the power-cut timer, in the runs meant to be cut. */
	kmsg("%s round=%u", W.limit ? "PC-WRITER-RUN" : "PC-WRITER-START", W.round);
	for (t = 0; t < W.h.threads; t++)
		if (pthread_create(&th[t], NULL, writer, (void *)(uintptr_t)t))
			die("pthread_create failed");
	for (t = 0; t < W.h.threads; t++)
		pthread_join(th[t], NULL);
	close(W.fd);
	kmsg("PC-WRITER-DONE round=%u", W.round);
	return 0;
}

/* --- verifier ----------------------------------------------------------- */

struct tprog {
	uint32_t synced;	/* S: ops 1..synced durable */
	uint32_t zissued;	/* Z: zero/discard ops up to here were issued */
	uint32_t fua_max;
	uint8_t *fua;		/* F: op durable by itself */
};

static void read_progress(const char *path, const struct pc_hdr *h, struct tprog *tp)
{
	char line[128];
	FILE *f = fopen(path, "r");
	uint32_t t;

	for (t = 0; t < h->threads; t++) {
		tp[t].fua = calloc(h->maxops + 1, 1);
		if (!tp[t].fua)
			die("out of memory");
	}
	if (!f) {
		if (errno == ENOENT)
			return;	/* the cut came before the writer logged anything */
		die("%s: %s", path, strerror(errno));
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned int tt, seq;
		char kind, nl;

		/* A line cut short by the power cut is not a claim. */
		if (sscanf(line, "%c %u %u%c", &kind, &tt, &seq, &nl) != 4 || nl != '\n')
			continue;
		if (tt >= h->threads || !seq || seq > h->maxops)
			die("%s: bad line '%s'", path, line);
		if (kind == 'S' && seq > tp[tt].synced) {
			tp[tt].synced = seq;
		} else if (kind == 'Z' && seq > tp[tt].zissued) {
			tp[tt].zissued = seq;
		} else if (kind == 'F') {
			tp[tt].fua[seq] = 1;
			if (seq > tp[tt].fua_max)
				tp[tt].fua_max = seq;
		}
	}
	fclose(f);
}

#define MAX_REPORT 20
#define MAX_TORN_REPORT 3

struct fill_ctx {
	const struct pc_hdr *h;
	uint64_t x;
};

static void fill_val(const void *ctx, uint64_t v, uint64_t *exp)
{
	const struct fill_ctx *c = ctx;

	fill(exp, c->h, v >> 40, (v >> 32) & 0xff, (uint32_t)v, c->x);
}

/*
 * A block that is no single allowed content, with a cut that may tear: can
 * each unit hold one of the contents allowed in it (pc_units_ok())?  A
 * unit may hold what was expected there (@want, per unit), zeros if @zok,
 * or its part of a record of a later write of this round to the block
 * (after op @last of the block's owner thread).  Sets @got[] to what each
 * unit holds; returns 0 when a unit holds nothing allowed.
 */
static int units_ok(const uint64_t *w, const struct pc_hdr *h, struct op *const *ops,
		    uint32_t round, uint64_t x, const uint64_t *want, uint32_t last,
		    int zok, uint64_t *got)
{
	static uint64_t exp[WORDS], *later;
	uint32_t t = (x / h->stripe) % h->threads, n = 0, s;
	struct fill_ctx c = { h, x };

	if (!later) {
		later = malloc((h->maxops + 1) * sizeof(*later));
		if (!later)
			die("out of memory");
	}
	for (s = last + 1; s <= h->maxops; s++) {
		const struct op *o = &ops[t][s];

		if (o->type == OP_WRITE && x >= o->start && x < o->start + o->len)
			later[n++] = val_make(round, t, s);
	}
	return pc_units_ok(w, WORDS, units(h), want, zok, later, n, fill_val, &c,
			   exp, got);
}

static int cmd_verify(int argc, char **argv)
{
	struct pc_hdr h;
	struct tprog tp[MAX_THREADS] = { 0 };
	struct op *ops[MAX_THREADS];
	uint64_t *base, *want, *w, b, n_durable = 0, n_old = 0, n_landed = 0,
		 n_zero_ok = 0, n_bad = 0, n_lost = 0, n_torn = 0;
	uint64_t held[BLK / 512];
	uint32_t *last, round, t, s, u, k;
	uint8_t *dz, *uz;
	size_t chunk = 256, i;
	int raw;

	if (argc < 4)
		die("usage: pcwrite verify STATE RAW ROUND PROGRESS");
	base = load_state(argv[0], &h);
	round = num(argv[2], "round");
	if (h.last_round + 1 != round)
		die("%s holds the baseline after round %u, cannot verify round %u",
		    argv[0], h.last_round, round);
	read_progress(argv[3], &h, tp);

	/* Expected state of every block: replay the durable part of the round. */
	u = units(&h);
	want = malloc(h.nblocks * u * sizeof(*want));
	last = calloc(h.nblocks, sizeof(*last));
	dz = calloc(h.nblocks, 1);
	uz = calloc(h.nblocks, 1);
	if (!want || !last || !dz || !uz)
		die("out of memory");
	memcpy(want, base, h.nblocks * u * sizeof(*want));
	for (t = 0; t < h.threads; t++) {
		uint32_t lim = tp[t].synced;

		if (tp[t].zissued > lim)
			lim = tp[t].zissued;
		if (tp[t].fua_max > lim)
			lim = tp[t].fua_max;
		ops[t] = gen_ops(&h, round, t);
		for (s = 1; s <= lim; s++) {
			const struct op *o = &ops[t][s];
			int durable = s <= tp[t].synced || tp[t].fua[s];

			for (b = o->start; b < o->start + o->len; b++) {
				if (o->type == OP_WRITE && durable) {
					for (k = 0; k < u; k++)
						want[b * u + k] = val_make(round, t, s);
					last[b] = s;
					dz[b] = 0;
					uz[b] = 0;
				} else if (o->type == OP_ZERO && durable) {
					for (k = 0; k < u; k++)
						want[b * u + k] = 0;
					last[b] = s;
					dz[b] = 0;
					uz[b] = 0;
				} else if (o->type == OP_DISCARD && durable) {
					dz[b] = 1;
				} else if (o->type != OP_WRITE && s <= tp[t].zissued) {
					uz[b] = 1;
				}
			}
		}
		printf("pcwrite: round %u thread %u: ops 1..%u synced, %u more FUA-durable, "
		       "zero/discard issued up to %u\n", round, t, tp[t].synced,
		       tp[t].fua_max > tp[t].synced ? tp[t].fua_max - tp[t].synced : 0,
		       tp[t].zissued);
	}

	raw = open(argv[1], O_RDONLY);
	if (raw < 0)
		die("%s: %s", argv[1], strerror(errno));
	w = malloc(chunk * BLK);
	if (!w)
		die("out of memory");
	for (b = 0; b < h.nblocks; b += chunk) {
		size_t nb = h.nblocks - b < chunk ? h.nblocks - b : chunk;
		ssize_t got = pread(raw, w, nb * BLK, b * BLK);

		if (got != (ssize_t)(nb * BLK))
			die("%s: short read at block %" PRIu64, argv[1], b);
		for (i = 0; i < nb; i++) {
			uint64_t x = b + i, where, v, wx = want[x * u];
			const char *why = NULL;
			char sv[64], sw[64];

			/* The one content expected, or VAL_MIXED. */
			for (k = 1; k < u; k++)
				if (want[x * u + k] != wx)
					wx = VAL_MIXED;
			v = classify(w + i * WORDS, &h, x, &where);
			/* The next round starts from what is really there. */
			for (k = 0; k < u; k++)
				base[x * u + k] = v;
			if (v == UINT64_MAX) {
				why = "garbage (neither zeros nor a valid record)";
			} else if (where != x) {
				why = "a record written for another block";
			} else if (v == wx) {
				if (v && (v >> 40) == round)
					n_durable++;
				else
					n_old++;
			} else if (!v && (dz[x] || uz[x])) {
				n_zero_ok++;
			} else if (v && (v >> 40) == round) {
				const struct op *o;

				t = (v >> 32) & 0xff;
				s = (uint32_t)v;
				o = &ops[t][s];
				if (s > last[x] && o->type == OP_WRITE &&
				    x >= o->start && x < o->start + o->len)
					n_landed++;
				else if (s <= last[x])
					why = "older than the last durable write";
				else
					why = "a record this round never wrote here";
			} else {
				why = "lost: an older value or zeros instead of the durable one";
			}
			if (why && u > 1 &&
			    units_ok(w + i * WORDS, &h, ops, round, x, want + x * u, last[x],
				     dz[x] || uz[x], held)) {
				/* Torn, or left torn by an earlier cut: each unit is fine. */
				why = NULL;
				memcpy(base + x * u, held, u * sizeof(*held));
				if (!memcmp(held, want + x * u, u * sizeof(*held))) {
					n_old++;
				} else if (n_torn++ < MAX_TORN_REPORT) {
					printf("pcwrite: block %" PRIu64 " torn by the cut, units of %u bytes:",
					       x, h.atom);
					for (k = 0; k < u; k++) {
						val_str(held[k], sv, sizeof(sv));
						printf(" %s", sv);
					}
					printf("\n");
				}
			}
			if (!why)
				continue;
			if (wx && wx != VAL_MIXED && (wx >> 40) == round)
				n_lost++;
			if (n_bad++ < MAX_REPORT) {
				val_str(wx, sw, sizeof(sw));
				val_str(v, sv, sizeof(sv));
				printf("pcwrite: BAD block %" PRIu64 " (offset 0x%" PRIx64
				       "): holds %s%s, expected %s%s%s: %s\n", x, x * BLK, sv,
				       where != x ? " (record of another block)" : "", sw,
				       dz[x] ? " or zeros (discarded)" : "",
				       uz[x] ? " or zeros (unsynced zero-out/discard)" : "", why);
			}
		}
	}
	close(raw);
	printf("pcwrite: round %u verified: %" PRIu64 " blocks hold this round's durable data, "
	       "%" PRIu64 " unsynced writes landed, %" PRIu64 " zeros allowed by a zero-out/discard, "
	       "%" PRIu64 " unchanged from before, %" PRIu64 " torn between allowed contents; %" PRIu64
	       " bad (%" PRIu64 " durable writes of this round lost)\n",
	       round, n_durable, n_landed, n_zero_ok, n_old, n_torn, n_bad, n_lost);
	if (n_bad)
		return 1;
	h.last_round = round;
	save_state(argv[0], &h, base);
	return 0;
}

/* pcwrite ops STATE ROUND [N]: list the first N operations of each thread. */
static int cmd_ops(int argc, char **argv)
{
	struct pc_hdr h;
	uint32_t round, n, t, s;

	if (argc < 2)
		die("usage: pcwrite ops STATE ROUND [N]");
	free(load_state(argv[0], &h));
	round = num(argv[1], "round");
	n = argc > 2 ? num(argv[2], "count") : 20;
	if (n > h.maxops)
		n = h.maxops;
	for (t = 0; t < h.threads; t++) {
		struct op *ops = gen_ops(&h, round, t);

		for (s = 1; s <= n; s++)
			printf("round %u thread %u seq %u: %s%s blocks %" PRIu64 "..%" PRIu64
			       " (bytes 0x%" PRIx64 "+0x%x)\n", round, t, s, op_name[ops[s].type],
			       ops[s].fua ? "+fua" : "", ops[s].start, ops[s].start + ops[s].len - 1,
			       ops[s].start * BLK, ops[s].len * BLK);
		free(ops);
	}
	return 0;
}

/*
 * Where FILE's data ends: the module keeps the image file ahead of its
 * allocation end as a hole, so the file's size says nothing about how far
 * the last refcount table move got.
 */
static int cmd_dataend(int argc, char **argv)
{
	off_t data, hole, end = 0;
	struct stat st;
	int fd;

	if (argc < 1)
		die("usage: pcwrite dataend FILE");
	fd = open(argv[0], O_RDONLY);
	if (fd < 0 || fstat(fd, &st))
		die("%s: %s", argv[0], strerror(errno));
	if (!S_ISREG(st.st_mode))
		die("%s: not a regular file", argv[0]);
	for (data = lseek(fd, 0, SEEK_DATA); data >= 0; data = lseek(fd, hole, SEEK_DATA)) {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole <= data)
			die("%s: SEEK_HOLE: %s", argv[0], hole < 0 ? strerror(errno) : "no progress");
		end = hole;
	}
	if (errno != ENXIO)
		die("%s: SEEK_DATA: %s", argv[0], strerror(errno));
	close(fd);
	printf("%lld\n", (long long)end);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die("usage: pcwrite init|write|verify|ops|dataend ...");
	if (!strcmp(argv[1], "dataend"))
		return cmd_dataend(argc - 2, argv + 2);
	if (!strcmp(argv[1], "ops"))
		return cmd_ops(argc - 2, argv + 2);
	if (!strcmp(argv[1], "init"))
		return cmd_init(argc - 2, argv + 2);
	if (!strcmp(argv[1], "write"))
		return cmd_write(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 2, argv + 2);
	die("unknown command '%s'", argv[1]);
	return 2;
}
