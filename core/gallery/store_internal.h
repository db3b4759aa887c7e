/*
 * Durable gallery: on-disk formats and internal interfaces (not public).
 *
 * All integers are little-endian (the library targets x86-64 and aarch64,
 * both little-endian; a static assertion below refuses anything else).
 *
 * Checksums are BLAKE2b-128 (libsodium crypto_generichash) rather than a
 * CRC: sealing a 192-d template already costs more than hashing it, so the
 * hash is free next to the fsync, and 128 bits make the chance that stale
 * blocks or random damage pass as a valid record negligible (a CRC-32
 * accepts one garbage record in 4 billion, which a fuzzer finds quickly).
 * The checksums are unkeyed on purpose: a failing checksum means "damaged",
 * a failing AEAD tag or MAC with a good checksum means "wrong key or
 * tampered", and the error says which.
 */
#ifndef HK_STORE_INTERNAL_H
#define HK_STORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the store's file format is little-endian"
#endif

#define HK__ST_FORMAT 1u
#define HK__SUM 16 /* BLAKE2b-128 */

/* File names inside the gallery directory. */
#define HK__F_KEYS "keys.hk"
#define HK__F_WAL "wal.hk"
#define HK__F_SNAP "snapshot.hk"
#define HK__F_AUDIT "audit.hk"

/* ---- common file header (wal, snapshot, audit): 64 bytes ---------- */
typedef struct hk__fhdr {
	char magic[8];          /* "HKWAL\0\0\0", "HKSNAP\0\0", "HKAUDIT\0"  */
	uint32_t version;       /* HK__ST_FORMAT                             */
	uint32_t dim;
	uint64_t base_seq;      /* wal: records start at base_seq + 1;
	                           snapshot: the gallery version it covers  */
	uint64_t count;         /* snapshot: number of records; else 0      */
	uint8_t gallery_id[16]; /* random, equal in every file of a gallery */
	uint8_t sum[HK__SUM];   /* BLAKE2b-128 of bytes [0, 48)              */
} hk__fhdr;
_Static_assert(sizeof(hk__fhdr) == 64, "hk__fhdr layout");

/* ---- key store: 128-byte header, then 128-byte entries ------------ */
typedef struct hk__khdr {
	char magic[8];          /* "HKKEYS\0\0" */
	uint32_t version;
	uint32_t dim;
	uint8_t gallery_id[16];
	uint32_t allow_identify;
	/* policy operating point: round(-1000 log10(rate)), 0 = the default */
	uint16_t target_fmr_ml;
	uint16_t target_fpir_ml;
	int64_t inactivity_s;
	int64_t created;
	/* The durability watermark, rewritten in place (one sector-atomic
	 * write, fdatasync) after each group commit has made the log and the
	 * audit log durable, and at close: a log or audit log found shorter
	 * than this was cut (truncated or replaced), not torn. Zero in
	 * galleries written before it existed (then unchecked). */
	uint64_t durable_seq;   /* every log record up to this version      */
	uint64_t durable_audit; /* audit entries [0, durable_audit)         */
	uint8_t audit_head[8];  /* MAC prefix of entry durable_audit - 1    */
	uint8_t sum[HK__SUM];   /* BLAKE2b-128 of bytes [0, 80)              */
	uint8_t mac[32];        /* keyed BLAKE2b-256 (header key) of [0, 96) */
} hk__khdr;
_Static_assert(sizeof(hk__khdr) == 128, "hk__khdr layout");

enum { HK__KEY_LIVE = 1, HK__KEY_SHRED = 2 };

/* 128 bytes, so an entry never straddles a 512-byte sector: erasure
 * overwrites one entry with a single sector-atomic write. */
typedef struct hk__kent {
	uint64_t key_id;
	uint32_t state;       /* HK__KEY_LIVE / HK__KEY_SHRED               */
	uint32_t reserved;
	uint8_t nonce[24];
	uint8_t wrapped[48];  /* XChaCha20-Poly1305(key[32]), AD = key_id   */
	uint8_t pad[24];
	uint8_t sum[HK__SUM]; /* BLAKE2b-128 of bytes [0, 112)              */
} hk__kent;
_Static_assert(sizeof(hk__kent) == 128, "hk__kent layout");

/* ---- log / snapshot record: 64-byte header + payload -------------- */
#define HK__REC_MAGIC 0x43524b48u /* "HKRC" */
#define HK__REC_MAX (64u << 20)   /* payload bound */

enum {
	HK__R_ENROL = 1,   /* payload: nonce[24] + sealed enrol body        */
	HK__R_ERASE = 2,   /* payload: hk__r_erase                          */
	HK__R_EXPIRE = 3,  /* payload: hk__r_time                           */
	HK__R_TOUCH = 4,   /* payload: hk__r_time (subject matched)        */
	HK__R_SUBJECT = 5, /* snapshot: one subject, sealed like ENROL      */
};

typedef struct hk__rhdr {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	uint32_t len;          /* payload bytes                             */
	uint32_t reserved;
	uint64_t seq;          /* wal: gallery version; snapshot: index     */
	uint64_t key_id;       /* the subject key the record is about       */
	uint8_t psum[HK__SUM]; /* BLAKE2b-128 of the payload                */
	uint8_t hsum[HK__SUM]; /* BLAKE2b-128 of bytes [0, 48)              */
} hk__rhdr;
_Static_assert(sizeof(hk__rhdr) == 64, "hk__rhdr layout");

typedef struct hk__r_time {
	int64_t time;
	uint32_t reason; /* EXPIRE: 1 consent expired, 2 inactive */
	uint32_t n_templates;
} hk__r_time;
_Static_assert(sizeof(hk__r_time) == 16, "hk__r_time layout");

/*
 * Sealed body of ENROL and SUBJECT records (XChaCha20-Poly1305 with the
 * subject key; AD = record header bytes [0, 32) + gallery id). Followed by
 * the subject id, purpose, consent version and channel (lengths below, no
 * NULs), zero padding to a multiple of 8, n_enrols int64 enrolment times
 * (SUBJECT only; ENROL has none), then n_templates x dim float32.
 */
typedef struct hk__body {
	int64_t time;         /* ENROL: when; SUBJECT: first enrolment      */
	int64_t consent_time;
	int64_t expires;
	int64_t last_active;
	uint32_t n_templates;
	uint32_t dim;
	uint32_t n_enrols;
	uint32_t source;
	uint16_t len_subject, len_purpose, len_version, len_channel;
} hk__body;
_Static_assert(sizeof(hk__body) == 56, "hk__body layout");

/* ---- audit entry: 128 bytes --------------------------------------- */
enum {
	HK__A_ENROL = 1,
	HK__A_ERASE = 2,
	HK__A_EXPIRE = 3,
	HK__A_VERIFY = 4,
	HK__A_IDENTIFY = 5,
	HK__A_REFUSED = 6, /* a refused request (policy / consent)         */
	HK__A_COMPACT = 7,
	HK__A_POLICY = 8,
};
enum { HK__D_NONE = 0, HK__D_MATCH = 1, HK__D_NOMATCH = 2, HK__D_DONE = 3,
       HK__D_REFUSED = 4 };

typedef struct hk__aent {
	uint64_t index;
	int64_t time;
	uint64_t version;
	uint32_t op;
	uint32_t decision;
	float score;
	float threshold;
	uint32_t source;
	uint32_t count;
	uint8_t subject[16]; /* pseudonym (keyed by the subject key) or 0  */
	uint32_t refused_op; /* REFUSED: the op that was refused            */
	uint8_t pad[28];
	uint8_t mac[32];     /* BLAKE2b-256 keyed (audit key) over the
	                        previous entry's mac || bytes [0, 96)       */
} hk__aent;
_Static_assert(sizeof(hk__aent) == 128, "hk__aent layout");

/* ---- helpers (format.c) ------------------------------------------- */
void hk__st_sum(uint8_t out[HK__SUM], const void *p, size_t n);
bool hk__st_sum_ok(const uint8_t want[HK__SUM], const void *p, size_t n);
void hk__fhdr_fill(hk__fhdr *h, const char magic[8], uint32_t dim,
                   uint64_t base_seq, uint64_t count,
                   const uint8_t gid[16]);
/* Validates magic, version, checksum; names the file in the error. */
hk_status hk__fhdr_check(const hk__fhdr *h, const char magic[8],
                         const char *what);
void hk__rhdr_fill(hk__rhdr *h, uint16_t type, uint64_t seq, uint64_t key_id,
                   const void *payload, uint32_t len);

/*
 * Walks records in buf[0, len) (after the file header). For each record
 * whose header and payload checksums pass, calls fn(user, hdr, payload,
 * offset); a non-zero status from fn stops the walk and is returned.
 * At the first bad record: if it looks torn (short, or zero-filled from a
 * 512-byte file boundary to the end) *valid_len is set to its offset and
 * HK_OK is returned; otherwise HK_E_FORMAT naming what and the offset.
 * file_off is the offset of buf[0] in the file (for messages and sector
 * alignment). allow_torn = false reports a torn tail as HK_E_FORMAT too.
 */
typedef hk_status (*hk__rec_fn)(void *user, const hk__rhdr *h,
                                const uint8_t *payload, uint64_t off);
hk_status hk__records_walk(const uint8_t *buf, size_t len, uint64_t file_off,
                           const char *what, bool allow_torn,
                           hk__rec_fn fn, void *user, size_t *valid_len);

/* True when bytes p[0, n) are zero from the first 512-byte file boundary
 * at or after file offset off (or from p itself if off is aligned). */
bool hk__zero_tail(const uint8_t *p, size_t n, uint64_t off);

/* Files. Every gallery file is opened through hk__st_openat: never
 * through a symbolic link (O_NOFOLLOW), and only a regular file (a FIFO or
 * device is refused without blocking). -1 with errno (ELOOP for a link,
 * EMEDIUMTYPE for a file that is not regular). */
int hk__st_openat(int dirfd, const char *name, int flags);
/* The status and message for a failed hk__st_openat of name in dir. */
hk_status hk__st_open_err(int err, const char *name, const char *dir);
/* Create name.tmp afresh for writing (O_EXCL | O_NOFOLLOW, 0600). */
int hk__st_create_tmp(int dirfd, const char *tmp);
hk_status hk__st_read_file(int dirfd, const char *name, uint8_t **buf,
                        size_t *len);
/* Read-only mapping of a whole file (len 0: a valid empty buffer). */
hk_status hk__st_map_file(int dirfd, const char *name, const uint8_t **buf,
                       size_t *len);
void hk__st_unmap_file(const uint8_t *buf, size_t len);
hk_status hk__st_write_all(int fd, const void *p, size_t n, const char *what);
hk_status hk__st_pwrite_all(int fd, const void *p, size_t n, uint64_t off,
                         const char *what);
/* pwrite_all, then fdatasync: n bytes at off are durable. */
hk_status hk__st_pwrite_sync(int fd, const void *p, size_t n, uint64_t off,
                             const char *what);
/* Write buf to name via name.tmp: create 0600, write, fsync, rename,
 * fsync the directory. */
hk_status hk__st_atomic_write(int dirfd, const char *name, const void *p,
                           size_t n);
hk_status hk__st_fsync_dir(int dirfd);

/* ---- keyed parts (format.c) --------------------------------------- */
typedef struct hk__keys {
	uint8_t wrap[32];   /* wraps subject keys                            */
	uint8_t header[32]; /* MACs the key store header (policy)           */
	uint8_t audit[32];  /* MACs the audit chain                          */
	uint8_t receipt[32];/* MACs erasure receipts                         */
} hk__keys;

hk_status hk__keys_derive(hk__keys *k, const uint8_t master[32]);
void hk__pseudonym(uint8_t out[16], const uint8_t subject_key[32]);

/* Parse the audit chain in buf (whole file). Used by verify, export and
 * the fuzz harness. fn (may be NULL) sees each entry that verified. */
typedef void (*hk__audit_fn)(void *user, const hk__aent *e);
hk_status hk__audit_check(const uint8_t *buf, size_t len,
                          const uint8_t audit_key[32], hk__audit_fn fn,
                          void *user, uint64_t *entries, uint64_t *bad,
                          uint8_t head[32]);
void hk__audit_mac(uint8_t out[32], const uint8_t audit_key[32],
                   const uint8_t prev[32], const hk__aent *e);
void hk__audit_genesis(uint8_t out[32], const uint8_t audit_key[32],
                       const hk__fhdr *h);

/* Parse one sealed body (after decryption): validates every length
 * against n and dim. Outputs point into plain. */
typedef struct hk__body_view {
	hk__body b;
	const char *subject, *purpose, *version, *channel;
	const uint8_t *enrols_raw;
	const uint8_t *templates; /* n_templates * dim float32, may be unaligned */
} hk__body_view;
hk_status hk__body_parse(const uint8_t *plain, size_t n, uint32_t dim,
                         uint16_t type, hk__body_view *v);
size_t hk__body_size(const hk__body *b);

#endif
