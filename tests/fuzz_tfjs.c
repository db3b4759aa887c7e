/* libFuzzer harness for the TF.js weights-manifest reader and the dlib
 * graph built from it (untrusted model files). Input: the manifest text, a
 * NUL byte, then the concatenated weight shards. Build: `make fuzz`; run:
 *   build/fuzz/fuzz_tfjs -runs=1000000 tests/corpus/tfjs
 * tests/test_tfjs.c (tfjs_fuzz/corpus_replay) replays the corpus in the
 * normal test run. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nn/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t tlen = nul ? (size_t)(nul - data) : size;
	const uint8_t *w = nul ? nul + 1 : data + size;
	hk__nn_net net;
	if (hk__tfjs_build_memory((const char *)data, tlen, w, size - (size_t)(w - data), &net) == HK_OK) {
		for (int i = 0; i < net.nnodes; i++)
			if (net.node[i].dst < 0 || net.node[i].dst >= net.g.ntensors)
				__builtin_trap();
		hk__nn_net_free(&net);
	}
	return 0;
}
