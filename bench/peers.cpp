// Peers for herken-bench search: FAISS (IndexFlatIP, IndexScalarQuantizer
// 8-bit / fp16) and hnswlib (HNSW, inner product). Debian ships only their
// C++ APIs, so this adapter gives them a small C interface (bench/peers.h).
#include "peers.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexScalarQuantizer.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <cstring>
#include <exception>
#include <memory>
#include <string>

extern "C" void openblas_set_num_threads(int);

struct hkb_peer {
	std::string impl;
	int dim = 0;
	int threads = 1;
	std::unique_ptr<faiss::Index> faiss;
	std::unique_ptr<hnswlib::InnerProductSpace> space;
	std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
};

static thread_local std::string last_error;

extern "C" const char *hkb_peer_error(void) { return last_error.c_str(); }

extern "C" hkb_peer *hkb_peer_create(const char *impl, int dim, int threads)
{
	try {
		auto p = std::make_unique<hkb_peer>();
		p->impl = impl;
		p->dim = dim;
		p->threads = threads;
		if (p->impl == "faiss-flat")
			p->faiss = std::make_unique<faiss::IndexFlatIP>(dim);
		else if (p->impl == "faiss-sq8")
			p->faiss = std::make_unique<faiss::IndexScalarQuantizer>(
			    dim, faiss::ScalarQuantizer::QT_8bit,
			    faiss::METRIC_INNER_PRODUCT);
		else if (p->impl == "faiss-fp16")
			p->faiss = std::make_unique<faiss::IndexScalarQuantizer>(
			    dim, faiss::ScalarQuantizer::QT_fp16,
			    faiss::METRIC_INNER_PRODUCT);
		else if (p->impl != "hnswlib") {
			last_error = "unknown peer " + p->impl;
			return nullptr;
		}
		return p.release();
	} catch (const std::exception &e) {
		last_error = e.what();
		return nullptr;
	}
}

static void set_threads(const hkb_peer *p)
{
	omp_set_num_threads(p->threads);
	openblas_set_num_threads(p->threads);
}

extern "C" int hkb_peer_build(hkb_peer *p, const float *x, size_t n,
                              int hnsw_m, int hnsw_ef_construction)
{
	try {
		set_threads(p);
		if (p->faiss) {
			if (!p->faiss->is_trained) {
				p->faiss->train((faiss::Index::idx_t)(n < 100000 ? n : 100000), x);
			}
			p->faiss->add((faiss::Index::idx_t)n, x);
			return 0;
		}
		p->space = std::make_unique<hnswlib::InnerProductSpace>(p->dim);
		p->hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(
		    p->space.get(), n, hnsw_m, hnsw_ef_construction, 100);
		const size_t d = (size_t)p->dim;
		// hnswlib supports concurrent addPoint after the first element
		p->hnsw->addPoint(x, 0);
#pragma omp parallel for schedule(dynamic, 256) num_threads(p->threads)
		for (size_t i = 1; i < n; i++)
			p->hnsw->addPoint(x + i * d, i);
		return 0;
	} catch (const std::exception &e) {
		last_error = e.what();
		return -1;
	}
}

extern "C" void hkb_peer_set_ef(hkb_peer *p, int ef)
{
	if (p->hnsw)
		p->hnsw->setEf((size_t)ef);
}

extern "C" void hkb_peer_set_threads(hkb_peer *p, int threads)
{
	p->threads = threads;
}

extern "C" int hkb_peer_search(hkb_peer *p, const float *q, size_t nq, int k,
                               float *scores, int64_t *ids)
{
	try {
		set_threads(p);
		if (p->faiss) {
			std::vector<faiss::Index::idx_t> I((size_t)nq * k);
			p->faiss->search((faiss::Index::idx_t)nq, q, k, scores, I.data());
			for (size_t i = 0; i < I.size(); i++)
				ids[i] = (int64_t)I[i];
			return 0;
		}
		const size_t d = (size_t)p->dim;
#pragma omp parallel for schedule(dynamic, 1) num_threads(p->threads) if (nq > 1)
		for (size_t j = 0; j < nq; j++) {
			auto res = p->hnsw->searchKnn(q + j * d, (size_t)k);
			// the queue pops the farthest first: fill from the back
			for (int r = k - 1; r >= 0; r--) {
				if (res.empty()) {
					scores[j * k + r] = -1e30f;
					ids[j * k + r] = -1;
					continue;
				}
				// InnerProductSpace distance is 1 - dot
				scores[j * k + r] = 1.0f - res.top().first;
				ids[j * k + r] = (int64_t)res.top().second;
				res.pop();
			}
		}
		return 0;
	} catch (const std::exception &e) {
		last_error = e.what();
		return -1;
	}
}

extern "C" size_t hkb_peer_memory(const hkb_peer *p, size_t n)
{
	if (p->impl == "faiss-flat")
		return n * p->dim * 4;
	if (p->impl == "faiss-sq8")
		return n * p->dim;
	if (p->impl == "faiss-fp16")
		return n * p->dim * 2;
	return 0;
}

extern "C" void hkb_peer_destroy(hkb_peer *p) { delete p; }
