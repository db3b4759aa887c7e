/* Internal model representation: TFLite import -> graph -> fused nodes ->
 * oneDNN plans. Not public. */
#ifndef HK_NN_H
#define HK_NN_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define HK__NN_MAX_DIMS 6
#define HK__NN_MAX_IO 8
#define HK__NN_MAX_TENSORS 65536
#define HK__NN_MAX_OPS 65536
#define HK__NN_MAX_ELEMS (1u << 26) /* elements per tensor (256 MB of floats) */

/* TFLite builtin operator codes we know (schema.fbs BuiltinOperator). */
enum {
	TFL_ADD = 0, TFL_CONV_2D = 3, TFL_DEPTHWISE_CONV_2D = 4,
	TFL_DEPTH_TO_SPACE = 5, TFL_DEQUANTIZE = 6, TFL_FULLY_CONNECTED = 9,
	TFL_MAX_POOL_2D = 17, TFL_MUL = 18, TFL_RELU = 19, TFL_RESHAPE = 22,
	TFL_RESIZE_BILINEAR = 23, TFL_PAD = 34, TFL_SUB = 41, TFL_DIV = 42,
	TFL_EXP = 47, TFL_NEG = 59, TFL_SUM = 74, TFL_REDUCE_MAX = 82,
	TFL_ABS = 101, TFL_DENSIFY = 124,
};

/* TFLite TensorType */
enum { TFL_T_FLOAT32 = 0, TFL_T_FLOAT16 = 1, TFL_T_INT32 = 2, TFL_T_INT64 = 4 };

/* Fused activations (TFLite ActivationFunctionType) */
enum { TFL_ACT_NONE = 0, TFL_ACT_RELU = 1, TFL_ACT_RELU_N1_TO_1 = 2,
       TFL_ACT_RELU6 = 3, TFL_ACT_TANH = 4 };

typedef struct hk__nn_tensor {
	int ndim;
	int32_t shape[HK__NN_MAX_DIMS];
	int type;      /* TFL_T_* as declared */
	size_t count;  /* elements (product of shape) */
	/* Constant data, converted at import: float for FLOAT32/FLOAT16
	 * tensors, int32 for INT32/INT64 ones. NULL for activations. */
	float *f;
	int32_t *i32;
	int is_const;
	char name[48];
} hk__nn_tensor;

typedef struct hk__nn_op {
	int code;         /* TFL_* builtin code */
	int nin, nout;
	int in[HK__NN_MAX_IO];  /* tensor index or -1 (optional input) */
	int out[HK__NN_MAX_IO];
	/* options (only those of the op's kind are meaningful) */
	int padding;      /* 0 SAME, 1 VALID */
	int stride_w, stride_h, dil_w, dil_h;
	int filter_w, filter_h, depth_mult;
	int act;          /* TFL_ACT_* */
	int keep_dims, keep_num_dims;
	int align_corners, half_pixel;
	int block_size;
	int n_new_shape;
	int32_t new_shape[HK__NN_MAX_DIMS];
} hk__nn_op;

typedef struct hk__nn_graph {
	int ntensors, nops;
	hk__nn_tensor *t;
	hk__nn_op *op;
	int ninputs, noutputs;
	int inputs[HK__NN_MAX_IO];
	int outputs[HK__NN_MAX_IO];
} hk__nn_graph;

/* Parse a TFLite flatbuffer (untrusted) into *g. Constants are copied and
 * converted (fp16 -> fp32, sparse tensors densified); g owns everything.
 * HK_E_FORMAT / HK_E_UNSUPPORTED with a message on bad input. */
hk_status hk__tflite_parse(const void *data, size_t len, hk__nn_graph *g);
void hk__nn_graph_free(hk__nn_graph *g);
const char *hk__tflite_op_name(int code);

/* ---- fused node list (graph.c) ---- */

enum hk__nn_kind {
	NK_CONV,     /* conv / depthwise conv (groups) + post-ops            */
	NK_FC,       /* inner product + post-ops                             */
	NK_MAXPOOL,
	NK_RESIZE,   /* bilinear                                             */
	NK_D2S,
	NK_PAD,
	NK_BINARY,   /* add/sub/mul/div with broadcasting                    */
	NK_UNARY,    /* relu/neg/abs/exp/relu6/...                           */
	NK_PRELU,    /* y = x > 0 ? x : a*x, a broadcast over the last axis  */
	NK_REDUCE,   /* max/sum over the last axis                           */
	NK_COPY,     /* reshape: same bytes                                  */
};

enum hk__nn_post { NP_ACT, NP_PRELU, NP_BINARY };
enum hk__nn_alg { NA_ADD, NA_SUB, NA_MUL, NA_DIV, NA_RELU, NA_RELU6,
                  NA_RELU_N1, NA_TANH, NA_NEG, NA_ABS, NA_EXP, NA_MAX, NA_SUM };

typedef struct hk__nn_postop {
	int kind;    /* NP_* */
	int alg;     /* NA_* */
	int tensor;  /* NP_PRELU: slopes (const, C floats); NP_BINARY: src1 */
} hk__nn_postop;

#define HK__NN_MAX_POST 6

typedef struct hk__nn_node {
	int kind;
	int alg;             /* NK_BINARY/UNARY/REDUCE: NA_* */
	int src, src1;       /* activation (or const for src1) tensors      */
	int weights, bias;   /* const tensors (-1 none)                     */
	int dst;
	/* conv/pool geometry (per item, NHWC) */
	int kh, kw, sh, sw, dh, dw;   /* dilation as TFLite factor (1 = none) */
	int pt, pb, pl, pr;           /* padding                              */
	int groups;
	int block;                    /* D2S */
	int half_pixel, align_corners;
	int32_t pads[HK__NN_MAX_DIMS][2]; /* NK_PAD */
	int npost;
	hk__nn_postop post[HK__NN_MAX_POST];
	double flops;                 /* per item                             */
} hk__nn_node;

typedef struct hk__nn_net {
	hk__nn_graph g;
	int nnodes;
	hk__nn_node *node;
	int input;                    /* activation tensor fed by the caller  */
	int noutputs;
	int outputs[HK__NN_MAX_IO];
	double flops;                 /* per item, counted from the graph     */
	char summary[256];            /* "conv 52 (34 fused prelu) ..."       */
} hk__nn_net;

/* Import + constant folding + shape checks + fusion. */
hk_status hk__nn_build(const void *data, size_t len, hk__nn_net *net);
/* The same passes on net->g filled by another importer (net zeroed
 * otherwise); frees the net on error. */
hk_status hk__nn_build_graph(hk__nn_net *net);
void hk__nn_net_free(hk__nn_net *net);

/* Per-item element count of an activation tensor (dims 1..). */
size_t hk__nn_item_count(const hk__nn_tensor *t);


/* ---- TF.js weights manifests (tfjs.c) ---- */

enum { HK__TFJS_F32 = 0, HK__TFJS_I32 = 1 };
enum { HK__TFJS_Q_NONE = 0, HK__TFJS_Q_U8 = 1, HK__TFJS_Q_U16 = 2, HK__TFJS_Q_F16 = 3 };

typedef struct hk__tfjs_weight {
	char name[128];
	int ndim;
	int32_t shape[HK__NN_MAX_DIMS];
	size_t count;        /* elements                                     */
	int dtype;           /* HK__TFJS_F32 / _I32                          */
	int q;               /* HK__TFJS_Q_*: how it is stored               */
	double scale, min;   /* affine quantisation: min + scale * q         */
	int group;           /* weight group (its shards)                    */
	size_t offset, nbytes; /* bytes inside the group's concatenated shards */
} hk__tfjs_weight;

typedef struct hk__tfjs_manifest {
	int ngroups;
	int group_shard0[17];  /* shards of group g: [group_shard0[g], [g+1]) */
	size_t group_bytes[16];
	int nshards;
	char (*shard)[128];    /* plain file names next to the manifest      */
	int nw;
	hk__tfjs_weight *w;
} hk__tfjs_manifest;

/* Parse a manifest (untrusted JSON). HK_E_FORMAT with the byte offset. */
hk_status hk__tfjs_manifest_parse(const char *text, size_t len, hk__tfjs_manifest *m);
void hk__tfjs_manifest_free(hk__tfjs_manifest *m);
/* Dequantise every weight: vals[m->nw] get malloc'd float arrays (freed by
 * the caller, also on error). group_len[g] must equal m->group_bytes[g]. */
hk_status hk__tfjs_decode(const hk__tfjs_manifest *m, const uint8_t *const *group_data,
                          const size_t *group_len, float **vals);
/* dlib's face-recognition ResNet (face-api's weight names) as a graph:
 * input 1x150x150x3 RGB 0..255, output [1,128] raw (not normalised). */
hk_status hk__tfjs_dlib_graph(const hk__tfjs_manifest *m, float **vals, hk__nn_graph *g);
/* The manifest at path and its shards (next to it; each file checked
 * against its pinned sha256 when it has one) -> a built net; sha_hex gets
 * the manifest's sha256. Errors name the file. */
hk_status hk__tfjs_load(const char *manifest_path, hk__nn_net *net, char sha_hex[65]);
/* The same from memory: the manifest and the concatenation of all shards
 * (the fuzz target and tests). */
hk_status hk__tfjs_build_memory(const char *text, size_t tlen, const uint8_t *data, size_t len,
                                hk__nn_net *net);

/* Plain-C reference execution of one node on n items (tail ops, and the
 * fallback). Buffers are NHWC. */
void hk__nn_ref_node(const hk__nn_net *net, const hk__nn_node *nd, size_t n,
                     float *const *buf);

/* PAD node nd (any padded axes, zeros) on n items of es-byte elements:
 * data movement only, so int8 runs keep s8 tensors through it. */
void hk__nn_pad(const hk__nn_net *net, const hk__nn_node *nd, size_t n, const void *src, void *dst,
                size_t es);

/* ---- int8 (int8.c) ---- */

/* Lower-case hex sha256 of data (libsodium). */
void hk__sha256_hex(const void *data, size_t len, char hex[65]);

/* Calibrated activation ranges (absmax per tensor, 0 = none) of the model
 * with this sha256: from the file $HERKEN_INT8_RANGES if it has the model,
 * else from the built-in table. *out (ntensors floats) is the caller's to
 * free. Channel equalisations listed with the ranges are applied to the
 * net's weights. A model whose int8 run failed its accuracy guard is marked
 * so in the table ("model <sha256> guard-fail"), or "guard-vnni" when it
 * holds only where hk__int8_vnni(), "guard-exact" only where
 * hk__int8_exact(): only_guarded skips it.
 * HK_E_NOT_FOUND when there is none. */
hk_status hk__int8_ranges(const char *sha, hk__nn_net *net, int only_guarded, float **out);

/* 1 when oneDNN's int8 convolutions have VNNI here (AVX512-VNNI and up;
 * not under ONEDNN_MAX_CPU_ISA=AVX2). */
int hk__int8_vnni(void);

/* 1 when int8 runs its convolutions on herken's exact s8 x s8 kernels
 * (core/nn/exec_i8.c): without VNNI, where oneDNN halves the weights.
 * HERKEN_INT8_OWN=0|1 forces it. Tensors listed "f <tensor>" in the
 * ranges table (mixed precision, chosen on the calibration chips) stay
 * f32 then. */
int hk__int8_own(void);

/* 1 when the int8 convolutions are exact: VNNI or the own kernels. The
 * table's "guard-exact" mark holds only then. */
int hk__int8_exact(void);

/* NULL when oneDNN can run int8 here, else the ISA it lacks ("AVX2"). */
const char *hk__int8_missing_isa(void);

/* Node b, the only convolution reading node a's output (through an
 * in-place PReLU or not), when the pair can be equalised. 1 yes, 0 no. */
int hk__int8_eq_pair(const hk__nn_net *net, int a, int *b);

typedef struct hk__int8_calib {
	int ntensors;
	float *amax; /* per tensor: range (0 none)                           */
	char **eq;   /* per weights tensor of an equalised convolution: one
	                character k per output channel (times 2^(k/4)), or NULL */
	char **geq;  /* per weights tensor of the first writer of a residual
	                chain: the chain's equalisation, or NULL */
} hk__int8_calib;

/* Calibration over n inputs (fp32 runs on the calling thread): channel
 * equalisation of every eligible pair, then the ranges of the equalised
 * net (the max |value|). */
hk_status hk__int8_calibrate(const void *data, size_t len, const float *input, size_t n,
                             hk__int8_calib *out);
void hk__int8_calib_free(hk__int8_calib *c);

/* hk_model_load_memory on a given topology: synthetic hwloc description or
 * XML file (both NULL: this machine). For tests of the NUMA placement. */
hk_status hk__model_load_topo(const void *data, size_t len, const hk_model_params *p,
                              const char *synthetic, const char *xml, hk_model **out);

#endif
