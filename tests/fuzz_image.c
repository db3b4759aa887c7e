/*
 * libFuzzer harness for hk_image_decode (JPEG/EXIF, PNG, PPM/PGM, sniffing).
 *   make fuzz && mkdir -p tests/fuzz-out &&
 *   build/fuzz/fuzz_image -max_total_time=60 tests/fuzz-out tests/corpus/image
 * (new inputs go to the first directory, tests/fuzz-out, which git ignores;
 * tests/corpus/image holds only the small synthetic seeds).
 * The Criterion suite includes this file with HK_FUZZ_NO_MAIN defined and
 * replays tests/corpus/image through hk_fuzz_image_one().
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "herken.h"

/* Returns 0; aborts when a contract is broken (so the fuzzer reports it). */
static int hk_fuzz_image_one(const uint8_t *data, size_t size)
{
	hk_image img;
	hk_status s = hk_image_decode(data, size, &img);
	const char *name = hk_image_sniff(data, size);
	if (!name)
		abort();
	if (s == HK_OK) {
		if (img.width == 0 || img.height == 0 || !img.data ||
		    img.stride < 3u * img.width ||
		    (uint64_t)img.width * img.height > HK_IMAGE_MAX_PIXELS)
			abort();
		/* Touch every pixel byte: ASan flags a short buffer. */
		unsigned acc = 0;
		for (uint32_t y = 0; y < img.height; y++)
			for (uint32_t x = 0; x < 3u * img.width; x++)
				acc += img.data[(size_t)y * img.stride + x];
		(void)acc;
		hk_image_free(&img);
		if (img.data)
			abort();
	} else {
		if (img.data)
			abort();
		if (s != HK_E_FORMAT && s != HK_E_UNSUPPORTED && s != HK_E_LIMIT &&
		    s != HK_E_NOMEM)
			abort();
		if (hk_last_error()[0] == '\0')
			abort();
	}
	return 0;
}

#ifndef HK_FUZZ_NO_MAIN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return hk_fuzz_image_one(data, size);
}
#endif
