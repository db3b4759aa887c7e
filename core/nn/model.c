/* Public model API: load (TFLite -> fused graph), per-NUMA-node workers
 * that own a oneDNN engine/stream, a copy of the weights and plans per
 * batch size, and hk_model_run / hk_embed_chips on top.
 *
 * Threading: each NUMA node has ONE worker pthread pinned to the node's
 * cores; it drives oneDNN's OpenMP team (threads inherit its affinity), so
 * every primitive and every weight reorder runs, and first-touches memory,
 * on that node. Callers queue jobs and wait; calls that land on the same
 * node are served in FIFO order. */
#define _GNU_SOURCE
#include "nn/exec.h"
#include "nn/numa.h"
#include "models.h"

#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
	const float *in;
	size_t n;
	float *out[HK__NN_MAX_IO];
	hk_status status;
	char err[256];
	int done;
	struct job *next;
} job;

typedef struct worker {
	struct hk_model *m;
	int place;
	pthread_t thr;
	int started;
	pthread_mutex_t mu;
	pthread_cond_t cv;      /* new job or stop */
	pthread_cond_t done_cv; /* a job finished / init finished */
	job *head, *tail;
	int stop, ready;
	hk_status init_status;
	char init_err[256];
	hk__nn_exec x;
	hk__nn_mem mem;
	size_t chunk; /* items per primitive call */
} worker;

struct hk_model {
	hk__nn_net net;
	hk_model_kind kind;
	hk__nn_topo topo;
	int nworkers;
	worker *w;
	size_t max_batch;
	int threads;
	int prec;     /* resolved hk_precision */
	float *absmax; /* int8: activation range per tensor (ntensors) */
	size_t chunk; /* requested items per call, 0 = auto */
	uint32_t in_h, in_w, in_c;
	size_t in_item;
	size_t out_size[HK__NN_MAX_IO];
	atomic_uint rr;
	char impl[160];
};

void hk_model_default_params(hk_model_params *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof *p);
	p->kind = HK_MODEL_AUTO;
	p->numa_node = -1;
	p->max_batch = 32;
}

static void set_omp_threads(int n)
{
	/* oneDNN on Debian uses OpenMP; libgomp is loaded by libdnnl. */
	void (*f)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
	if (f && n > 0)
		f(n);
}

static void *mem_alloc(void *user, size_t size)
{
	worker *w = user;
	return hk__nn_alloc_on(&w->m->topo, w->place, size);
}

static void mem_free(void *user, void *p, size_t size)
{
	worker *w = user;
	hk__nn_free_on(&w->m->topo, p, size);
}

static hk_status run_chunks(worker *w, job *j)
{
	hk_model *m = w->m;
	float *out[HK__NN_MAX_IO];
	for (size_t done = 0; done < j->n;) {
		size_t k = j->n - done < w->chunk ? j->n - done : w->chunk;
		for (int o = 0; o < m->net.noutputs; o++)
			out[o] = j->out[o] + done * m->out_size[o];
		hk_status s = hk__nn_exec_run(&w->x, j->in + done * m->in_item, k, out);
		if (s)
			return s;
		done += k;
	}
	return HK_OK;
}

static void *worker_main(void *arg)
{
	worker *w = arg;
	hk_model *m = w->m;
	hk__nn_bind_thread(&m->topo, w->place);
	set_omp_threads(m->topo.place[w->place].threads);
	w->mem.alloc = mem_alloc;
	w->mem.free = mem_free;
	w->mem.user = w;
	hk_status s = hk__nn_exec_init(&w->x, &m->net, m->max_batch, &w->mem, m->prec, m->absmax);
	w->x.one_thread = m->topo.place[w->place].threads == 1;
	if (!s) {
		/* create the batch-1 plan now: reorders weights on this node and
		 * surfaces any lowering error at load time */
		size_t nin = m->in_item;
		float *in = calloc(nin, sizeof(float));
		float *out[HK__NN_MAX_IO] = {0};
		int ok = in != NULL;
		for (int o = 0; o < m->net.noutputs && ok; o++)
			ok = (out[o] = calloc(m->out_size[o], sizeof(float))) != NULL;
		s = ok ? hk__nn_exec_run(&w->x, in, 1, out) : hk__err(HK_E_NOMEM, "out of memory");
		/* Items per primitive call: as many as keep the activation arena in
		 * L2. Measured on MobileFaceNet fp32 (one core): 4.2 ms/item at
		 * batch 1 (arena fits L2) vs 5.8 ms/item at batch 8; a model
		 * whose arena is small (O-Net) still gets batched. */
		size_t a1 = hk__nn_exec_arena_bytes(&w->x, 1);
		size_t l2 = hk__nn_l2_bytes(&m->topo, w->place);
		w->chunk = m->chunk ? m->chunk : a1 ? l2 / a1 : 1;
		if (w->chunk < 1)
			w->chunk = 1;
		if (w->chunk > m->max_batch)
			w->chunk = m->max_batch;
		free(in);
		for (int o = 0; o < m->net.noutputs; o++)
			free(out[o]);
	}
	pthread_mutex_lock(&w->mu);
	w->init_status = s;
	if (s)
		snprintf(w->init_err, sizeof w->init_err, "%s", hk_last_error());
	w->ready = 1;
	pthread_cond_broadcast(&w->done_cv);
	while (!s) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (!w->head)
			break;
		job *j = w->head;
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mu);
		hk_status js = run_chunks(w, j);
		pthread_mutex_lock(&w->mu);
		j->status = js;
		if (js)
			snprintf(j->err, sizeof j->err, "%s", hk_last_error());
		j->done = 1;
		pthread_cond_broadcast(&w->done_cv);
	}
	pthread_mutex_unlock(&w->mu);
	hk__nn_exec_free(&w->x);
	return NULL;
}

void hk_model_destroy(hk_model *m)
{
	if (!m)
		return;
	for (int i = 0; i < m->nworkers; i++) {
		worker *w = &m->w[i];
		if (!w->started)
			continue;
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thr, NULL);
		pthread_mutex_destroy(&w->mu);
		pthread_cond_destroy(&w->cv);
		pthread_cond_destroy(&w->done_cv);
	}
	free(m->w);
	free(m->absmax);
	hk__nn_topo_free(&m->topo);
	hk__nn_net_free(&m->net);
	free(m);
}

static hk_model_kind guess_kind(const hk_model *m)
{
	int no = m->net.noutputs;
	if (m->in_h == 112 && m->in_w == 112 && m->in_c == 3 && no == 1 && m->out_size[0] == 192)
		return HK_MODEL_EMBEDDER;
	/* dlib's ResNet (TF.js manifest): 150x150 RGB 0..255 -> 128 */
	if (m->in_h == 150 && m->in_w == 150 && m->in_c == 3 && no == 1 && m->out_size[0] == 128)
		return HK_MODEL_EMBEDDER;
	if (m->in_h == 192 && m->in_w == 192 && m->in_c == 3 && no == 2 &&
	    m->out_size[0] == 2304 * 16 && m->out_size[1] == 2304)
		return HK_MODEL_DETECTOR;
	if (m->in_h == 48 && m->in_w == 48 && m->in_c == 3 && no == 3 && m->out_size[0] == 2 &&
	    m->out_size[1] == 4 && m->out_size[2] == 10)
		return HK_MODEL_LANDMARKS;
	return HK_MODEL_AUTO;
}

static const char *kind_name(int k)
{
	switch (k) {
	case HK_MODEL_DETECTOR: return "detector";
	case HK_MODEL_EMBEDDER: return "embedder";
	case HK_MODEL_LANDMARKS: return "landmarks";
	default: return "unknown";
	}
}

/* Resolves the requested precision. int8 needs oneDNN's AVX2 tier and a
 * calibration of this very file (by sha256); a calibration is committed
 * only for models whose int8 run passed its guards, so AUTO takes int8
 * wherever one exists, else bf16 where the CPU has AMX (the only tier
 * where it paid off, and only for models whose bf16 guard holds: not the
 * detectors), else fp32. */
static hk_status choose_precision(hk_model *m, const char *sha, unsigned want,
                                  hk_model_kind kind)
{
	m->prec = want == HK_PREC_AUTO ? HK_PREC_FP32 : (int)want;
	if (want != HK_PREC_INT8 && want != HK_PREC_AUTO)
		return HK_OK;
	const char *missing = hk__int8_missing_isa();
	hk_status s = want == HK_PREC_INT8 || !missing ? hk__int8_ranges(sha, &m->net, want == HK_PREC_AUTO, &m->absmax)
	                                               : HK_E_NOT_FOUND;
	if (want == HK_PREC_INT8) {
		if (missing)
			return hk_precision_supported(HK_PREC_INT8);
		if (s == HK_E_NOT_FOUND)
			return hk__err(HK_E_UNSUPPORTED, "int8: no calibration for this model (sha256 %s)", sha);
		return s;
	}
	if (!missing && !s) {
		m->prec = HK_PREC_INT8;
		return HK_OK;
	}
	free(m->absmax);
	m->absmax = NULL;
	if (s != HK_OK && s != HK_E_NOT_FOUND)
		return s;
	if (dnnl_get_effective_cpu_isa() == dnnl_cpu_isa_avx512_core_amx &&
	    (kind == HK_MODEL_EMBEDDER || kind == HK_MODEL_LANDMARKS) && !hk__nn_bf16_check())
		m->prec = HK_PREC_BF16;
	return HK_OK;
}

hk_status hk_precision_supported(hk_precision p)
{
	switch (p) {
	case HK_PREC_FP32: return HK_OK;
	case HK_PREC_BF16: return hk__nn_bf16_check();
	case HK_PREC_INT8: {
		const char *missing = hk__int8_missing_isa();
		return missing ? hk__err(HK_E_UNSUPPORTED, "int8 inference needs %s (oneDNN runs %s here)",
		                         missing, hk__nn_isa_name())
		               : HK_OK;
	}
	case HK_PREC_AUTO: return HK_OK;
	default: return hk__err(HK_E_INVALID, "precision %u", (unsigned)p);
	}
}

/* The loader behind every entry point: tflite (data, len) or a TF.js
 * manifest (tfjs_path). */
static hk_status load_any(const void *data, size_t len, const char *tfjs_path,
                          const hk_model_params *pp, const char *synthetic, const char *xml,
                          hk_model **out)
{
	if (!out)
		return hk__err(HK_E_INVALID, "hk_model_load: out is NULL");
	*out = NULL;
	if (!data && len)
		return hk__err(HK_E_INVALID, "hk_model_load: data is NULL");
	hk_model_params p;
	hk_model_default_params(&p);
	if (pp) {
		p.kind = pp->kind;
		p.threads = pp->threads;
		p.numa_node = pp->numa_node;
		p.max_batch = pp->max_batch ? pp->max_batch : 32;
		p.precision = pp->precision;
		p.chunk = pp->chunk;
	}
	if (p.kind > HK_MODEL_LANDMARKS)
		return hk__err(HK_E_INVALID, "hk_model_load: kind %u", p.kind);
	hk_status s = hk_precision_supported((hk_precision)p.precision);
	if (s)
		return s;
	if (p.max_batch > 4096 || p.threads > 4096)
		return hk__err(HK_E_INVALID, "hk_model_load: max_batch %u / threads %u too large", p.max_batch, p.threads);
	hk_model *m = calloc(1, sizeof *m);
	if (!m)
		return hk__err(HK_E_NOMEM, "out of memory");
	char sha[65];
	if (tfjs_path) {
		s = hk__tfjs_load(tfjs_path, &m->net, sha);
	} else {
		hk__sha256_hex(data, len, sha);
		s = hk__nn_build(data, len, &m->net);
	}
	if (s) {
		free(m);
		return s;
	}
	const hk__nn_tensor *in = &m->net.g.t[m->net.input];
	m->in_h = (uint32_t)in->shape[1];
	m->in_w = (uint32_t)in->shape[2];
	m->in_c = (uint32_t)in->shape[3];
	m->in_item = hk__nn_item_count(in);
	for (int o = 0; o < m->net.noutputs; o++)
		m->out_size[o] = hk__nn_item_count(&m->net.g.t[m->net.outputs[o]]);
	m->max_batch = p.max_batch;
	m->chunk = p.chunk;
	hk_model_kind g = guess_kind(m);
	if ((s = choose_precision(m, sha, p.precision, g))) {
		hk_model_destroy(m);
		return s;
	}
	if (p.kind != HK_MODEL_AUTO && g != (hk_model_kind)p.kind) {
		s = hk__err(HK_E_DIM, "model shapes (input %ux%ux%u, %d outputs) do not fit a %s",
		            m->in_h, m->in_w, m->in_c, m->net.noutputs, kind_name((int)p.kind));
		hk_model_destroy(m);
		return s;
	}
	m->kind = g;
	if ((s = hk__nn_topo_load(&m->topo, synthetic, xml, p.numa_node, (int)p.threads))) {
		hk_model_destroy(m);
		return s;
	}
	m->threads = m->topo.place[0].threads;
	m->w = calloc((size_t)m->topo.nplaces, sizeof *m->w);
	if (!m->w) {
		hk_model_destroy(m);
		return hk__err(HK_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < m->topo.nplaces; i++) {
		worker *w = &m->w[i];
		w->m = m;
		w->place = i;
		pthread_mutex_init(&w->mu, NULL);
		pthread_cond_init(&w->cv, NULL);
		pthread_cond_init(&w->done_cv, NULL);
		m->nworkers = i + 1;
		if (pthread_create(&w->thr, NULL, worker_main, w)) {
			pthread_mutex_destroy(&w->mu);
			pthread_cond_destroy(&w->cv);
			pthread_cond_destroy(&w->done_cv);
			m->nworkers = i;
			hk_model_destroy(m);
			return hk__err(HK_E_NOMEM, "cannot start a worker thread");
		}
		w->started = 1;
	}
	for (int i = 0; i < m->nworkers; i++) {
		worker *w = &m->w[i];
		pthread_mutex_lock(&w->mu);
		while (!w->ready)
			pthread_cond_wait(&w->done_cv, &w->mu);
		hk_status ws = w->init_status;
		char err[256];
		snprintf(err, sizeof err, "%s", w->init_err);
		pthread_mutex_unlock(&w->mu);
		if (ws) {
			hk_model_destroy(m);
			return hk__err(ws, "%s", err);
		}
	}
	snprintf(m->impl, sizeof m->impl, "%s", m->w[0].x.impl);
	*out = m;
	return HK_OK;
}

hk_status hk__model_load_topo(const void *data, size_t len, const hk_model_params *p,
                              const char *synthetic, const char *xml, hk_model **out)
{
	return load_any(data, len, NULL, p, synthetic, xml, out);
}

hk_status hk_model_load_memory(const void *data, size_t len, const hk_model_params *p,
                               hk_model **out)
{
	return hk__model_load_topo(data, len, p, NULL, NULL, out);
}

hk_status hk_model_load(const char *path, const hk_model_params *p, hk_model **out)
{
	if (!path || !out)
		return hk__err(HK_E_INVALID, "hk_model_load: NULL argument");
	*out = NULL;
	size_t pl = strlen(path);
	if (pl > 5 && !strcmp(path + pl - 5, ".json"))
		return load_any(NULL, 0, path, p, NULL, NULL, out);
	/* A regular file only (a FIFO or device is refused without blocking),
	 * at most 1 GiB by fstat before reading. */
	uint8_t *buf;
	size_t len;
	int rc = hk__read_file(path, (size_t)1 << 30, &buf, &len);
	if (rc == -ENOENT)
		return hk__err(HK_E_NOT_FOUND, "cannot open model '%s'", path);
	if (rc < 0)
		return hk__errno_status(rc, path);
	hk_status s = hk__model_verify(path, buf, len);
	if (!s)
		s = hk_model_load_memory(buf, len, p, out);
	free(buf);
	return s;
}

hk_status hk_model_input_shape(const hk_model *m, uint32_t *h, uint32_t *w, uint32_t *c)
{
	if (!m)
		return hk__err(HK_E_INVALID, "hk_model_input_shape: model is NULL");
	if (h) *h = m->in_h;
	if (w) *w = m->in_w;
	if (c) *c = m->in_c;
	return HK_OK;
}

hk_model_kind hk_model_get_kind(const hk_model *m) { return m ? m->kind : HK_MODEL_AUTO; }

size_t hk_model_output_count(const hk_model *m) { return m ? (size_t)m->net.noutputs : 0; }

size_t hk_model_output_size(const hk_model *m, size_t i)
{
	return m && i < (size_t)m->net.noutputs ? m->out_size[i] : 0;
}

size_t hk_model_node_count(const hk_model *m) { return m ? (size_t)m->nworkers : 0; }

hk_status hk_model_get_info(const hk_model *m, hk_model_info *info)
{
	if (!m || !info)
		return hk__err(HK_E_INVALID, "hk_model_get_info: NULL argument");
	memset(info, 0, sizeof *info);
	info->flops = m->net.flops;
	info->nodes = (uint32_t)m->nworkers;
	info->threads = (uint32_t)m->threads;
	info->max_batch = (uint32_t)m->max_batch;
	info->chunk = m->nworkers ? (uint32_t)m->w[0].chunk : 0;
	info->precision = (uint32_t)m->prec;
	if (m->prec == HK_PREC_INT8 && m->nworkers)
		for (int i = 0; i < m->net.nnodes; i++)
			info->int8_nodes += m->w[0].x.wq && m->w[0].x.wq[i];
	snprintf(info->isa, sizeof info->isa, "%s", hk__nn_isa_name());
	snprintf(info->impl, sizeof info->impl, "%s", m->impl);
	snprintf(info->graph, sizeof info->graph, "%s", m->net.summary);
	for (int i = 0; i < m->nworkers && i < 8; i++)
		info->node_os_index[i] = m->topo.place[i].os_index;
	return HK_OK;
}

static void submit(worker *w, job *j)
{
	pthread_mutex_lock(&w->mu);
	j->next = NULL;
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void wait_job(worker *w, job *j)
{
	pthread_mutex_lock(&w->mu);
	while (!j->done)
		pthread_cond_wait(&w->done_cv, &w->mu);
	pthread_mutex_unlock(&w->mu);
}

static hk_status run_split(const hk_model *cm, int only, const float *input, size_t n,
                           float *const *outputs)
{
	hk_model *m = (hk_model *)cm; /* queues and counters only */
	if (!m || !input || !outputs)
		return hk__err(HK_E_INVALID, "hk_model_run: NULL argument");
	if (n == 0)
		return HK_OK;
	if (n > ((size_t)1 << 40) / m->in_item)
		return hk__err(HK_E_OVERFLOW, "hk_model_run: batch %zu too large", n);
	for (int o = 0; o < m->net.noutputs; o++)
		if (!outputs[o])
			return hk__err(HK_E_INVALID, "hk_model_run: output %d is NULL", o);
	size_t counts[HK__NN_MAX_NODES] = {0};
	if (only >= 0) {
		counts[only] = n;
	} else {
		size_t c[HK__NN_MAX_NODES];
		hk__nn_split(&m->topo, n, c);
		/* rotate so that small batches from many callers use every node */
		unsigned r = atomic_fetch_add(&m->rr, 1u) % (unsigned)m->nworkers;
		for (int i = 0; i < m->nworkers; i++)
			counts[(i + (int)r) % m->nworkers] = c[i];
	}
	job jobs[HK__NN_MAX_NODES];
	size_t at = 0;
	for (int i = 0; i < m->nworkers; i++) {
		memset(&jobs[i], 0, sizeof jobs[i]);
		jobs[i].n = counts[i];
		if (!counts[i])
			continue;
		jobs[i].in = input + at * m->in_item;
		for (int o = 0; o < m->net.noutputs; o++)
			jobs[i].out[o] = outputs[o] + at * m->out_size[o];
		at += counts[i];
		submit(&m->w[i], &jobs[i]);
	}
	hk_status s = HK_OK;
	char err[256] = "";
	for (int i = 0; i < m->nworkers; i++) {
		if (!counts[i])
			continue;
		wait_job(&m->w[i], &jobs[i]);
		if (jobs[i].status && !s) {
			s = jobs[i].status;
			snprintf(err, sizeof err, "%s", jobs[i].err);
		}
	}
	return s ? hk__err(s, "%s", err) : HK_OK;
}

hk_status hk_model_run(const hk_model *m, const float *input, size_t n, float *const *outputs)
{
	return run_split(m, -1, input, n, outputs);
}

hk_status hk_model_run_on_node(const hk_model *m, size_t node, const float *input, size_t n,
                               float *const *outputs)
{
	if (m && node >= (size_t)m->nworkers)
		return hk__err(HK_E_RANGE, "hk_model_run_on_node: node %zu of %d", node, m->nworkers);
	return run_split(m, m ? (int)node : 0, input, n, outputs);
}

hk_status hk_embed_chips(const hk_model *m, const uint8_t *chips, size_t n, float *out)
{
	if (!m || !chips || !out)
		return hk__err(HK_E_INVALID, "hk_embed_chips: NULL argument");
	if (m->kind != HK_MODEL_EMBEDDER)
		return hk__err(HK_E_STATE, "hk_embed_chips: model is a %s, not an embedder", kind_name(m->kind));
	if (n == 0)
		return HK_OK;
	/* MobileFaceNet takes (v - 127.5) / 128; dlib's ResNet has its own
	 * normalisation folded into its first convolution and takes v. */
	const size_t item = m->in_item, dim = m->out_size[0];
	const int raw = m->in_h == 150;
	size_t step = n < 32 ? n : 32, bytes;
	if (hk__mul_size(step * item, sizeof(float), &bytes))
		return hk__err(HK_E_OVERFLOW, "hk_embed_chips: batch too large");
	float *buf = hk__aalloc(bytes);
	if (!buf)
		return hk__err(HK_E_NOMEM, "out of memory");
	hk_status s = HK_OK;
	for (size_t done = 0; done < n && !s; done += step) {
		size_t k = n - done < step ? n - done : step;
		const uint8_t *src = chips + done * item;
		for (size_t i = 0; i < k * item; i++)
			buf[i] = raw ? (float)src[i] : ((float)src[i] - 127.5f) * 0.0078125f;
		float *o = out + done * dim;
		s = hk_model_run(m, buf, k, &o);
	}
	hk__wipe(buf, bytes); /* normalised face pixels are personal data */
	hk__afree(buf);
	if (s)
		return s;
	for (size_t i = 0; i < n; i++) {
		float *v = out + i * dim;
		double ss = 0;
		for (size_t k = 0; k < dim; k++)
			ss += (double)v[k] * v[k];
		if (!(ss > 0) || !isfinite(ss))
			return hk__err(HK_E_RANGE, "hk_embed_chips: embedding %zu has zero or non-finite length", i);
		float inv = (float)(1.0 / sqrt(ss));
		for (size_t k = 0; k < dim; k++)
			v[k] *= inv;
	}
	return HK_OK;
}
