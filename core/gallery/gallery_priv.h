/* The in-memory gallery, private: layout and state shared by gallery.c
 * (subjects, storage, lifecycle, writers), exact.c (the exact copy) and
 * search.c (readers, search). The layout is described in gallery.c. */
#ifndef HK_GALLERY_PRIV_H
#define HK_GALLERY_PRIV_H

#include "herken.h"
#include "internal.h"
#include "pool.h"
#include "hk_simd.h"
#include "topk.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIM_MAX 4096u
#define BLOCK_ROWS 1024u   /* rows per scan block: 192 KiB of int8 at d=192 (L2) */
#define TILE_Q 64u         /* queries per batch tile                      */
#define STACK_CANDS 1024u  /* single-query scratch lives on the stack     */
#define MAX_SHARDS 64u
#define XF_PEND 256u       /* file rows buffered before one pwrite        */
#define SUBJ_INLINE 16u    /* names shorter than this live in hk__subj    */

/*
 * One subject. Most subjects have a short id and one template, so both live
 * inside the struct (names < SUBJ_INLINE bytes; the id list while captids
 * is 0): at 10 million one-template subjects, separate allocations cost
 * ~80 bytes per subject of malloc chunks. Use subj_name()/subj_tids().
 */
typedef struct hk__subj {
	union {
		char *p;
		char in[SUBJ_INLINE];
	} name;
	union {
		hk_template_id *many; /* captids > 0 */
		hk_template_id one;   /* captids == 0, ntids <= 1 */
	} t; /* every template not yet compacted away */
	uint32_t len;
	uint32_t live;
	uint32_t ntids, captids;
} hk__subj;

static inline const char *subj_name(const hk__subj *s)
{
	return s->len < SUBJ_INLINE ? s->name.in : s->name.p;
}

static inline hk_template_id *subj_tids(const hk__subj *s)
{
	return s->captids ? s->t.many : (hk_template_id *)&s->t.one;
}

/* The exact copy in a file (HK_EXACT_FILE); see the layout note above. */
typedef struct hk__xfile {
	int fd;
	size_t nfile;       /* rows [0, nfile) are in the file            */
	unsigned char *pend; /* rows [nfile, nfile + npend), encrypted     */
	size_t npend;
	unsigned char key[crypto_stream_chacha20_ietf_KEYBYTES];
} hk__xfile;

/* The per-slot arrays, all in one mapping: the gallery's (hk_gallery.a),
 * or a set being built (growth, compaction) until hk__g_arrays_adopt(). */
typedef struct arrays {
	size_t cap;
	int kind;   /* hk__mem kind of the mapping (huge pages or not)    */
	void *base; /* one mapping holds every per-slot array */
	size_t bytes;
	float *master;
	uint16_t *m16;
	int8_t *s8;
	int32_t *rsum;
	float *rscale;
	uint16_t *s16;
	hk_template_id *tids;
	uint32_t *subj;
} arrays;

struct hk_gallery {
	uint32_t dim, d8, d16, d32;
	uint32_t scan;
	uint32_t exact;
	uint32_t rerank;
	uint32_t huge;
	size_t n;
	arrays a;
	hk__xfile xf;
	char *xdir;
	size_t live;
	uint32_t tps_max; /* upper bound of live templates of one hk__subj */
	hk_template_id next_id;
	hk__subj *subs;
	uint32_t nsubs, capsubs, live_subs;
	uint32_t *hash; /* subject index + 1, open addressing */
	uint32_t hcap;
	pthread_rwlock_t lock;
	hk__pool *pool;
	const hk__kernel_table *K;
};

static inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }


/* Small helpers used on the search path (inline everywhere). */
static inline int hk__g_slot_live(const hk_gallery *g, size_t slot)
{
	return !isnan(g->a.rscale[slot]);
}

static inline size_t hk__g_xf_row(const hk_gallery *g) { return (size_t)g->d32 * 4; }

/* Shared between gallery.c (subjects, storage, lifecycle, writers) and
 * search.c (the exact copy, readers, search). */
void hk__g_arrays_adopt(hk_gallery *g, const arrays *a);
hk_status hk__g_arrays_alloc(const hk_gallery *g, size_t cap, arrays *a);
void hk__g_arrays_release(hk_gallery *g);
void hk__g_copy_slot(const hk_gallery *g, arrays *a, size_t dst, size_t src);
void hk__g_first_touch(hk_gallery *g, arrays *a);
hk_status hk__g_grow(hk_gallery *g, size_t want);
void hk__g_xf_append(const hk_gallery *g, hk__xfile *f, const float *x);
void hk__g_xf_close(const hk_gallery *g, hk__xfile *f);
hk_status hk__g_xf_flush(const hk_gallery *g, hk__xfile *f);
void hk__g_xf_init(hk__xfile *f);
hk_status hk__g_xf_open(const hk_gallery *g, hk__xfile *f);
hk_status hk__g_xf_read(const hk_gallery *g, const hk__xfile *f, size_t slot,
                         float *out);
hk_status hk__g_xf_reserve(hk_gallery *g);
void hk__g_xf_wipe(const hk_gallery *g, hk__xfile *f, size_t slot);
hk_status hk__g_check_subject(const char *subject, size_t *len);
float hk__g_exact_dot(const hk_gallery *g, const float *q, size_t slot,
                       float *tmp, hk_status *st);
hk_status hk__g_exact_get(const hk_gallery *g, size_t slot, float *out);
hk_status hk__g_normalise(const float *v, uint32_t dim, float *out,
                           const char *what);
float hk__g_quantise_query(const hk__kernel_table *K, const float *x, uint32_t dim,
                            uint32_t dpad, uint8_t *qu);
int64_t hk__g_slot_of(const hk_gallery *g, hk_template_id id);
int64_t hk__g_subject_find(const hk_gallery *g, const char *name, size_t len);

#endif
