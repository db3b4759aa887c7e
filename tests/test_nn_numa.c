/* NUMA placement on topologies this 1-node machine does not have:
 * synthetic hwloc descriptions and XML exported from them. */
#define _GNU_SOURCE
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "herken.h"
#include "nn/nn.h"
#include "nn/numa.h"
#include "test_nn_util.h"

Test(nn_numa, synthetic_two_packages)
{
	hk__nn_topo t;
	cr_assert_eq(hk__nn_topo_load(&t, "pack:2 numa:1 core:4 pu:1", NULL, -1, 0), HK_OK, "%s", hk_last_error());
	cr_assert_eq(t.nplaces, 2);
	cr_expect_eq(t.place[0].os_index, 0);
	cr_expect_eq(t.place[1].os_index, 1);
	cr_expect_eq(t.place[0].threads, 4);
	cr_expect_eq(t.place[1].threads, 4);
	cr_expect_eq(hwloc_bitmap_weight(t.place[0].cpuset), 4);
	cr_expect(!hwloc_bitmap_intersects(t.place[0].cpuset, t.place[1].cpuset));
	cr_expect_eq(t.can_bind_thread, 0, "a synthetic topology is not this system");
	hk__nn_topo_free(&t);
}

Test(nn_numa, threads_count_cores_not_pus)
{
	hk__nn_topo t;
	cr_assert_eq(hk__nn_topo_load(&t, "pack:2 numa:2 core:3 pu:2", NULL, -1, 0), HK_OK);
	cr_assert_eq(t.nplaces, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(t.place[i].threads, 3);
		cr_expect_eq(t.place[i].os_index, i);
		cr_expect_eq(hwloc_bitmap_weight(t.place[i].cpuset), 6);
	}
	hk__nn_topo_free(&t);
	cr_assert_eq(hk__nn_topo_load(&t, "pack:2 numa:2 core:3 pu:2", NULL, -1, 5), HK_OK);
	cr_expect_eq(t.place[3].threads, 5);
	hk__nn_topo_free(&t);
}

Test(nn_numa, pick_one_node)
{
	hk__nn_topo t;
	cr_assert_eq(hk__nn_topo_load(&t, "pack:2 numa:2 core:2 pu:1", NULL, 2, 0), HK_OK);
	cr_assert_eq(t.nplaces, 1);
	cr_expect_eq(t.place[0].os_index, 2);
	hk__nn_topo_free(&t);
	cr_expect_eq(hk__nn_topo_load(&t, "pack:2 numa:2 core:2 pu:1", NULL, 9, 0), HK_E_NOT_FOUND);
	cr_expect(strstr(hk_last_error(), "9"));
	cr_expect_eq(hk__nn_topo_load(&t, "this is not a topology", NULL, -1, 0), HK_E_BACKEND);
}

Test(nn_numa, xml_round_trip)
{
	hwloc_topology_t h;
	hwloc_topology_init(&h);
	cr_assert_eq(hwloc_topology_set_synthetic(h, "pack:4 numa:1 core:2 pu:1"), 0);
	cr_assert_eq(hwloc_topology_load(h), 0);
	char path[] = "/tmp/herken-topo-XXXXXX";
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	cr_assert_eq(hwloc_topology_export_xml(h, path, 0), 0);
	hwloc_topology_destroy(h);
	hk__nn_topo t;
	cr_assert_eq(hk__nn_topo_load(&t, NULL, path, -1, 0), HK_OK, "%s", hk_last_error());
	unlink(path);
	cr_assert_eq(t.nplaces, 4);
	for (int i = 0; i < 4; i++)
		cr_expect_eq(t.place[i].threads, 2);
	cr_expect_eq(t.can_bind_thread, 0);
	hk__nn_topo_free(&t);
}

Test(nn_numa, split_proportional)
{
	hk__nn_topo t;
	cr_assert_eq(hk__nn_topo_load(&t, "pack:2 numa:1 core:2 pu:1", NULL, -1, 0), HK_OK);
	size_t c[HK__NN_MAX_NODES];
	hk__nn_split(&t, 10, c);
	cr_expect(c[0] == 5 && c[1] == 5);
	hk__nn_split(&t, 1, c);
	cr_expect(c[0] == 1 && c[1] == 0);
	t.place[0].threads = 1;
	t.place[1].threads = 3;
	hk__nn_split(&t, 8, c);
	cr_expect(c[0] == 2 && c[1] == 6, "%zu %zu", c[0], c[1]);
	hk__nn_split(&t, 7, c); /* 1.75 / 5.25: largest remainder goes first */
	cr_expect(c[0] == 2 && c[1] == 5, "%zu %zu", c[0], c[1]);
	for (size_t n = 0; n < 200; n++) {
		hk__nn_split(&t, n, c);
		cr_expect_eq(c[0] + c[1], n);
		cr_expect(fabs((double)c[0] - n / 4.0) < 1.0 && fabs((double)c[1] - 3.0 * n / 4.0) < 1.0, "n %zu: %zu %zu", n, c[0], c[1]);
	}
	hk__nn_topo_free(&t);
}

/* A model on two synthetic nodes: two engines, two weight copies, batches
 * spread over both, results identical to one node. */
Test(nn_numa, model_on_two_nodes)
{
	static tn_fb w;
	size_t len = tn_small_model(&w, 0);
	hk_model_params p;
	hk_model_default_params(&p);
	p.max_batch = 4;
	hk_model *m2 = NULL, *m1 = NULL;
	cr_assert_eq(hk__model_load_topo(w.b, len, &p, "pack:2 numa:1 core:1 pu:1", NULL, &m2), HK_OK,
	             "%s", hk_last_error());
	cr_assert_eq(hk_model_node_count(m2), 2);
	hk_model_info info;
	cr_assert_eq(hk_model_get_info(m2, &info), HK_OK);
	cr_expect_eq(info.nodes, 2);
	cr_expect_eq(info.threads, 1);
	cr_expect(info.node_os_index[0] == 0 && info.node_os_index[1] == 1);
	cr_expect(strlen(info.isa) > 0);
	cr_assert_eq(hk_model_load_memory(w.b, len, &p, &m1), HK_OK);
	enum { N = 11 };
	float x[N * 18], y1[N * 18], y2[N * 18], y3[18], ref[18];
	for (int i = 0; i < N * 18; i++)
		x[i] = sinf((float)i);
	float *o1 = y1, *o2 = y2, *o3 = y3;
	cr_assert_eq(hk_model_run(m1, x, N, &o1), HK_OK);
	cr_assert_eq(hk_model_run(m2, x, N, &o2), HK_OK, "%s", hk_last_error());
	for (int i = 0; i < N; i++) {
		tn_small_ref(x + 18 * i, ref);
		for (int k = 0; k < 18; k++) {
			cr_expect_float_eq(y2[18 * i + k], y1[18 * i + k], 1e-6);
			cr_expect_float_eq(y2[18 * i + k], ref[k], 1e-5);
		}
	}
	for (size_t node = 0; node < 2; node++) {
		cr_assert_eq(hk_model_run_on_node(m2, node, x + 18 * 3, 1, &o3), HK_OK);
		for (int k = 0; k < 18; k++)
			cr_expect_float_eq(y3[k], y1[18 * 3 + k], 1e-6);
	}
	hk_model_destroy(m1);
	hk_model_destroy(m2);
}

/* Several callers at once: jobs queue per node, every result correct. */
struct caller { hk_model *m; int id; int bad; };

static void *caller_main(void *arg)
{
	struct caller *c = arg;
	float x[5 * 18], y[5 * 18], ref[18], *o = y;
	for (int it = 0; it < 20; it++) {
		for (int i = 0; i < 5 * 18; i++)
			x[i] = (float)((i + c->id * 7 + it) % 13) - 6.0f;
		if (hk_model_run(c->m, x, 5, &o) != HK_OK) {
			c->bad++;
			continue;
		}
		for (int i = 0; i < 5; i++) {
			tn_small_ref(x + 18 * i, ref);
			for (int k = 0; k < 18; k++)
				if (fabsf(ref[k] - y[18 * i + k]) > 1e-4f)
					c->bad++;
		}
	}
	return NULL;
}

Test(nn_numa, concurrent_callers)
{
	static tn_fb w;
	size_t len = tn_small_model(&w, 0);
	hk_model_params p;
	hk_model_default_params(&p);
	p.max_batch = 2;
	hk_model *m = NULL;
	cr_assert_eq(hk__model_load_topo(w.b, len, &p, "pack:3 numa:1 core:1 pu:1", NULL, &m), HK_OK);
	pthread_t th[4];
	struct caller cs[4];
	for (int i = 0; i < 4; i++) {
		cs[i] = (struct caller){m, i, 0};
		pthread_create(&th[i], NULL, caller_main, &cs[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		cr_expect_eq(cs[i].bad, 0, "caller %d: %d wrong values", i, cs[i].bad);
	}
	hk_model_destroy(m);
}
