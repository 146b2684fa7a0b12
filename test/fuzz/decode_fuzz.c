/*
 * decode_fuzz.c — libFuzzer harness for extension/decode.c (the push
 * document decoder), built outside the server with AddressSanitizer and
 * UndefinedBehaviorSanitizer by test/fuzz/build-libfuzzer.sh.
 *
 * Each input is handed to sync_decode_changes() exactly as sync_push hands
 * it a json argument: a buffer of that length, not NUL-terminated. Then:
 *
 * - an ERROR must carry one of the decoder's documented SQLSTATEs (22023 a
 *   wrong shape, 22P02 JSON that does not parse, 54000 too many records) and
 *   a message; 22P02 only for input that PostgreSQL's JSON parser refuses on
 *   its own, and a decoded document only for input it accepts;
 * - a decoded document must hold the invariants sync_push relies on: counts
 *   that match, ncreated <= nrecords, every record with an id of 1..255
 *   bytes, deleted ids likewise, no table name twice, no field key twice and
 *   none of "id", "_status", "_changed" among the fields, every string
 *   NUL-terminated (strlen under ASan), numbers that are valid JSON numbers,
 *   booleans and nulls as their lexemes, object/array values that are
 *   themselves valid JSON of that kind, strings valid UTF-8 when the input
 *   was, and at most pg_sync.max_push_records records;
 * - round trip: the decoded document written back as JSON must decode to
 *   the same structs.
 * A violation aborts (libFuzzer saves the input). Memory palloc'd for an
 * input is freed after it (decode_stubs.c), as the server frees sync_push's
 * memory context, so LeakSanitizer stays on.
 *
 * FUZZ_MAX_RECORDS (environment) sets pg_sync.max_push_records; default 64,
 * small so that inputs of a few kilobytes reach the limit. FUZZ_PRINT=1
 * prints each input's outcome (the error, or the decoded document written
 * back as JSON): `FUZZ_PRINT=1 out/decode_fuzz FILE...`.
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/elog.h"

#include "pg_sync.h"
#include "decode_stubs.h"

int			LLVMFuzzerInitialize(int *argc, char ***argv);
int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "decode_fuzz: invariant violated: %s: ", #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, "\n"); \
			abort(); \
		} \
	} while (0)

/* ------------------------------------------------------------ helpers */

/* Whether PostgreSQL's JSON parser accepts text as a whole document. */
static bool
json_valid(const char *text, size_t len)
{
	JsonLexContext *lex = makeJsonLexContextCstringLen((char *) text, (int) len, PG_UTF8, true);

	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

static bool
utf8_valid(const char *s, size_t len)
{
	return (size_t) pg_encoding_verifymbstr(PG_UTF8, s, (int) len) == len;
}

/*
 * How deeply objects and arrays nest in text (brackets inside strings not
 * counted). The frontend parser recurses once per level without the server's
 * check_stack_depth(); the server refuses a document nested 20,000 deep with
 * 54001 (stack depth limit exceeded, max_stack_depth 2MB) before sync_push
 * runs, as json_in parses it first, so deeper inputs are skipped here.
 */
#define MAX_NESTING 20000

static int
nesting_depth(const char *s, size_t len)
{
	int			depth = 0,
				max = 0;
	bool		in_string = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > max)
				max = depth;
		}
		else if (c == ']' || c == '}')
			depth--;
	}
	return max;
}

/* A growing malloc'd buffer for the round trip. */
typedef struct Buf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} Buf;

static void
buf_add(Buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap)
	{
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			abort();
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
buf_str(Buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_json_string(Buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;
		char		esc[8];

		if (c == '"' || c == '\\')
		{
			esc[0] = '\\';
			esc[1] = (char) c;
			buf_add(b, esc, 2);
		}
		else if (c < 0x20)
		{
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			buf_add(b, esc, 6);
		}
		else
			buf_add(b, (const char *) &c, 1);
	}
	buf_add(b, "\"", 1);
}

/* The decoded document written back as JSON (canonical: created, updated, deleted). */
static void
encode_changes(Buf *b, const SyncChanges *ch)
{
	int			i,
				j,
				k;

	buf_str(b, "{");
	for (i = 0; i < ch->ntables; i++)
	{
		const SyncTableChanges *tc = &ch->tables[i];

		if (i > 0)
			buf_str(b, ",");
		buf_json_string(b, tc->name);
		buf_str(b, ":{\"created\":[");
		for (j = 0; j < tc->nrecords; j++)
		{
			const SyncRecord *r = &tc->records[j];

			if (j == tc->ncreated)
				buf_str(b, "],\"updated\":[");
			else if (j > 0)
				buf_str(b, ",");
			buf_str(b, "{\"id\":");
			buf_json_string(b, r->id);
			for (k = 0; k < r->nfields; k++)
			{
				const SyncField *f = &r->fields[k];

				buf_str(b, ",");
				buf_json_string(b, f->key);
				buf_str(b, ":");
				if (f->value.type == SV_STRING)
					buf_json_string(b, f->value.str);
				else
					buf_str(b, f->value.str);	/* number, lexeme or compound text as sent */
			}
			buf_str(b, "}");
		}
		if (tc->ncreated == tc->nrecords)
			buf_str(b, "],\"updated\":[");
		buf_str(b, "],\"deleted\":[");
		for (j = 0; j < tc->ndeleted; j++)
		{
			if (j > 0)
				buf_str(b, ",");
			buf_json_string(b, tc->deleted[j]);
		}
		buf_str(b, "]}");
	}
	buf_str(b, "}");
}

/* ------------------------------------------------------------ invariants */

static void
check_id(const char *what, const char *id, bool utf8)
{
	size_t		len;

	CHECK(id != NULL, "%s without an id", what);
	len = strlen(id);
	CHECK(len >= 1 && len <= SYNC_MAX_ID_LEN, "%s id of %zu bytes", what, len);
	if (utf8)
		CHECK(utf8_valid(id, len), "%s id is not valid UTF-8", what);
}

static void
check_value(const SyncField *f, bool utf8)
{
	const char *s = f->value.str;
	size_t		len;

	CHECK(f->value.type >= SV_NULL && f->value.type <= SV_COMPOUND, "field \"%s\" of type %d", f->key, f->value.type);
	CHECK(s != NULL, "field \"%s\" has no text", f->key);
	len = strlen(s);
	switch (f->value.type)
	{
		case SV_NULL:
			CHECK(strcmp(s, "null") == 0, "null field \"%s\" holds \"%s\"", f->key, s);
			break;
		case SV_BOOL:
			CHECK(strcmp(s, "true") == 0 || strcmp(s, "false") == 0, "boolean field \"%s\" holds \"%s\"", f->key, s);
			CHECK(f->value.bval == (s[0] == 't'), "boolean field \"%s\": bval %d for \"%s\"", f->key, f->value.bval, s);
			break;
		case SV_NUMBER:
			CHECK(len > 0 && IsValidJsonNumber(s, (int) len), "number field \"%s\" holds \"%s\"", f->key, s);
			break;
		case SV_COMPOUND:
			CHECK(len >= 2 && ((s[0] == '{' && s[len - 1] == '}') || (s[0] == '[' && s[len - 1] == ']')),
				  "compound field \"%s\" holds \"%.80s\"", f->key, s);
			CHECK(json_valid(s, len), "compound field \"%s\" is not valid JSON: \"%.80s\"", f->key, s);
			if (utf8)
				CHECK(utf8_valid(s, len), "compound field \"%s\" is not valid UTF-8", f->key);
			break;
		case SV_STRING:
			if (utf8)
				CHECK(utf8_valid(s, len), "string field \"%s\" is not valid UTF-8", f->key);
			break;
	}
}

static int
cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void
check_changes(const SyncChanges *ch, bool utf8)
{
	int			i,
				j,
				k,
				m;
	size_t		total = 0;

	CHECK(ch != NULL, "no result");
	CHECK(ch->ntables >= 0, "%d tables", ch->ntables);
	CHECK(ch->ntables == 0 || ch->tables != NULL, "tables missing");
	for (i = 0; i < ch->ntables; i++)
	{
		const SyncTableChanges *tc = &ch->tables[i];

		CHECK(tc->name != NULL, "table %d has no name", i);
		(void) strlen(tc->name);
		if (utf8)
			CHECK(utf8_valid(tc->name, strlen(tc->name)), "table name is not valid UTF-8");
		CHECK(tc->ncreated >= 0 && tc->ncreated <= tc->nrecords,
			  "table \"%s\": ncreated %d, nrecords %d", tc->name, tc->ncreated, tc->nrecords);
		CHECK(tc->nrecords == 0 || tc->records != NULL, "table \"%s\": records missing", tc->name);
		CHECK(tc->ndeleted >= 0, "table \"%s\": ndeleted %d", tc->name, tc->ndeleted);
		CHECK(tc->ndeleted == 0 || tc->deleted != NULL, "table \"%s\": deleted missing", tc->name);
		for (j = 0; j < tc->nrecords; j++)
		{
			const SyncRecord *r = &tc->records[j];

			check_id("record", r->id, utf8);
			CHECK(r->nfields >= 0, "record \"%s\": nfields %d", r->id, r->nfields);
			CHECK(r->nfields == 0 || r->fields != NULL, "record \"%s\": fields missing", r->id);
			for (k = 0; k < r->nfields; k++)
			{
				const SyncField *f = &r->fields[k];

				CHECK(f->key != NULL, "record \"%s\": field %d has no key", r->id, k);
				(void) strlen(f->key);
				CHECK(strcmp(f->key, "id") != 0 && strcmp(f->key, "_status") != 0 &&
					  strcmp(f->key, "_changed") != 0, "record \"%s\": field \"%s\" kept", r->id, f->key);
				for (m = 0; m < k; m++)
					CHECK(strcmp(f->key, r->fields[m].key) != 0, "record \"%s\": key \"%s\" twice", r->id, f->key);
				check_value(f, utf8);
			}
		}
		for (j = 0; j < tc->ndeleted; j++)
			check_id("deleted", tc->deleted[j], utf8);
		total += (size_t) tc->nrecords + (size_t) tc->ndeleted;
	}
	CHECK(total <= (size_t) sync_max_records, "%zu records, limit %d", total, sync_max_records);

	/* no table twice (sorted: documents may name many tables) */
	if (ch->ntables > 1)
	{
		const char **names = malloc(sizeof(char *) * ch->ntables);

		for (i = 0; i < ch->ntables; i++)
			names[i] = ch->tables[i].name;
		qsort(names, ch->ntables, sizeof(char *), cmp_cstr);
		for (i = 1; i < ch->ntables; i++)
			CHECK(strcmp(names[i - 1], names[i]) != 0, "table \"%s\" twice", names[i]);
		free(names);
	}
}

static void
compare_changes(const SyncChanges *a, const SyncChanges *b)
{
	int			i,
				j,
				k;

	CHECK(a->ntables == b->ntables, "round trip: %d tables, then %d", a->ntables, b->ntables);
	for (i = 0; i < a->ntables; i++)
	{
		const SyncTableChanges *x = &a->tables[i],
				   *y = &b->tables[i];

		CHECK(strcmp(x->name, y->name) == 0, "round trip: table \"%s\", then \"%s\"", x->name, y->name);
		CHECK(x->nrecords == y->nrecords && x->ncreated == y->ncreated && x->ndeleted == y->ndeleted,
			  "round trip: table \"%s\" counts differ", x->name);
		for (j = 0; j < x->nrecords; j++)
		{
			const SyncRecord *r = &x->records[j],
					   *s = &y->records[j];

			CHECK(strcmp(r->id, s->id) == 0, "round trip: record \"%s\", then \"%s\"", r->id, s->id);
			CHECK(r->nfields == s->nfields, "round trip: record \"%s\": %d fields, then %d", r->id, r->nfields, s->nfields);
			for (k = 0; k < r->nfields; k++)
			{
				CHECK(strcmp(r->fields[k].key, s->fields[k].key) == 0, "round trip: record \"%s\": key", r->id);
				CHECK(r->fields[k].value.type == s->fields[k].value.type, "round trip: record \"%s\": type", r->id);
				CHECK(r->fields[k].value.bval == s->fields[k].value.bval, "round trip: record \"%s\": bval", r->id);
				CHECK(strcmp(r->fields[k].value.str, s->fields[k].value.str) == 0,
					  "round trip: record \"%s\" field \"%s\": \"%.60s\", then \"%.60s\"",
					  r->id, r->fields[k].key, r->fields[k].value.str, s->fields[k].value.str);
			}
		}
		for (j = 0; j < x->ndeleted; j++)
			CHECK(strcmp(x->deleted[j], y->deleted[j]) == 0, "round trip: deleted id");
	}
}

/* ------------------------------------------------------------ the harness */

/* sync_decode_changes with ERROR caught: NULL and fuzz_error set on error. */
static SyncChanges *
decode(const char *text, size_t len)
{
	sigjmp_buf	jb;
	SyncChanges *volatile result = NULL;

	fuzz_error.active = false;
	if (sigsetjmp(jb, 0) == 0)
	{
		fuzz_error_jmp = &jb;
		result = sync_decode_changes(text, len);
	}
	fuzz_error_jmp = NULL;
	return result;
}

/* the five characters of a SQLSTATE (the server's unpack_sql_state) */
static const char *
sqlstate_text(int code)
{
	static char buf[6];
	int			i;

	for (i = 0; i < 5; i++)
	{
		buf[i] = PGUNSIXBIT(code);
		code >>= 6;
	}
	buf[5] = '\0';
	return buf;
}

static bool
sqlstate_is(int code, const char *s)
{
	return code == MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4]);
}

static bool print_outcome = false;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *m = getenv("FUZZ_MAX_RECORDS");

	print_outcome = getenv("FUZZ_PRINT") != NULL;

	sync_max_records = m ? atoi(m) : 64;
	if (sync_max_records < 1)
		sync_max_records = 1;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	bool		valid,
				utf8;
	SyncChanges *changes;

	if (size > 1024 * 1024)
		return -1;
	if (nesting_depth((const char *) data, size) > MAX_NESTING)
		return -1;				/* the server answers 54001 before decoding */
	/* exactly the input's bytes, no terminator: reads past it are caught */
	text = malloc(size ? size : 1);
	memcpy(text, data, size);

	valid = json_valid(text, size);
	utf8 = utf8_valid(text, size);

	changes = decode(text, size);
	if (changes == NULL)
	{
		int			code = fuzz_error.sqlerrcode;

		CHECK(fuzz_error.active, "decode returned NULL without an error");
		CHECK(sqlstate_is(code, "22023") || sqlstate_is(code, "22P02") || sqlstate_is(code, "54000"),
			  "SQLSTATE %s: %s", sqlstate_text(code), fuzz_error.message);
		CHECK(fuzz_error.message[0] != '\0', "error without a message");
		CHECK(!sqlstate_is(code, "22P02") || !valid, "22P02 for JSON the parser accepts: %s", fuzz_error.message);
		CHECK(strncmp(fuzz_error.message, "invalid changes document: ", 26) == 0 ||
			  strncmp(fuzz_error.message, "push carries more than ", 23) == 0,
			  "unexpected message: %s", fuzz_error.message);
		if (print_outcome)
			fprintf(stderr, "outcome: ERROR %s: %s%s%s\n", sqlstate_text(code), fuzz_error.message,
					fuzz_error.detail[0] ? " DETAIL: " : "", fuzz_error.detail);
	}
	else
	{
		Buf			b = {0};
		SyncChanges *again;

		CHECK(valid, "a document was decoded from JSON the parser refuses");
		check_changes(changes, utf8);

		encode_changes(&b, changes);
		again = decode(b.data, b.len);
		CHECK(again != NULL, "round trip: the re-encoded document fails (%s: %s): %.200s",
			  sqlstate_text(fuzz_error.sqlerrcode), fuzz_error.message, b.data);
		compare_changes(changes, again);
		if (print_outcome)
			fprintf(stderr, "outcome: decoded %d tables: %.2000s\n", changes->ntables, b.data);
		free(b.data);
	}

	fuzz_mem_reset();
	free(text);
	return 0;
}
