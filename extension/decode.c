/*
 * decode.c — the only file that uses jansson: a push's changes document to
 * the C structs of pg_sync.h, checking its shape on the way.
 *
 * jansson allocates through palloc in the caller's memory context (set up in
 * sync_decode_init), so a document is freed with the call's context even when
 * an error cuts the call short. This file must not include utils/builtins.h:
 * PostgreSQL and jansson both define json_object(), and json_object() itself
 * must never be called from here.
 */
#include "postgres.h"

#include <jansson.h>

#include "pg_sync.h"

/* jansson's allocator: palloc in the current context, NULL when out of memory */
static void *
sync_json_alloc(size_t size)
{
	return palloc_extended(size, MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
}

static void
sync_json_free(void *ptr)
{
	if (ptr)
		pfree(ptr);
}

/* Routes jansson's allocations through palloc; called once from _PG_init. */
void
sync_decode_init(void)
{
	json_set_alloc_funcs(sync_json_alloc, sync_json_free);
}

/* Raises a shape error for the given place in the document. */
static void
shape_error(const char *table, const char *list, size_t index, const char *msg)
{
	if (list)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid changes document: %s", msg),
				 errdetail("At changes.%s.%s[%zu].", table, list, index)));
	if (table)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid changes document: %s", msg),
				 errdetail("At changes.%s.", table)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid changes document: %s", msg)));
}

/* Checks a record id: a non-empty string of at most SYNC_MAX_ID_LEN bytes. */
static char *
decode_id(json_t *v, const char *table, const char *list, size_t index)
{
	size_t		len;

	if (v == NULL)
		shape_error(table, list, index, "record has no \"id\"");
	if (!json_is_string(v))
		shape_error(table, list, index, "record id must be a string");
	len = json_string_length(v);
	if (len == 0)
		shape_error(table, list, index, "record id must not be empty");
	if (len > SYNC_MAX_ID_LEN)
		shape_error(table, list, index,
					psprintf("record id is longer than %d bytes", SYNC_MAX_ID_LEN));
	return (char *) json_string_value(v);
}

/* Converts one JSON value of a record. */
static void
decode_value(json_t *v, SyncValue *out)
{
	memset(out, 0, sizeof(*out));
	switch (json_typeof(v))
	{
		case JSON_NULL:
			out->type = SV_NULL;
			break;
		case JSON_STRING:
			out->type = SV_STRING;
			out->str = (char *) json_string_value(v);
			out->len = json_string_length(v);
			break;
		case JSON_INTEGER:
			out->type = SV_INT;
			out->ival = (int64) json_integer_value(v);
			break;
		case JSON_REAL:
			out->type = SV_REAL;
			out->rval = json_real_value(v);
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			out->type = SV_BOOL;
			out->bval = json_is_true(v);
			break;
		case JSON_OBJECT:
		case JSON_ARRAY:
			out->type = SV_COMPOUND;
			out->str = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			if (out->str == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_OUT_OF_MEMORY),
						 errmsg("out of memory")));
			out->len = strlen(out->str);
			break;
	}
}

/* Converts one created/updated record. */
static void
decode_record(json_t *rec, const char *table, const char *list, size_t index, SyncRecord *out)
{
	const char *key;
	json_t	   *v;
	int			n = 0;

	if (!json_is_object(rec))
		shape_error(table, list, index, "record must be a JSON object");
	out->id = decode_id(json_object_get(rec, "id"), table, list, index);
	out->fields = palloc(sizeof(SyncField) * (json_object_size(rec) + 1));
	json_object_foreach(rec, key, v)
	{
		if (strcmp(key, "id") == 0 || strcmp(key, "_status") == 0 || strcmp(key, "_changed") == 0)
			continue;
		out->fields[n].key = (char *) key;
		decode_value(v, &out->fields[n].value);
		n++;
	}
	out->nfields = n;
}

/* Returns the array at key of a table entry (NULL when absent). */
static json_t *
table_list(json_t *entry, const char *table, const char *key)
{
	json_t	   *v = json_object_get(entry, key);

	if (v != NULL && !json_is_array(v))
		shape_error(table, NULL, 0, psprintf("\"%s\" must be an array", key));
	return v;
}

/*
 * Parses and checks a changes document:
 * {"<table>": {"created": [record...], "updated": [record...], "deleted": ["id"...]}}
 */
SyncChanges *
sync_decode_changes(const char *text, size_t len)
{
	json_error_t err;
	json_t	   *root;
	json_t	   *entry;
	const char *name;
	SyncChanges *out;
	size_t		total = 0;
	int			ti = 0;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid changes document: %s", err.text),
				 errdetail("At line %d, column %d.", err.line, err.column)));
	if (!json_is_object(root))
		shape_error(NULL, NULL, 0, "changes must be a JSON object");

	out = palloc0(sizeof(SyncChanges));
	out->tables = palloc0(sizeof(SyncTableChanges) * (json_object_size(root) + 1));
	json_object_foreach(root, name, entry)
	{
		SyncTableChanges *tc = &out->tables[ti++];
		json_t	   *created,
				   *updated,
				   *deleted,
				   *v;
		const char *key;
		size_t		i,
					n;

		tc->name = (char *) name;
		if (!json_is_object(entry))
			shape_error(name, NULL, 0, "table entry must be an object with created, updated and deleted");
		json_object_foreach(entry, key, v)
		{
			if (strcmp(key, "created") != 0 && strcmp(key, "updated") != 0 &&
				strcmp(key, "deleted") != 0)
				shape_error(name, NULL, 0, psprintf("unexpected key \"%s\" in table entry", key));
		}
		created = table_list(entry, name, "created");
		updated = table_list(entry, name, "updated");
		deleted = table_list(entry, name, "deleted");

		tc->ncreated = created ? json_array_size(created) : 0;
		tc->nrecords = tc->ncreated + (updated ? json_array_size(updated) : 0);
		tc->ndeleted = deleted ? json_array_size(deleted) : 0;
		total += tc->nrecords + tc->ndeleted;
		if (total > (size_t) sync_max_records)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("push carries more than %d records", sync_max_records),
					 errhint("Raise pg_sync.max_push_records or push in smaller batches.")));

		tc->records = palloc(sizeof(SyncRecord) * (tc->nrecords + 1));
		n = 0;
		if (created)
			json_array_foreach(created, i, v)
				decode_record(v, name, "created", i, &tc->records[n++]);
		if (updated)
			json_array_foreach(updated, i, v)
				decode_record(v, name, "updated", i, &tc->records[n++]);

		tc->deleted = palloc(sizeof(char *) * (tc->ndeleted + 1));
		if (deleted)
			json_array_foreach(deleted, i, v)
				tc->deleted[i] = decode_id(v, name, "deleted", i);
	}
	out->ntables = ti;
	/* the tree lives in the caller's context and goes with it */
	return out;
}
