/*
 * Frame sources, private: the queue state shared by the queue core
 * (frames.c), the engines (pread.c, uring.c), streams (stream.c), path
 * sources (sources.c) and batch files (batch.c).
 *
 * Threads: one producer (the io_uring thread, the stream reader, or
 * io_threads pread workers), decode_threads decoders, and the caller.
 * Everything shared is guarded by f->mu; a slot is touched without the
 * lock only by the thread whose stage owns it (state IO: producer,
 * DECODE: one decoder, USER: the caller).
 *
 * Internals return 0 or -errno; per-frame errors become hk_status at the
 * frame, open-time errors at the API.
 */
#ifndef HK_FRAMES_PRIV_H
#define HK_FRAMES_PRIV_H

#include "internal.h"
#include "io_internal.h"

#include <hwloc.h>
#include <liburing.h>
#include <pthread.h>
#include <sys/types.h>

#define ALIGN_IO 4096u
#define MAX_IO_THREADS 16u
#define BATCH_HDR 32u

enum { SRC_FILES, SRC_BATCH, SRC_STREAM };
enum { SL_FREE, SL_IO, SL_DECODE, SL_READY, SL_USER };
enum { OP_OPEN = 0, OP_READ = 1, OP_CLOSE = 2 };

typedef struct slot {
	hk_frame pub; /* first: an hk_frame* is a slot* */
	uint32_t index;
	int state;
	uint8_t *pool;     /* buffer_size bytes, ALIGN_IO aligned */
	uint8_t *heap;     /* large frame, from the budget         */
	size_t heap_cap;
	size_t budget;     /* bytes charged to the budget          */
	/* io_uring bookkeeping (producer thread only) */
	int pending, open_res, read_res, direct;
	uint64_t off;      /* batch: file offset of the frame      */
	size_t want, got;
	uint8_t *dst;
	struct slot *next; /* free / ready / decode / deferred list */
	char name[32];
	char err[224];
} slot;

typedef struct y4m_fmt {
	int cs; /* 420, 422, 444, 0 = mono */
} y4m_fmt;

struct hk_frames {
	hk_frames_params p;
	struct hk__vsrc *vs; /* a video source (io/video*.c): every call goes there */
	int kind;
	int engine;
	/* sources */
	char **paths;
	uint64_t n;
	int batch_fd;
	uint64_t *boff, *blen;
	int stream_fd, y4m;
	y4m_fmt yf;
	uint32_t sw, sh;
	size_t stream_bytes; /* bytes of one frame on the wire */
	uint8_t *rbuf;       /* stream read-ahead buffer */
	size_t rpos, rend;
	/* slots */
	slot *slots;
	uint32_t nslots;
	slot *free_list, *ready_head, *ready_tail, *dec_head, *dec_tail;
	slot **win; /* in-order window, id % nslots */
	uint64_t next_expected;
	uint32_t ready_count, user_held, alive, pipeline;
	uint64_t next_id;
	int producers_left, producers_done, stop;
	size_t budget_used;
	pthread_mutex_t mu;
	pthread_cond_t cv_free, cv_ready, cv_decode, cv_budget;
	/* engine */
	struct io_uring ring;
	int have_ring, direct_ok;
	int have_regbuf; /* set before threads start, then read-only */
	uint64_t io_bytes; /* io_uring thread only: bytes not yet published */
	pthread_t io_thr[MAX_IO_THREADS];
	uint32_t nio;
	pthread_t *dec_thr;
	uint32_t ndec, dec_started;
	hwloc_topology_t topo;
	int topo_ok;
	hk_frames_stats st;
};

#define RBUF 65536 /* stream read-ahead */

/* Shared between the files of the frame sources. Locking as stated where
 * each is defined (frames.c: under f->mu unless noted). */
void hk__fr_add_bytes_read(hk_frames *f, size_t n);
uint8_t *hk__fr_big_alloc(size_t n, size_t *cap);
int hk__fr_big_file_finish(hk_frames *f, slot *s, int blocking);
int hk__fr_budget_try(hk_frames *f, slot *s, size_t bytes);
int hk__fr_budget_wait(hk_frames *f, slot *s, size_t bytes);
void hk__fr_frame_fail_errno(slot *s, int neg, const char *op);
void hk__fr_frame_fail(slot *s, hk_status st, const char *fmt, ...)
        HK__PRINTF(3, 4);
const char *hk__fr_frame_path(const hk_frames *f, const slot *s);
hk_status hk__fr_frames_finish_open(hk_frames *f, hk_frames **out);
hk_status hk__fr_frames_new(int kind, const hk_frames_params *p, hk_frames **f);
void hk__fr_name_batch(slot *s);
hk_status hk__fr_open_listfile(const char *spec, const hk_frames_params *p,
                               hk_frames **out);
ssize_t hk__fr_pread_full(int fd, uint8_t *dst, size_t want, uint64_t off);
void hk__fr_producer_exit(hk_frames *f);
void hk__fr_publish(hk_frames *f, slot *list, int decode, uint64_t bytes);
void hk__fr_ready_frame(hk_frames *f, slot *s);
slot *hk__fr_slot_pop_free(hk_frames *f);
void hk__fr_slot_reset(slot *s, uint64_t id);
void hk__fr_slot_unuse(hk_frames *f, slot *s);
int hk__fr_uring_setup(hk_frames *f);
int hk__fr_wants_decode(const hk_frames *f);
void *hk__fr_stream_thread(void *arg);
void *hk__fr_uring_thread(void *arg);
void *hk__fr_pread_worker(void *arg);

#endif
