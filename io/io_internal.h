/* Internal interfaces of io/ (not public). Functions named hk__*; the raw
 * I/O helpers return 0 or -errno like liburing, and only the public entry
 * points map that to hk_status. */
#ifndef HK_IO_INTERNAL_H
#define HK_IO_INTERNAL_H

#include "herken.h"

#include <hwloc.h>
#include <stddef.h>
#include <stdint.h>

/* EXIF orientation (1..8) of a JPEG byte stream; 1 when absent or when the
 * APP1/TIFF structure is malformed. Bounds-checked. */
int hk__jpeg_exif_orientation(const uint8_t *b, size_t len);

/* hk_image.flags bit: the library allocated data (hk__aalloc). */
#define HK__IMG_OWNED 1u

/* Owned w x h RGB8 image (stride 3*w) after the HK_IMAGE_MAX_PIXELS check;
 * `what` names the format in error messages. */
hk_status hk__image_alloc(uint32_t w, uint32_t h, hk_image *out,
                          const char *what);

/* Declared dimensions of JPEG/PNG/PNM bytes (before EXIF rotation): 0, or
 * -1 when the header cannot be read. Used to budget decode memory. */
int hk__image_dims(const uint8_t *b, size_t len, uint32_t *w, uint32_t *h);

/* Decode worker placement: worker `index` goes to core index % ncores
 * (PUs when the topology has no cores). *set points into topo. 0 or
 * -ENODEV. */
int hk__pin_target(hwloc_topology_t topo, unsigned index,
                   hwloc_const_cpuset_t *set);
/* Binds the calling thread to hk__pin_target(); -ENOTSUP when the
 * topology's support flags say thread binding is impossible (synthetic or
 * XML topologies, some containers): then nothing is attempted. */
int hk__pin_thread(hwloc_topology_t topo, unsigned index);

#endif
