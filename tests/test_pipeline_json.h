/* A small bounds-checked JSON reader for the test oracles (the golden JSON files).
 * Test code only: parses the whole text into a flat node array. */
#ifndef HK_TEST_PIPELINE_JSON_H
#define HK_TEST_PIPELINE_JSON_H

#include <stddef.h>

typedef enum { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ } tj_type;

typedef struct tj_node {
	tj_type type;
	double num;
	const char *str; /* into the text, not NUL-terminated (no unescaping) */
	size_t len;      /* string length, or child count for arrays/objects */
	size_t next;     /* index of the next sibling, 0 when last */
	size_t child;    /* first child (for objects: key string, then value) */
} tj_node;

typedef struct tj_doc {
	char *text;
	tj_node *nodes;
	size_t n, cap;
} tj_doc;

/* Parse a file; 0 on success, -1 on I/O or syntax error. */
int tj_load(tj_doc *d, const char *path);
int tj_parse(tj_doc *d, const char *text, size_t len);
void tj_free(tj_doc *d);

/* Navigation; every function returns NULL when absent or of the wrong type. */
const tj_node *tj_root(const tj_doc *d);
const tj_node *tj_get(const tj_doc *d, const tj_node *obj, const char *key);
const tj_node *tj_at(const tj_doc *d, const tj_node *arr, size_t i);
/* Number at a path of keys/indices: tj_num_path(d, n, "faces", ...) is not
 * provided; chain tj_get/tj_at. Returns def when not a number. */
double tj_num(const tj_node *n, double def);
int tj_streq(const tj_node *n, const char *s);

#endif
