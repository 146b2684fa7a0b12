/*
 * pull.c — sync_pull: what changed since the caller's token, as one
 * WatermelonDB pull result read from one snapshot.
 *
 * Per table: a first pull (no token, a table registered after the token, or
 * a table named by a schema migration) reads every live row; a later pull
 * reads the change records whose writer is visible in the answer's snapshot
 * but was not in the caller's token, then the current state of those rows.
 * Live rows go in "updated" (see README: the client sets
 * sendCreatedAsUpdated), deleted ones in "deleted"; an id appears once.
 *
 * Which snapshot the answer is up to:
 * - a transaction that may write answers up to its own snapshot: every change
 *   committed before the call is in it. The token handed back is the newest
 *   recorded checkpoint when that is exact for this caller (it contains the
 *   caller's token and no change in the caller's scope lies between it and
 *   the snapshot), else the caller's own token when nothing in scope changed,
 *   else a new checkpoint of the snapshot;
 * - a read-only transaction or a hot standby cannot record checkpoints and
 *   answers up to the newest one it sees (rows written after it are left for
 *   a later pull, never skipped).
 */
#include "pg_sync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "storage/lockdefs.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_pull);

static SPIPlanPtr changes_plan = NULL;
static SPIPlanPtr pending_plan = NULL;
static SPIPlanPtr migration_plan = NULL;

/* One table of a pull: what the change records say, read before the rows. */
typedef struct PullTable
{
	SyncTableRef *ref;
	bool		full;			/* send every live row */
	const char *owner;			/* the scope: the caller's id, or '' for a shared table */
	List	   *live;			/* incremental: ids to read */
	StringInfoData deleted;		/* ids for "deleted", comma-separated JSON strings */
	int			ndeleted;
	HTAB	   *pending;		/* full: ids whose last change the answer does not include */
} PullTable;

/* The select list of a row query: the synced columns, in descriptor order. */
static char *
select_list(SyncTable *t)
{
	StringInfoData buf;
	int			i;
	bool		first = true;

	initStringInfo(&buf);
	for (i = 0; i < t->ncols; i++)
	{
		if (!t->cols[i].synced)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		appendStringInfoString(&buf, quote_identifier(t->cols[i].name));
		first = false;
	}
	return buf.data;
}

/* Prepares (once per descriptor) the row queries of a table. */
static void
prepare_row_plans(SyncTable *t)
{
	char	   *cols;
	const char *key;

	if (t->full_plan)
		return;
	cols = select_list(t);
	key = quote_identifier(t->cols[t->key].name);
	t->byid_plan = sync_prepare(psprintf("SELECT %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)",
										 cols, t->qualname, key),
								1, &t->cols[t->key].arraytypid);
	if (t->owner >= 0)
		t->full_owner_plan = sync_prepare(psprintf("SELECT %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) $1",
												   cols, t->qualname,
												   quote_identifier(t->cols[t->owner].name)),
										  1, &t->cols[t->owner].typid);
	t->full_plan = sync_prepare(psprintf("SELECT %s FROM ONLY %s", cols, t->qualname), 0, NULL);
}

/* Appends an id to a comma-separated list of JSON strings. */
static void
append_deleted(StringInfo buf, int *n, const char *id)
{
	if ((*n)++ > 0)
		appendStringInfoChar(buf, ',');
	escape_json(buf, id);
}

/*
 * Runs the query for the change records of a table in scope whose writer is
 * visible in snapshot hi but not in lo (at most limit rows, 0: all). Results
 * in SPI_tuptable: id, deleted, xid. As the extension owner.
 */
static void
read_meta(PullTable *pt, SyncToken *lo, SyncToken *hi, long limit)
{
	Datum		args[4];
	int			rc;

	if (changes_plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTOID, PG_SNAPSHOTOID, PG_SNAPSHOTOID};

		changes_plan = sync_prepare(
			"SELECT id, deleted, xid FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($3)"
			"   AND xid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax($4)"
			"   AND NOT pg_catalog.pg_visible_in_snapshot(xid, $3)"
			"   AND pg_catalog.pg_visible_in_snapshot(xid, $4)", 4, types);
	}
	args[0] = Int32GetDatum(pt->ref->desc->table_id);
	args[1] = CStringGetTextDatum(pt->owner);
	args[2] = lo->snap;
	args[3] = hi->snap;
	rc = SPI_execute_plan(changes_plan, args, NULL, true, limit);
	sync_check_spi(rc, SPI_OK_SELECT, "reading changes");
}

/*
 * Incremental: the changes between the caller's token and the answer's
 * snapshot; live ids to read, deleted ones listed. Clears *exact_newest when
 * one of them is not in checkpoint newest (which then cannot stand for this
 * answer).
 */
static void
read_changes(PullTable *pt, SyncToken *prev, SyncToken *upto, SyncToken *newest,
			 bool *exact_newest)
{
	uint64		i;

	read_meta(pt, prev, upto, 0);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *id = SPI_getvalue(tup, td, 1);
		uint64		xid = U64FromFullTransactionId(DatumGetFullTransactionId(SPI_getbinval(tup, td, 3, &isnull)));

		if (*exact_newest && !sync_snap_visible(&newest->parsed, xid))
			*exact_newest = false;
		if (DatumGetBool(SPI_getbinval(tup, td, 2, &isnull)))
			append_deleted(&pt->deleted, &pt->ndeleted, id);
		else
			pt->live = lappend(pt->live, id);
	}
}

/*
 * Full: ids of rows in scope whose last change is not visible in the
 * answer's snapshot (a transaction's own writes, or rows written after the
 * checkpoint a read-only pull answers up to). They are left for a later pull.
 */
static HTAB *
read_pending(PullTable *pt, SyncToken *upto)
{
	Datum		args[3];
	int			rc;
	uint64		i;
	HTAB	   *set = sync_idset_create();

	if (pending_plan == NULL)
	{
		Oid			types[3] = {INT4OID, TEXTOID, PG_SNAPSHOTOID};

		pending_plan = sync_prepare(
			"SELECT id FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($3)"
			"   AND NOT pg_catalog.pg_visible_in_snapshot(xid, $3)", 3, types);
	}
	args[0] = Int32GetDatum(pt->ref->desc->table_id);
	args[1] = CStringGetTextDatum(pt->owner);
	args[2] = upto->snap;
	rc = SPI_execute_plan(pending_plan, args, NULL, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading pending changes");
	for (i = 0; i < SPI_processed; i++)
		sync_idset_add(set, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return set;
}

/*
 * Full: whether checkpoint newest can stand for an answer that sends the
 * whole table as of snapshot upto: the table was registered before it, and
 * no change record in scope lies between the two.
 */
static bool
full_exact_at(PullTable *pt, SyncToken *newest, SyncToken *upto)
{
	if (!sync_snap_visible(&newest->parsed, pt->ref->registered_xid))
		return false;
	read_meta(pt, newest, upto, 1);
	return SPI_processed == 0;
}

/* Client table names a schema migration asks to resend in full. */
static List *
migration_tables(Jsonb *migration)
{
	Datum		args[1];
	int			rc;
	uint64		i;
	List	   *out = NIL;

	if (migration_plan == NULL)
	{
		Oid			types[1] = {JSONBOID};

		migration_plan = sync_prepare(
			"SELECT t FROM pg_catalog.jsonb_array_elements_text("
			"         coalesce($1 OPERATOR(pg_catalog.->) 'tables', '[]')) AS t"
			" UNION "
			"SELECT c OPERATOR(pg_catalog.->>) 'table' FROM pg_catalog.jsonb_array_elements("
			"         coalesce($1 OPERATOR(pg_catalog.->) 'columns', '[]')) AS c", 1, types);
	}
	if (JsonContainerIsScalar(&migration->root) || JsonContainerIsArray(&migration->root))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration must be a JSON object or null")));
	args[0] = JsonbPGetDatum(migration);
	rc = SPI_execute_plan(migration_plan, args, NULL, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading the migration");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);

		if (name)
			out = lappend(out, name);
	}
	return out;
}

/*
 * Appends one table's entry of the changes object, reading its rows with
 * the caller's rights; returns how many records it sent.
 */
static int
pull_rows(StringInfo out, PullTable *pt)
{
	SyncTable  *t = pt->ref->desc;
	SyncPullSink sink;

	memset(&sink, 0, sizeof(sink));
	sink.updated = out;			/* rows stream straight into the result */
	escape_json(out, t->name);
	appendStringInfoString(out, ":{\"created\":[],\"updated\":[");
	prepare_row_plans(t);

	if (pt->full)
	{
		sink.skip = pt->pending;
		if (t->owner >= 0)
		{
			SyncColumn *oc = &t->cols[t->owner];
			Datum		arg[1];

			arg[0] = InputFunctionCall(&oc->infn, (char *) pt->owner, oc->ioparam, oc->typmod);
			sync_encode_query(t, t->full_owner_plan, arg, NULL, &sink);
		}
		else
			sync_encode_query(t, t->full_plan, NULL, NULL, &sink);
	}
	else if (pt->live != NIL)
	{
		int			n = list_length(pt->live);
		char	  **ids = palloc(sizeof(char *) * n);
		Datum		arg[1];
		ListCell   *lc;
		int			i = 0;

		foreach(lc, pt->live)
			ids[i++] = lfirst(lc);
		sink.seen = sync_idset_create();
		arg[0] = sync_ids_array(t, ids, n);
		sync_encode_query(t, t->byid_plan, arg, NULL, &sink);
		/* recorded as live but not there (or not visible): gone for the caller */
		for (i = 0; i < n; i++)
			if (!sync_idset_has(sink.seen, ids[i]))
				append_deleted(&pt->deleted, &pt->ndeleted, ids[i]);
	}

	appendStringInfoString(out, "],\"deleted\":[");
	appendBinaryStringInfo(out, pt->deleted.data, pt->deleted.len);
	appendStringInfoString(out, "]}");
	return sink.nupdated + pt->ndeleted;
}

/* SQL: sync_pull(last_pulled_at, schema_version, migration, user_id, client_id) */
Datum
sync_pull(PG_FUNCTION_ARGS)
{
	int64		token = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	MemoryContext callcxt,
				oldcxt;
	SyncToken	prev,
				cur,
				newest;
	SyncToken  *upto;			/* the snapshot the answer is up to */
	bool		exact;			/* upto is the snapshot rows are read in */
	bool		can_record;
	bool		have_newest;
	bool		exact_newest;	/* newest can stand for this answer */
	List	   *tables;
	List	   *resend = NIL;
	PullTable  *pts;
	int			ntables,
				i;
	ListCell   *lc;
	char	   *user = NULL;
	SyncOwnerCtx owner_ctx;
	StringInfoData out;
	text	   *result;
	int			sent = 0;
	bool		any_full = false;
	int64		answer;
	char	   *explicit_user = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(3)) : NULL;
	char	   *client_id = (PG_NARGS() > 4 && !PG_ARGISNULL(4)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(4)) : NULL;
	SyncDevice	dev;

	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema_version must not be negative")));

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_pull", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);
	initStringInfo(&out);		/* in callcxt: it outlives SPI_finish */
	SPI_connect();

	if (!PG_ARGISNULL(2))
		resend = migration_tables(PG_GETARG_JSONB_P(2));

	/* the device: a deactivated one gets nothing */
	if (client_id)
		user = sync_current_user_id(explicit_user);
	sync_device_open(&dev, user, client_id, false);

	/* who is calling: needed before any change record is read */
	sync_owner_enter(&owner_ctx);
	sync_token_resolve(token, &prev);
	tables = sync_registry_load(&prev, AccessShareLock, NIL);
	sync_owner_leave(&owner_ctx);
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);

		if (ref->vanished)
			tables = foreach_delete_current(tables, lc);	/* dropped meanwhile */
		else if (ref->desc->owner >= 0 && user == NULL)
		{
			user = sync_current_user_id(explicit_user);
			if (user == NULL)
				sync_no_user(ref->name);
		}
	}
	if (user == NULL && explicit_user)
		user = sync_current_user_id(explicit_user);

	/* each table's scope: the caller's id as its owner column holds it */
	ntables = list_length(tables);
	pts = palloc0(sizeof(PullTable) * (ntables + 1));
	i = 0;
	foreach(lc, tables)
	{
		PullTable  *pt = &pts[i++];

		pt->ref = lfirst(lc);
		pt->owner = pt->ref->desc->owner >= 0 ? sync_owner_text(pt->ref->desc, user) : "";
		pt->full = prev.id == 0 || pt->ref->new_since_token ||
			sync_name_listed(resend, pt->ref->desc->name);
		initStringInfo(&pt->deleted);
	}

	/* the change records, as the owner */
	sync_owner_enter(&owner_ctx);
	exact = sync_token_current(&cur);
	can_record = sync_token_can_record();
	have_newest = sync_token_newest(&newest);
	if (can_record)
		upto = &cur;
	else
	{
		/* read-only: the newest checkpoint that contains the caller's view */
		if (have_newest && (prev.id == 0 || sync_snap_contains(&newest.parsed, &prev.parsed)))
			upto = &newest;
		else if (prev.id != 0)
			upto = &prev;
		else
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no sync checkpoint exists yet"),
					 errhint("Call sync_checkpoint() on the primary.")));
		exact = false;
	}
	exact_newest = can_record && have_newest && !newest.stale &&
		(prev.id == 0 || newest.id == prev.id || sync_snap_contains(&newest.parsed, &prev.parsed));

	for (i = 0; i < ntables; i++)
	{
		PullTable  *pt = &pts[i];

		if (pt->full)
		{
			any_full = true;
			if (!exact)
				pt->pending = read_pending(pt, upto);
			if (exact_newest && !full_exact_at(pt, &newest, upto))
				exact_newest = false;
		}
		else
			read_changes(pt, &prev, upto, &newest, &exact_newest);
	}
	sync_owner_leave(&owner_ctx);

	/* the rows, with the caller's rights */
	appendStringInfoString(&out, "{\"changes\":{");
	for (i = 0; i < ntables; i++)
	{
		if (i > 0)
			appendStringInfoChar(&out, ',');
		sent += pull_rows(&out, &pts[i]);
	}

	/* the token that stands for this answer */
	if (!can_record)
		answer = upto->id;
	else if (exact_newest)
		answer = newest.id;		/* idle and repeated pulls write nothing */
	else if (prev.id != 0 && sent == 0 && !any_full && !prev.stale)
		answer = prev.id;		/* nothing in scope since the caller's token */
	else
	{
		sync_owner_enter(&owner_ctx);
		sync_token_record(&cur);
		sync_owner_leave(&owner_ctx);
		answer = cur.id;
	}
	appendStringInfo(&out, "},\"timestamp\":" INT64_FORMAT "}", answer);
	sync_device_pulled(&dev, answer);

	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	result = cstring_to_text_with_len(out.data, out.len);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(result);
}
