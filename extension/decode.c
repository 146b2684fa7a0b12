/*
 * decode.c — a push's changes document to the C structs of pg_sync.h,
 * checking its shape on the way:
 *
 *   {"<table>": {"created": [record...], "updated": [record...], "deleted": ["id"...]}}
 *
 * The document goes through PostgreSQL's own JSON parser (common/jsonapi.h)
 * in one streaming pass, driven by the semantic actions below: no tree is
 * built, strings arrive unescaped in the database encoding, and a number
 * keeps the exact text the client wrote (a value never passes through a
 * double: numeric and bigint columns get what was sent). An object or array
 * value of a record keeps its text as sent. Everything is palloc'd in the
 * caller's memory context.
 *
 * This file uses nothing of the server but palloc, ereport and the JSON
 * parser, so test/fuzz builds it outside the server, with libpgcommon's
 * parser, for libFuzzer.
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "pg_sync.h"

/* Where in the document the parser is (by nesting depth). */
enum
{
	AT_TOP = 0,					/* before the root */
	AT_TABLES = 1,				/* in the root object: table names */
	AT_ENTRY = 2,				/* in a table entry: created / updated / deleted */
	AT_LIST = 3,				/* in one of those arrays */
	AT_RECORD = 4				/* in a record: its fields */
};

/* A growing array of records. */
typedef struct RecordList
{
	SyncRecord *items;
	int			n;
	int			cap;
} RecordList;

typedef struct DecodeState
{
	JsonLexContext *lex;
	SyncChanges *out;
	int			tcap;
	SyncTableChanges *tc;		/* the table entry being read */
	RecordList	lists[2];		/* its created and updated records */
	int			dcap;			/* capacity of tc->deleted */
	int			list;			/* 0 created, 1 updated, 2 deleted, -1 none yet */
	int			seen_lists;		/* bit per list already in the entry */
	size_t		index;			/* position in the current list */
	int			depth;			/* objects and arrays open */
	SyncRecord *rec;			/* the record being read */
	int			fcap;
	bool		has_id;
	char	   *field;			/* the record field whose value comes next */
	const char *compound_start;	/* where an object/array field value began */
	size_t		total;			/* records in the document so far */
	char	  **names;			/* the table names so far: an open-addressing set */
	uint32		nslots;			/* its size, a power of two */
} DecodeState;

static const char *const list_names[] = {"created", "updated", "deleted"};

/* Raises a shape error for the current place in the document. */
static void
shape_error(DecodeState *st, const char *msg)
{
	if (st->tc && st->list >= 0 && st->depth >= AT_LIST)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid changes document: %s", msg),
				 errdetail("At changes.%s.%s[%zu].", st->tc->name, list_names[st->list], st->index)));
	if (st->tc)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid changes document: %s", msg),
				 errdetail("At changes.%s.", st->tc->name)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid changes document: %s", msg)));
}

/* Checks a record id: a non-empty string of at most SYNC_MAX_ID_LEN bytes. */
static char *
check_id(DecodeState *st, char *token, JsonTokenType type)
{
	size_t		len;

	if (type != JSON_TOKEN_STRING)
		shape_error(st, "record id must be a string");
	len = strlen(token);
	if (len == 0)
		shape_error(st, "record id must not be empty");
	if (len > SYNC_MAX_ID_LEN)
		shape_error(st, psprintf("record id is longer than %d bytes", SYNC_MAX_ID_LEN));
	return token;
}

/* Counts one more record against pg_sync.max_push_records. */
static void
count_record(DecodeState *st)
{
	if (++st->total > (size_t) sync_max_records)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("push carries more than %d records", sync_max_records),
				 errhint("Raise pg_sync.max_push_records or push in smaller batches.")));
}

/* qsort comparator of fields by key */
static int
cmp_field(const void *a, const void *b)
{
	return strcmp(((const SyncField *) a)->key, ((const SyncField *) b)->key);
}

/* A record is complete: it needs an id, and no key twice. */
static void
end_record(DecodeState *st)
{
	SyncRecord *rec = st->rec;
	int			i;

	if (!st->has_id)
		shape_error(st, "record has no \"id\"");
	if (rec->nfields > 1)
	{
		SyncField  *sorted = palloc(sizeof(SyncField) * rec->nfields);

		memcpy(sorted, rec->fields, sizeof(SyncField) * rec->nfields);
		qsort(sorted, rec->nfields, sizeof(SyncField), cmp_field);
		for (i = 1; i < rec->nfields; i++)
			if (strcmp(sorted[i - 1].key, sorted[i].key) == 0)
				shape_error(st, psprintf("record has the key \"%s\" twice", sorted[i].key));
		pfree(sorted);
	}
	st->rec = NULL;
}

/* Stores a field value of the current record (a reserved name is dropped). */
static void
add_field(DecodeState *st, SyncValueType type, char *str)
{
	SyncRecord *rec = st->rec;
	SyncField  *f;

	if (sync_reserved_field(st->field))
		return;
	if (rec->nfields == st->fcap)
	{
		st->fcap *= 2;
		rec->fields = repalloc(rec->fields, sizeof(SyncField) * st->fcap);
	}
	f = &rec->fields[rec->nfields++];
	f->key = st->field;
	f->value.type = type;
	f->value.str = str;
	f->value.bval = type == SV_BOOL && str[0] == 't';
}

/* A table entry is complete: created records first, then updated ones. */
static void
end_entry(DecodeState *st)
{
	SyncTableChanges *tc = st->tc;
	RecordList *c = &st->lists[0],
			   *u = &st->lists[1];

	tc->ncreated = c->n;
	tc->nrecords = c->n + u->n;
	tc->records = palloc(sizeof(SyncRecord) * (tc->nrecords + 1));
	if (c->n > 0)
		memcpy(tc->records, c->items, sizeof(SyncRecord) * c->n);
	if (u->n > 0)
		memcpy(tc->records + c->n, u->items, sizeof(SyncRecord) * u->n);
	st->tc = NULL;
}

static SYNC_JSON_ACTION
on_object_start(void *state)
{
	DecodeState *st = state;

	switch (st->depth)
	{
		case AT_TOP:
			break;
		case AT_TABLES:			/* a table entry */
			memset(st->lists, 0, sizeof(st->lists));
			st->list = -1;
			st->seen_lists = 0;
			st->dcap = 0;
			break;
		case AT_ENTRY:
			shape_error(st, psprintf("\"%s\" must be an array", list_names[st->list]));
			break;
		case AT_LIST:
			if (st->list == 2)
				shape_error(st, "record id must be a string");
			else
			{
				RecordList *l = &st->lists[st->list];

				count_record(st);
				if (l->n == l->cap)
				{
					l->cap = l->cap ? l->cap * 2 : 16;
					l->items = l->items ? repalloc(l->items, sizeof(SyncRecord) * l->cap)
						: palloc(sizeof(SyncRecord) * l->cap);
				}
				st->rec = &l->items[l->n++];
				memset(st->rec, 0, sizeof(SyncRecord));
				st->fcap = 16;
				st->rec->fields = palloc(sizeof(SyncField) * st->fcap);
				st->has_id = false;
			}
			break;
		case AT_RECORD:			/* an object value: kept as text */
			if (strcmp(st->field, "id") == 0)
				shape_error(st, "record id must be a string");
			st->compound_start = st->lex->token_start;
			break;
		default:
			break;
	}
	st->depth++;
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
on_object_end(void *state)
{
	DecodeState *st = state;

	st->depth--;
	switch (st->depth)
	{
		case AT_TABLES:
			end_entry(st);
			break;
		case AT_LIST:
			end_record(st);
			break;
		case AT_RECORD:
			add_field(st, SV_COMPOUND,
					  pnstrdup(st->compound_start, st->lex->prev_token_terminator - st->compound_start));
			break;
		default:
			break;
	}
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
on_array_start(void *state)
{
	DecodeState *st = state;

	switch (st->depth)
	{
		case AT_TOP:
			shape_error(st, "changes must be a JSON object");
			break;
		case AT_TABLES:
			shape_error(st, "table entry must be an object with created, updated and deleted");
			break;
		case AT_ENTRY:
			st->index = (size_t) -1;	/* the first element makes it 0 */
			break;
		case AT_LIST:
			shape_error(st, st->list == 2 ? "record id must be a string" : "record must be a JSON object");
			break;
		case AT_RECORD:			/* an array value: kept as text */
			if (strcmp(st->field, "id") == 0)
				shape_error(st, "record id must be a string");
			st->compound_start = st->lex->token_start;
			break;
		default:
			break;
	}
	st->depth++;
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
on_array_end(void *state)
{
	DecodeState *st = state;

	st->depth--;
	if (st->depth == AT_RECORD)
		add_field(st, SV_COMPOUND,
				  pnstrdup(st->compound_start, st->lex->prev_token_terminator - st->compound_start));
	SYNC_JSON_DONE;
}

/*
 * Adds a table name to the set of names seen; false when it is there
 * already. (A document may hold any number of table entries, empty ones
 * included: each is checked in constant time.)
 */
static bool
add_table_name(DecodeState *st, char *name)
{
	uint32		mask,
				i;

	if ((uint32) st->out->ntables * 2 >= st->nslots)
	{
		char	  **old = st->names;
		uint32		oldn = st->nslots;

		st->nslots = oldn ? oldn * 2 : 64;
		st->names = palloc0(sizeof(char *) * st->nslots);
		for (i = 0; i < oldn; i++)
			if (old && old[i])
			{
				uint32		j = hash_bytes((const unsigned char *) old[i], strlen(old[i])) & (st->nslots - 1);

				while (st->names[j])
					j = (j + 1) & (st->nslots - 1);
				st->names[j] = old[i];
			}
		if (old)
			pfree(old);
	}
	mask = st->nslots - 1;
	for (i = hash_bytes((const unsigned char *) name, strlen(name)) & mask; st->names[i]; i = (i + 1) & mask)
		if (strcmp(st->names[i], name) == 0)
			return false;
	st->names[i] = name;
	return true;
}

static SYNC_JSON_ACTION
on_field_start(void *state, char *fname, bool isnull)
{
	DecodeState *st = state;
	int			i;

	switch (st->depth)
	{
		case AT_TABLES:			/* a table name */
			CHECK_FOR_INTERRUPTS();
			if (!add_table_name(st, fname))
			{
				st->tc = NULL;
				shape_error(st, psprintf("table \"%s\" appears twice", fname));
			}
			if (st->out->ntables == st->tcap)
			{
				st->tcap *= 2;
				st->out->tables = repalloc(st->out->tables, sizeof(SyncTableChanges) * st->tcap);
			}
			st->tc = &st->out->tables[st->out->ntables++];
			memset(st->tc, 0, sizeof(SyncTableChanges));
			st->tc->name = fname;
			st->list = -1;
			break;
		case AT_ENTRY:			/* created / updated / deleted */
			for (i = 0; i < 3; i++)
				if (strcmp(fname, list_names[i]) == 0)
					break;
			if (i == 3)
				shape_error(st, psprintf("unexpected key \"%s\" in table entry", fname));
			if (st->seen_lists & (1 << i))
				shape_error(st, psprintf("\"%s\" appears twice in the table entry", fname));
			st->seen_lists |= 1 << i;
			st->list = i;
			break;
		case AT_RECORD:
			st->field = fname;
			break;
		default:
			break;
	}
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
on_element_start(void *state, bool isnull)
{
	DecodeState *st = state;

	if (st->depth == AT_LIST)
	{
		CHECK_FOR_INTERRUPTS();
		st->index++;
	}
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
on_scalar(void *state, char *token, JsonTokenType type)
{
	DecodeState *st = state;

	switch (st->depth)
	{
		case AT_TOP:
			shape_error(st, "changes must be a JSON object");
			break;
		case AT_TABLES:
			shape_error(st, "table entry must be an object with created, updated and deleted");
			break;
		case AT_ENTRY:
			shape_error(st, psprintf("\"%s\" must be an array", list_names[st->list]));
			break;
		case AT_LIST:
			if (st->list != 2)
				shape_error(st, "record must be a JSON object");
			else
			{
				SyncTableChanges *tc = st->tc;

				count_record(st);
				check_id(st, token, type);
				if (tc->ndeleted == st->dcap)
				{
					st->dcap = st->dcap ? st->dcap * 2 : 16;
					tc->deleted = tc->deleted ? repalloc(tc->deleted, sizeof(char *) * st->dcap)
						: palloc(sizeof(char *) * st->dcap);
				}
				tc->deleted[tc->ndeleted++] = token;
			}
			break;
		case AT_RECORD:
			if (strcmp(st->field, "id") == 0)
			{
				if (st->has_id)
					shape_error(st, "record has the key \"id\" twice");
				st->rec->id = check_id(st, token, type);
				st->has_id = true;
			}
			else
				add_field(st,
						  type == JSON_TOKEN_STRING ? SV_STRING :
						  type == JSON_TOKEN_NUMBER ? SV_NUMBER :
						  type == JSON_TOKEN_NULL ? SV_NULL : SV_BOOL,
						  token);
			break;
		default:
			break;				/* inside an object/array value */
	}
	SYNC_JSON_DONE;
}

/*
 * Whether the JSON parser refused an escape the database's encoding cannot
 * hold. From 17 on the parser reports that itself; before, the conversion
 * raised 22P05 inside it. Either way the caller sees 22P05.
 */
static bool
sync_json_untranslatable(JsonParseErrorType err)
{
#if PG_VERSION_NUM >= 170000
	return err == JSON_UNICODE_UNTRANSLATABLE;
#else
	return false;
#endif
}

/*
 * Parses and checks a changes document. Malformed JSON is SQLSTATE 22P02,
 * a character the database's encoding cannot hold 22P05, a wrong shape
 * 22023 naming the place, too many records 54000.
 */
SyncChanges *
sync_decode_changes(const char *text, size_t len)
{
	DecodeState st;
	JsonSemAction sem;
	JsonParseErrorType err;
	JsonLexContext *lex;
#if PG_VERSION_NUM >= 170000
	JsonLexContext lexbuf;

	lex = makeJsonLexContextCstringLen(&lexbuf, text, len, GetDatabaseEncoding(), true);
#else
	lex = makeJsonLexContextCstringLen((char *) text, (int) len, GetDatabaseEncoding(), true);
#endif

	memset(&st, 0, sizeof(st));
	st.lex = lex;
	st.list = -1;
	st.out = palloc0(sizeof(SyncChanges));
	st.tcap = 8;
	st.out->tables = palloc0(sizeof(SyncTableChanges) * st.tcap);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = on_object_start;
	sem.object_end = on_object_end;
	sem.array_start = on_array_start;
	sem.array_end = on_array_end;
	sem.object_field_start = on_field_start;
	sem.array_element_start = on_element_start;
	sem.scalar = on_scalar;

	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(sync_json_untranslatable(err) ? ERRCODE_UNTRANSLATABLE_CHARACTER :
						 ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid changes document: %s", json_errdetail(err, lex)),
				 errdetail("At line %d.", lex->line_number)));
	return st.out;
}
