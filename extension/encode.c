/*
 * encode.c — rows to WatermelonDB JSON. Query results stream through a
 * DestReceiver straight into one StringInfo: no tuple is materialized and
 * every value is written by type (numbers, booleans and dates natively,
 * everything else through its output function, escaped as a JSON string).
 */
#include "pg_sync.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "executor/tuptable.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "common/hashfn.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* --- sets of record ids (strings of any length) --- */

static uint32
idset_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
idset_match(const void *a, const void *b, Size keysize)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* Creates an empty id set in the current memory context. */
HTAB *
sync_idset_create(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(char *);
	ctl.hash = idset_hash;
	ctl.match = idset_match;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("pg_sync ids", 256, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/* Adds a copy of id to the set. */
void
sync_idset_add(HTAB *set, const char *id)
{
	bool		found;
	char	  **e = hash_search(set, &id, HASH_ENTER, &found);

	if (!found)
		*e = MemoryContextStrdup(GetMemoryChunkContext(set), id);
}

/* Whether id is in the set. */
bool
sync_idset_has(HTAB *set, const char *id)
{
	return hash_search(set, &id, HASH_FIND, NULL) != NULL;
}

/* --- rows a device already has (pushed by it, stored as pushed) --- */

/* Creates an empty echo map in the current memory context. */
HTAB *
sync_echo_create(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(SyncEcho);
	ctl.hash = idset_hash;
	ctl.match = idset_match;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("pg_sync echoes", 64, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

/* Notes that the device holds row id in the state of hash over the columns cols. */
void
sync_echo_add(HTAB *map, const char *id, int64 hash, const char *cols)
{
	bool		found;
	SyncEcho   *e = hash_search(map, &id, HASH_ENTER, &found);
	MemoryContext cxt = GetMemoryChunkContext(map);

	e->id = MemoryContextStrdup(cxt, id);
	e->hash = hash;
	e->cols = MemoryContextStrdup(cxt, cols);
}

/*
 * The hash of a row as a pull writes it, over the columns marked '1' in
 * cols (one character per column of the descriptor; the key always): what
 * a push notes for the device that pushed the row, and a pull compares with
 * the row it is about to send. vals and nulls are by descriptor column.
 */
int64
sync_row_hash(SyncTable *t, const char *id, Datum *vals, bool *nulls, const char *cols)
{
	StringInfoData buf;
	int			i;
	int64		h;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, "{\"id\":", 6);
	sync_escape_json(&buf, id, strlen(id));
	for (i = 0; i < t->ncols; i++)
	{
		if (i == t->key || !t->cols[i].synced || cols[i] != '1')
			continue;
		appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, t->cols[i].json_key);
		sync_encode_value(&buf, &t->cols[i], vals[i], nulls[i]);
	}
	appendStringInfoChar(&buf, '}');
	h = (int64) hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0);
	pfree(buf.data);
	return h;
}

/*
 * The hash a pull would compute for a row whose values a pull writes
 * exactly as the device sent them: over the columns marked in cols, each
 * pushed value in its canonical JSON text (strings escaped as a pull escapes
 * them, numbers as sent). A stored value a pull writes otherwise (rounded,
 * normalized, changed by a trigger) makes the hashes differ.
 */
int64
sync_pushed_hash(SyncTable *t, const char *id, SyncRecord *rec, const char *cols)
{
	StringInfoData buf;
	int			i,
				f;
	int64		h;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, "{\"id\":", 6);
	sync_escape_json(&buf, id, strlen(id));
	for (i = 0; i < t->ncols; i++)
	{
		if (i == t->key || !t->cols[i].synced || cols[i] != '1')
			continue;
		for (f = 0; f < rec->nfields; f++)
			if (strcmp(rec->fields[f].key, t->cols[i].name) == 0)
				break;
		if (f == rec->nfields)
			continue;
		appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, t->cols[i].json_key);
		switch (rec->fields[f].value.type)
		{
			case SV_NULL:
				appendBinaryStringInfo(&buf, "null", 4);
				break;
			case SV_STRING:
				escape_json(&buf, rec->fields[f].value.str);
				break;
			case SV_BOOL:
				appendStringInfoString(&buf, rec->fields[f].value.bval ? "true" : "false");
				break;
			case SV_NUMBER:
			case SV_COMPOUND:
				appendStringInfoString(&buf, rec->fields[f].value.str);
				break;
		}
	}
	appendStringInfoChar(&buf, '}');
	h = (int64) hash_bytes_extended((const unsigned char *) buf.data, buf.len, 0);
	pfree(buf.data);
	return h;
}

/* Whether the row in slot (synced columns in order) is what the device has. */
static bool
device_has_row(SyncTable *t, SyncEcho *e, TupleTableSlot *slot, const char *id)
{
	Datum	   *vals;
	bool	   *nulls;
	int			i,
				n = 0;

	if ((int) strlen(e->cols) != t->ncols)
		return false;			/* the table's columns changed since the push */
	vals = palloc0(sizeof(Datum) * t->ncols);
	nulls = palloc0(sizeof(bool) * t->ncols);
	for (i = 0; i < t->ncols; i++)
	{
		if (!t->cols[i].synced)
			continue;
		vals[i] = slot->tts_values[n];
		nulls[i] = slot->tts_isnull[n];
		n++;
	}
	return sync_row_hash(t, id, vals, nulls, e->cols) == e->hash;
}

/* A receiver that writes each row as a WatermelonDB raw record. */
typedef struct SyncReceiver
{
	DestReceiver pub;
	SyncTable  *table;
	SyncPullSink *sink;
	MemoryContext rowcxt;
	MemoryContext cxt;			/* the caller's: where last_id goes */
} SyncReceiver;

/* Writes one result row: key first as "id", then the synced columns. */
static bool
receive_row(TupleTableSlot *slot, DestReceiver *self)
{
	SyncReceiver *r = (SyncReceiver *) self;
	SyncTable  *t = r->table;
	SyncPullSink *sink = r->sink;
	StringInfo	buf = sink->updated;
	MemoryContext old;
	char	   *id;
	int			i,
				n;

	if (sink->limit > 0 && sink->nread >= sink->limit)
	{
		sink->nread++;			/* one more than the limit: there is more */
		return true;
	}
	sink->nread++;
	slot_getallattrs(slot);
	old = MemoryContextSwitchTo(r->rowcxt);
	/* the query returns the synced columns in descriptor order */
	n = 0;
	id = NULL;
	for (i = 0; i < t->ncols; i++)
	{
		if (!t->cols[i].synced)
			continue;
		if (i == t->key)
			id = OutputFunctionCall(&t->cols[i].outfn, slot->tts_values[n]);
		n++;
	}
	if (sink->limit > 0)
	{
		if (sink->last_id)
			pfree(sink->last_id);
		sink->last_id = MemoryContextStrdup(r->cxt, id);
	}
	if (sink->skip && sync_idset_has(sink->skip, id))
	{
		MemoryContextSwitchTo(old);
		MemoryContextReset(r->rowcxt);
		return true;
	}
	if (sink->seen)
		sync_idset_add(sink->seen, id);
	if (sink->echo)
	{
		SyncEcho   *e = hash_search(sink->echo, &id, HASH_FIND, NULL);

		if (e != NULL && device_has_row(t, e, slot, id))
		{
			sink->nechoed++;
			MemoryContextSwitchTo(old);
			MemoryContextReset(r->rowcxt);
			return true;
		}
	}

	if (sink->nupdated++ > 0)
		appendStringInfoChar(buf, ',');
	appendBinaryStringInfo(buf, "{\"id\":", 6);
	sync_escape_json(buf, id, strlen(id));
	n = 0;
	for (i = 0; i < t->ncols; i++)
	{
		SyncColumn *c = &t->cols[i];

		if (!c->synced)
			continue;
		if (i != t->key)
		{
			appendStringInfoChar(buf, ',');
			appendStringInfoString(buf, c->json_key);
			sync_encode_value(buf, c, slot->tts_values[n], slot->tts_isnull[n]);
		}
		n++;
	}
	appendStringInfoChar(buf, '}');
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
	return true;
}

/*
 * Checks that the rows about to arrive have the columns the descriptor
 * says, in order and type: a descriptor is only used under a lock that keeps
 * DDL out, and this makes sure of it before a value is read by type.
 */
static void
receive_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	SyncReceiver *r = (SyncReceiver *) self;
	SyncTable  *t = r->table;
	int			i,
				n = 0;

	for (i = 0; i < t->ncols; i++)
	{
		if (!t->cols[i].synced)
			continue;
		if (n >= typeinfo->natts || TupleDescAttr(typeinfo, n)->atttypid != t->cols[i].typid)
			break;
		n++;
	}
	if (i < t->ncols || n != typeinfo->natts)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("synced table \"%s\" changed while it was read", t->name),
				 errhint("Retry in a new transaction.")));
}

static void
receive_shutdown(DestReceiver *self)
{
}

static void
receive_destroy(DestReceiver *self)
{
}

/*
 * Runs a prepared row query of table t (read-only, in the caller's snapshot)
 * and appends every row it returns to sink->updated.
 */
void
sync_encode_query(SyncTable *t, SPIPlanPtr plan, Datum *values, const char *nulls,
				  SyncPullSink *sink)
{
	SyncReceiver r;
	SPIExecuteOptions opts;
	int			nargs = SPI_getargcount(plan);
	ParamListInfo params = NULL;
	int			rc;
	int			i;

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = receive_row;
	r.pub.rStartup = receive_startup;
	r.pub.rShutdown = receive_shutdown;
	r.pub.rDestroy = receive_destroy;
	r.pub.mydest = DestNone;
	r.table = t;
	r.sink = sink;
	r.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "pg_sync row", ALLOCSET_SMALL_SIZES);
	r.cxt = CurrentMemoryContext;

	if (nargs > 0)
	{
		params = makeParamList(nargs);
		for (i = 0; i < nargs; i++)
		{
			params->params[i].value = values[i];
			params->params[i].isnull = nulls && nulls[i] == 'n';
			params->params[i].pflags = PARAM_FLAG_CONST;
			params->params[i].ptype = SPI_getargtypeid(plan, i);
		}
	}
	memset(&opts, 0, sizeof(opts));
	opts.params = params;
	opts.read_only = true;
	opts.dest = (DestReceiver *) &r;
	rc = SPI_execute_plan_extended(plan, &opts);
	/* SPI reports a SELECT into a receiver of its own as a utility command */
	if (rc != SPI_OK_SELECT)
		sync_check_spi(rc, SPI_OK_UTILITY, "reading rows");
	MemoryContextDelete(r.rowcxt);
}
