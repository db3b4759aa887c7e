/* Bounds-checked JSON reader for test oracles (see test_pipeline_json.h). */
#include "test_pipeline_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tj_parser {
	tj_doc *d;
	const char *s;
	size_t pos, len;
	int depth;
} tj_parser;

static void skip_ws(tj_parser *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
		p->pos++;
}

static long new_node(tj_parser *p, tj_type t)
{
	tj_doc *d = p->d;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 1024;
		tj_node *nn = realloc(d->nodes, cap * sizeof *nn);
		if (!nn)
			return -1;
		d->nodes = nn;
		d->cap = cap;
	}
	memset(&d->nodes[d->n], 0, sizeof d->nodes[0]);
	d->nodes[d->n].type = t;
	return (long)d->n++;
}

static long parse_value(tj_parser *p);

static long parse_string(tj_parser *p)
{
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return -1;
	size_t start = ++p->pos;
	while (p->pos < p->len && p->s[p->pos] != '"') {
		if (p->s[p->pos] == '\\')
			p->pos++;
		p->pos++;
	}
	if (p->pos >= p->len)
		return -1;
	long i = new_node(p, TJ_STR);
	if (i < 0)
		return -1;
	p->d->nodes[i].str = p->s + start;
	p->d->nodes[i].len = p->pos - start;
	p->pos++;
	return i;
}

/* Parse members until `close`; objects alternate key and value. */
static long parse_container(tj_parser *p, tj_type t, char close)
{
	long me = new_node(p, t);
	if (me < 0 || ++p->depth > 64)
		return -1;
	p->pos++;
	long prev = -1;
	size_t count = 0;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		p->depth--;
		return me;
	}
	for (;;) {
		skip_ws(p);
		long first;
		if (t == TJ_OBJ) {
			first = parse_string(p);
			skip_ws(p);
			if (first < 0 || p->pos >= p->len || p->s[p->pos] != ':')
				return -1;
			p->pos++;
			skip_ws(p);
			long v = parse_value(p);
			if (v < 0)
				return -1;
			p->d->nodes[first].next = (size_t)v;
			if (prev >= 0)
				p->d->nodes[prev].next = (size_t)first;
			else
				p->d->nodes[me].child = (size_t)first;
			prev = v;
		} else {
			first = parse_value(p);
			if (first < 0)
				return -1;
			if (prev >= 0)
				p->d->nodes[prev].next = (size_t)first;
			else
				p->d->nodes[me].child = (size_t)first;
			prev = first;
		}
		count++;
		skip_ws(p);
		if (p->pos >= p->len)
			return -1;
		if (p->s[p->pos] == ',') {
			p->pos++;
			continue;
		}
		if (p->s[p->pos] != close)
			return -1;
		p->pos++;
		break;
	}
	p->d->nodes[me].len = count;
	p->depth--;
	return me;
}

static long parse_value(tj_parser *p)
{
	skip_ws(p);
	if (p->pos >= p->len)
		return -1;
	char c = p->s[p->pos];
	if (c == '{')
		return parse_container(p, TJ_OBJ, '}');
	if (c == '[')
		return parse_container(p, TJ_ARR, ']');
	if (c == '"')
		return parse_string(p);
	static const struct { const char *w; tj_type t; double v; } lits[] = {
		{"true", TJ_BOOL, 1}, {"false", TJ_BOOL, 0}, {"null", TJ_NULL, 0}};
	for (size_t k = 0; k < 3; k++) {
		size_t l = strlen(lits[k].w);
		if (p->len - p->pos >= l && !memcmp(p->s + p->pos, lits[k].w, l)) {
			long i = new_node(p, lits[k].t);
			if (i >= 0)
				p->d->nodes[i].num = lits[k].v;
			p->pos += l;
			return i;
		}
	}
	/* Number: copy a bounded token and let strtod validate it. */
	char buf[64];
	size_t l = 0;
	while (p->pos + l < p->len && l < sizeof buf - 1 &&
	       strchr("+-0123456789.eE", p->s[p->pos + l]) && p->s[p->pos + l])
		l++;
	if (l == 0)
		return -1;
	memcpy(buf, p->s + p->pos, l);
	buf[l] = 0;
	char *end;
	double v = strtod(buf, &end);
	if (end != buf + l)
		return -1;
	long i = new_node(p, TJ_NUM);
	if (i >= 0)
		p->d->nodes[i].num = v;
	p->pos += l;
	return i;
}

int tj_parse(tj_doc *d, const char *text, size_t len)
{
	memset(d, 0, sizeof *d);
	tj_parser p = {d, text, 0, len, 0};
	long r = parse_value(&p);
	skip_ws(&p);
	if (r != 0 || p.pos != len) {
		free(d->nodes);
		d->nodes = NULL;
		return -1;
	}
	return 0;
}

int tj_load(tj_doc *d, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *t = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
	if (!t || fread(t, 1, (size_t)sz, f) != (size_t)sz) {
		free(t);
		fclose(f);
		return -1;
	}
	fclose(f);
	t[sz] = 0;
	if (tj_parse(d, t, (size_t)sz)) {
		free(t);
		return -1;
	}
	d->text = t;
	return 0;
}

void tj_free(tj_doc *d)
{
	free(d->text);
	free(d->nodes);
	memset(d, 0, sizeof *d);
}

const tj_node *tj_root(const tj_doc *d)
{
	return d->n ? &d->nodes[0] : NULL;
}

const tj_node *tj_get(const tj_doc *d, const tj_node *obj, const char *key)
{
	if (!obj || obj->type != TJ_OBJ || obj->len == 0)
		return NULL;
	size_t k = obj->child;
	for (size_t i = 0; i < obj->len; i++) {
		const tj_node *kn = &d->nodes[k], *vn = &d->nodes[kn->next];
		if (tj_streq(kn, key))
			return vn;
		k = vn->next;
	}
	return NULL;
}

const tj_node *tj_at(const tj_doc *d, const tj_node *arr, size_t i)
{
	if (!arr || arr->type != TJ_ARR || i >= arr->len)
		return NULL;
	size_t k = arr->child;
	while (i--)
		k = d->nodes[k].next;
	return &d->nodes[k];
}

double tj_num(const tj_node *n, double def)
{
	return n && n->type == TJ_NUM ? n->num : def;
}

int tj_streq(const tj_node *n, const char *s)
{
	return n && n->type == TJ_STR && n->len == strlen(s) && !memcmp(n->str, s, n->len);
}
