/* herken-cost only (see the Makefile): hk__video_open without FFmpeg, so
 * that the binary `herken-bench check` runs under valgrind does not load
 * libavcodec. No check workload opens a video. */
#include "internal.h"
#include "video.h"

hk_status hk__video_open(const char *spec, const hk_frames_params *p, hk__vsrc **out)
{
	(void)p;
	*out = NULL;
	return hk__err(HK_E_UNSUPPORTED, "video source '%s': herken-cost is built without FFmpeg", spec);
}
