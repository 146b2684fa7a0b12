/*
 * pull.c — sync_pull: what changed since the caller's token, as one
 * WatermelonDB pull result read from one snapshot.
 *
 * Per table: a first pull (no token, a table registered after the token, or
 * a table named by a schema migration) reads every live row; a later pull
 * reads the change records whose writer is visible in the new checkpoint but
 * was not in the old one, then the current state of those rows. Live rows go
 * in "updated" (see README: the client sets sendCreatedAsUpdated), deleted
 * ones in "deleted"; an id appears once.
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

PG_FUNCTION_INFO_V1(sync_pull);

static SPIPlanPtr changes_plan = NULL;
static SPIPlanPtr pending_plan = NULL;
static SPIPlanPtr migration_plan = NULL;

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

/* Appends "deleted" ids to buf, comma-separated. */
static void
append_deleted(StringInfo buf, int *n, const char *id)
{
	if ((*n)++ > 0)
		appendStringInfoChar(buf, ',');
	escape_json(buf, id);
}

/*
 * Reads the change records of a table between two checkpoints (as the
 * extension owner): live ids into *live, deleted ids into the deleted list.
 */
static List *
read_changes(SyncTable *t, const char *owner, SyncToken *prev, SyncToken *cur,
			 StringInfo deleted, int *ndeleted)
{
	Datum		args[4];
	int			rc;
	uint64		i;
	List	   *live = NIL;

	if (changes_plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTOID, PG_SNAPSHOTOID, PG_SNAPSHOTOID};

		changes_plan = sync_prepare(
			"SELECT id, deleted FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($3)"
			"   AND xid OPERATOR(pg_catalog.<) pg_catalog.pg_snapshot_xmax($4)"
			"   AND NOT pg_catalog.pg_visible_in_snapshot(xid, $3)"
			"   AND pg_catalog.pg_visible_in_snapshot(xid, $4)", 4, types);
	}
	args[0] = Int32GetDatum(t->table_id);
	args[1] = CStringGetTextDatum(owner);
	args[2] = prev->snap;
	args[3] = cur->snap;
	rc = SPI_execute_plan(changes_plan, args, NULL, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading changes");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;
		char	   *id = SPI_getvalue(tup, SPI_tuptable->tupdesc, 1);

		if (DatumGetBool(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)))
			append_deleted(deleted, ndeleted, id);
		else
			live = lappend(live, id);
	}
	return live;
}

/*
 * Ids of a table's rows whose last change is not visible in checkpoint cur
 * (as the extension owner): a first pull answering up to an older
 * checkpoint than its snapshot leaves them for the next pull.
 */
static HTAB *
read_pending(SyncTable *t, const char *owner, SyncToken *cur)
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
	args[0] = Int32GetDatum(t->table_id);
	args[1] = CStringGetTextDatum(owner);
	args[2] = cur->snap;
	rc = SPI_execute_plan(pending_plan, args, NULL, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading pending changes");
	for (i = 0; i < SPI_processed; i++)
		sync_idset_add(set, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	return set;
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

/* Whether name is in a list of C strings. */
static bool
name_listed(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/* Appends one table's entry of the changes object; returns how many ids it sent. */
static int
pull_table(StringInfo out, SyncTableRef *ref, bool full, const char *user,
		   SyncToken *prev, SyncToken *cur, bool exact)
{
	SyncTable  *t = ref->desc;
	StringInfoData deleted;
	int			ndeleted = 0;
	SyncPullSink sink;
	const char *owner = "";
	SyncOwnerCtx owner_ctx;

	initStringInfo(&deleted);
	memset(&sink, 0, sizeof(sink));
	sink.updated = out;			/* rows stream straight into the result */
	escape_json(out, t->name);
	appendStringInfoString(out, ":{\"created\":[],\"updated\":[");
	if (t->owner >= 0)
		owner = user;
	prepare_row_plans(t);

	if (full)
	{
		Datum		arg[1];

		if (!exact)
		{
			sync_owner_enter(&owner_ctx);
			sink.skip = read_pending(t, owner, cur);
			sync_owner_leave(&owner_ctx);
		}
		if (t->owner >= 0)
		{
			SyncColumn *oc = &t->cols[t->owner];

			arg[0] = InputFunctionCall(&oc->infn, (char *) owner, oc->ioparam, oc->typmod);
			sync_encode_query(t, t->full_owner_plan, arg, NULL, &sink);
		}
		else
			sync_encode_query(t, t->full_plan, NULL, NULL, &sink);
	}
	else
	{
		List	   *live;

		sync_owner_enter(&owner_ctx);
		live = read_changes(t, owner, prev, cur, &deleted, &ndeleted);
		sync_owner_leave(&owner_ctx);
		if (live != NIL)
		{
			int			n = list_length(live);
			char	  **ids = palloc(sizeof(char *) * n);
			Datum		arg[1];
			ListCell   *lc;
			int			i = 0;

			foreach(lc, live)
				ids[i++] = lfirst(lc);
			sink.seen = sync_idset_create();
			arg[0] = sync_ids_array(t, ids, n);
			sync_encode_query(t, t->byid_plan, arg, NULL, &sink);
			/* recorded as live but not there (or not visible): gone for the caller */
			for (i = 0; i < n; i++)
				if (!sync_idset_has(sink.seen, ids[i]))
					append_deleted(&deleted, &ndeleted, ids[i]);
		}
	}

	appendStringInfoString(out, "],\"deleted\":[");
	appendBinaryStringInfo(out, deleted.data, deleted.len);
	appendStringInfoString(out, "]}");
	return sink.nupdated + ndeleted;
}

/* SQL: sync_pull(last_pulled_at, schema_version, migration, user_id) */
Datum
sync_pull(PG_FUNCTION_ARGS)
{
	int64		token = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	MemoryContext callcxt,
				oldcxt;
	SyncToken	prev,
				cur;
	bool		exact,
				must_insert;
	Datum		snap;
	char	   *snap_text;
	List	   *tables;
	List	   *resend = NIL;
	ListCell   *lc;
	char	   *user = NULL;
	bool		need_user = false;
	SyncOwnerCtx owner_ctx;
	StringInfoData out;
	text	   *result;
	int			sent = 0;
	bool		any_full = false;
	char	   *explicit_user = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(3)) : NULL;

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

	sync_owner_enter(&owner_ctx);
	sync_token_resolve(token, &prev);
	tables = sync_registry_load(&prev);
	snap_text = sync_token_current_snapshot(&snap);
	sync_token_choose(&prev, snap, snap_text, sync_checkpoint_interval_ms, &cur, &exact, &must_insert);
	sync_owner_leave(&owner_ctx);

	foreach(lc, tables)
		if (((SyncTableRef *) lfirst(lc))->desc->owner >= 0)
			need_user = true;
	if (need_user || explicit_user)
		user = sync_current_user_id(explicit_user);

	appendStringInfoString(&out, "{\"changes\":{");
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);
		bool		full = prev.id == 0 || ref->new_since_token ||
			name_listed(resend, ref->desc->name);

		if (ref->desc->owner >= 0 && user == NULL)
			sync_no_user(ref->desc->name);
		if (foreach_current_index(lc) > 0)
			appendStringInfoChar(&out, ',');
		sent += pull_table(&out, ref, full, user, &prev, &cur, exact);
		any_full |= full;
	}

	/*
	 * Nothing new for this caller since its token: keep the token instead of
	 * recording a checkpoint (idle clients polling write nothing).
	 */
	if (must_insert && sent == 0 && !any_full && prev.id != 0)
	{
		must_insert = false;
		cur = prev;
	}
	if (must_insert)
	{
		sync_owner_enter(&owner_ctx);
		sync_token_record(&cur);
		sync_owner_leave(&owner_ctx);
	}
	appendStringInfo(&out, "},\"timestamp\":" INT64_FORMAT "}", cur.id);

	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	result = cstring_to_text_with_len(out.data, out.len);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(result);
}
