/* libFuzzer harness for the TFLite reader and graph builder (the code that
 * parses untrusted model files). Build: `make fuzz`; run:
 *   build/fuzz/fuzz_tflite -runs=1000000 tests/corpus/tflite
 * tests/test_nn.c (nn_fuzz/corpus_replay) replays the corpus through the
 * full loader, oneDNN lowering included, in the normal test run. */
#include <stddef.h>
#include <stdint.h>

#include "nn/nn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hk__nn_net net;
	if (hk__nn_build(data, size, &net) == HK_OK) {
		/* touch what the executor relies on */
		volatile double f = net.flops;
		(void)f;
		for (int i = 0; i < net.nnodes; i++)
			if (net.node[i].dst < 0 || net.node[i].dst >= net.g.ntensors)
				__builtin_trap();
		hk__nn_net_free(&net);
	}
	return 0;
}
