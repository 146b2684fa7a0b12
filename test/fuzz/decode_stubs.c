/*
 * decode_stubs.c — the few pieces of the PostgreSQL server that
 * extension/decode.c uses, for building it outside the server (libFuzzer):
 *
 * - memory: palloc, palloc0, repalloc, pfree, pstrdup, pnstrdup. Every chunk
 *   is its own malloc() (so AddressSanitizer puts red zones around each one,
 *   as it would not around the blocks of an arena) and is linked into one
 *   list; fuzz_mem_reset() frees all that is left after an input, which is
 *   what the server does when it deletes sync_push's memory context. Leak
 *   detection therefore stays on: anything malloc'd outside palloc and not
 *   freed is a real leak. libpgcommon's frontend JSON parser, psprintf and
 *   StringInfo call these same functions (the archive's fe_memutils.o, which
 *   defines them too, is never pulled in because every symbol it would
 *   provide is defined here first).
 * - ereport: errstart/errfinish/errcode/errmsg/errdetail/errhint. An ERROR
 *   formats its messages (so a bad argument is caught by ASan, as it would
 *   crash the server) and longjmps back to the harness, which checks the
 *   SQLSTATE.
 * - GetDatabaseEncoding() (UTF8, like a default cluster), the setting
 *   sync_max_records (pg_sync.max_push_records) and sync_reserved_field()
 *   (a copy of extension/values.c's).
 * - json_errdetail(): PostgreSQL 15 builds it into the server only (the
 *   frontend libpgcommon.a has pg_parse_json and makeJsonLexContextCstringLen
 *   but not it), so a copy of the server's function is at the end.
 *
 * Anything the server would turn into an internal error (XX000), such as a
 * palloc larger than MaxAllocSize or pfree of a pointer palloc never returned,
 * aborts: libFuzzer then saves the input as a crash.
 */
#include "postgres.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "pg_sync.h"
#include "decode_stubs.h"

/* pg_sync.max_push_records; the harness sets it */
int			sync_max_records = 50000;

/*
 * extension/values.c's sync_reserved_field(), which decode.c calls since
 * 2b2e906: values.c is all server code (fmgr, numeric, dates), so this is a
 * copy. Keep it in step with values.c (or move the function into decode.c or
 * pg_sync.h, and this copy can go).
 */
bool
sync_reserved_field(const char *name)
{
	return strcmp(name, "_status") == 0 || strcmp(name, "_changed") == 0;
}

int
GetDatabaseEncoding(void)
{
	return PG_UTF8;
}

/* ---------------------------------------------------------------- memory */

typedef struct Chunk
{
	struct Chunk *prev;
	struct Chunk *next;
	size_t		size;
	uint64		magic;
} Chunk;						/* 32 bytes: keeps malloc's 16-byte alignment */

#define CHUNK_MAGIC	UINT64CONST(0x70675f73796e6321)
#define CHUNK_FREED	UINT64CONST(0x646561646465616c)

static Chunk *chunks = NULL;
static size_t nchunks = 0;
static size_t live_bytes = 0;

size_t		fuzz_mem_peak = 0;

static void
fatal(const char *what)
{
	fprintf(stderr, "decode_stubs: %s\n", what);
	abort();
}

static void
link_chunk(Chunk *c, size_t size)
{
	c->size = size;
	c->magic = CHUNK_MAGIC;
	c->prev = NULL;
	c->next = chunks;
	if (chunks)
		chunks->prev = c;
	chunks = c;
	nchunks++;
	live_bytes += size;
	if (live_bytes > fuzz_mem_peak)
		fuzz_mem_peak = live_bytes;
}

static void
unlink_chunk(Chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		chunks = c->next;
	if (c->next)
		c->next->prev = c->prev;
	nchunks--;
	live_bytes -= c->size;
}

static Chunk *
chunk_of(void *p, const char *caller)
{
	Chunk	   *c;

	if (p == NULL)
	{
		fprintf(stderr, "decode_stubs: %s(NULL)\n", caller);
		abort();
	}
	c = (Chunk *) ((char *) p - sizeof(Chunk));
	if (c->magic != CHUNK_MAGIC)
	{
		fprintf(stderr, "decode_stubs: %s of a pointer palloc did not return (or freed twice)\n", caller);
		abort();
	}
	return c;
}

void *
palloc(Size size)
{
	Chunk	   *c;

	if (!AllocSizeIsValid(size))
		fatal("invalid memory alloc request size (the server raises XX000)");
	c = malloc(sizeof(Chunk) + size);
	if (c == NULL)
		fatal("out of memory");
	link_chunk(c, size);
	return c + 1;
}

void *
palloc0(Size size)
{
	void	   *p = palloc(size);

	memset(p, 0, size);
	return p;
}

void *
palloc_extended(Size size, int flags)
{
	void	   *p = palloc(size);

	if (flags & MCXT_ALLOC_ZERO)
		memset(p, 0, size);
	return p;
}

void *
repalloc(void *pointer, Size size)
{
	Chunk	   *c = chunk_of(pointer, "repalloc");
	Chunk	   *n;

	if (!AllocSizeIsValid(size))
		fatal("invalid memory alloc request size in repalloc (the server raises XX000)");
	unlink_chunk(c);
	c->magic = CHUNK_FREED;
	n = realloc(c, sizeof(Chunk) + size);
	if (n == NULL)
		fatal("out of memory");
	link_chunk(n, size);
	return n + 1;
}

void
pfree(void *pointer)
{
	Chunk	   *c = chunk_of(pointer, "pfree");

	unlink_chunk(c);
	c->magic = CHUNK_FREED;
	free(c);
}

char *
pstrdup(const char *in)
{
	size_t		len = strlen(in);
	char	   *out = palloc(len + 1);

	memcpy(out, in, len + 1);
	return out;
}

char *
pnstrdup(const char *in, Size len)
{
	char	   *out;

	len = strnlen(in, len);
	out = palloc(len + 1);
	memcpy(out, in, len);
	out[len] = '\0';
	return out;
}

void
fuzz_mem_reset(void)
{
	while (chunks)
	{
		Chunk	   *c = chunks;

		unlink_chunk(c);
		c->magic = CHUNK_FREED;
		free(c);
	}
	if (nchunks != 0 || live_bytes != 0)
		fatal("chunk accounting is off");
	fuzz_mem_peak = 0;
}

size_t
fuzz_mem_live(void)
{
	return live_bytes;
}

/* --------------------------------------------------------------- ereport */

FuzzError	fuzz_error;
sigjmp_buf *fuzz_error_jmp = NULL;

static int	cur_elevel;

static void
format_into(char *dst, size_t cap, const char *fmt, va_list ap)
{
	/* pg_vsnprintf (port.h maps vsnprintf to it): the server's own formatter */
	vsnprintf(dst, cap, fmt, ap);
}

bool
errstart(int elevel, const char *domain)
{
	if (elevel < ERROR)
		return false;			/* decode.c raises nothing below ERROR */
	if (fuzz_error.active)
		fatal("ereport inside ereport");
	memset(&fuzz_error, 0, sizeof(fuzz_error));
	fuzz_error.active = true;
	fuzz_error.sqlerrcode = ERRCODE_INTERNAL_ERROR;	/* the server's default */
	cur_elevel = elevel;
	return true;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fuzz_error.filename = filename;
	fuzz_error.lineno = lineno;
	if (cur_elevel < ERROR)
		return;
	if (fuzz_error_jmp == NULL)
		fatal("ERROR raised outside of the harness");
	siglongjmp(*fuzz_error_jmp, 1);
}

int
errcode(int sqlerrcode)
{
	fuzz_error.sqlerrcode = sqlerrcode;
	return 0;
}

int
errmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	format_into(fuzz_error.message, sizeof(fuzz_error.message), fmt, ap);
	va_end(ap);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	format_into(fuzz_error.message, sizeof(fuzz_error.message), fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	format_into(fuzz_error.detail, sizeof(fuzz_error.detail), fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	format_into(fuzz_error.detail, sizeof(fuzz_error.detail), fmt, ap);
	va_end(ap);
	return 0;
}

int
errhint(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	format_into(fuzz_error.hint, sizeof(fuzz_error.hint), fmt, ap);
	va_end(ap);
	return 0;
}

/* ---------------------------------------------------------- interrupts */

/* decode.c lets a cancel through between table entries and records: none here */
volatile sig_atomic_t InterruptPending = false;

void
ProcessInterrupts(void)
{
}

/* ------------------------------------------------------- json_errdetail */

/*
 * PostgreSQL 15 builds json_errdetail() into the server only: the frontend
 * libpgcommon.a has no such symbol. This is the server's version (15's
 * src/common/jsonapi.c, without translation): the detail message of a parse
 * error, quoting the offending token from the input.
 */
char *
json_errdetail(JsonParseErrorType error, JsonLexContext *lex)
{
	int			toklen = lex->token_terminator - lex->token_start;

	switch (error)
	{
		case JSON_SUCCESS:
			/* fall through to the error code after switch */
			break;
		case JSON_ESCAPING_INVALID:
			return psprintf("Escape sequence \"\\%.*s\" is invalid.",
							toklen, lex->token_start);
		case JSON_ESCAPING_REQUIRED:
			return psprintf("Character with value 0x%02x must be escaped.",
							(unsigned char) *(lex->token_terminator));
		case JSON_EXPECTED_END:
			return psprintf("Expected end of input, but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_ARRAY_FIRST:
			return psprintf("Expected array element or \"]\", but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_ARRAY_NEXT:
			return psprintf("Expected \",\" or \"]\", but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_COLON:
			return psprintf("Expected \":\", but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_JSON:
			return psprintf("Expected JSON value, but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_MORE:
			return "The input string ended unexpectedly.";
		case JSON_EXPECTED_OBJECT_FIRST:
			return psprintf("Expected string or \"}\", but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_OBJECT_NEXT:
			return psprintf("Expected \",\" or \"}\", but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_EXPECTED_STRING:
			return psprintf("Expected string, but found \"%.*s\".",
							toklen, lex->token_start);
		case JSON_INVALID_TOKEN:
			return psprintf("Token \"%.*s\" is invalid.",
							toklen, lex->token_start);
		case JSON_UNICODE_CODE_POINT_ZERO:
			return "\\u0000 cannot be converted to text.";
		case JSON_UNICODE_ESCAPE_FORMAT:
			return "\"\\u\" must be followed by four hexadecimal digits.";
		case JSON_UNICODE_HIGH_ESCAPE:
			/* note: this case is only reachable in frontend not backend */
			return "Unicode escape values cannot be used for code point values above 007F when the encoding is not UTF8.";
		case JSON_UNICODE_HIGH_SURROGATE:
			return "Unicode high surrogate must not follow a high surrogate.";
		case JSON_UNICODE_LOW_SURROGATE:
			return "Unicode low surrogate must follow a high surrogate.";
	}
	fatal("unexpected json parse error type");
	return NULL;
}
