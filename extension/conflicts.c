/*
 * conflicts.c — the conflict inbox of the manual policy (and of version's
 * on_conflict manual). A push whose record conflicts keeps the server's
 * row, stores the conflict (both versions, as pulls send them) and
 * succeeds; the device is sent the server's row by its next pull. The user
 * later picks a side with sync_resolve_conflict(), which writes the choice
 * as a new change every device pulls.
 */
#include "pg_sync.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(sync_scope);
PG_FUNCTION_INFO_V1(sync_resolve_conflict);

static SPIPlanPtr queue_plan = NULL;

/* Stores the queued conflicts of a table's push and numbers them. As the owner. */
void
sync_queue_conflicts(PushTable *pt)
{
	SyncTable  *t = pt->t;
	SyncOwnerCtx owner_ctx;
	int			i;

	for (i = 0; i < pt->nrecs; i++)
	{
		PushRecord *r = &pt->recs[i];
		Datum		args[6];
		char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};
		bool		isnull;
		int			rc;

		if (r->action != SA_QUEUE || r->conflict_id != 0)
			continue;			/* (queued already) */
		sync_owner_enter(&owner_ctx);
		if (queue_plan == NULL)
		{
			Oid			types[6] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, JSONOID, JSONOID};

			queue_plan = sync_prepare(
				"INSERT INTO _pg_sync.conflicts (table_id, record_id, owner, user_id, client_record, server_record)"
				" VALUES ($1, $2, $3, $4, $5, $6) RETURNING conflict_id", 6, types);
		}
		args[0] = Int32GetDatum(t->table_id);
		args[1] = CStringGetTextDatum(r->id);
		args[2] = CStringGetTextDatum(pt->owner ? pt->owner : "");
		args[3] = CStringGetTextDatum(pt->user ? pt->user : "");
		if (r->rec)
			args[4] = CStringGetTextDatum(sync_record_json(t, r->id, r->rec));
		else
			nulls[4] = 'n';
		if (r->exists)
			args[5] = CStringGetTextDatum(sync_row_json(t, r->id, r->server, r->server_nulls));
		else
			nulls[5] = 'n';
		rc = SPI_execute_plan(queue_plan, args, nulls, false, 1);
		sync_check_spi(rc, SPI_OK_INSERT_RETURNING, "queueing a conflict");
		r->conflict_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		sync_owner_leave(&owner_ctx);
	}
}

/* The calling user's id (28000 when there is none). */
static char *
caller(void)
{
	char	   *user = sync_current_user_id(NULL);

	if (user == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no user id was given"),
				 errdetail("Claim \"%s\" of request.jwt.claims is missing.", sync_user_claim)));
	return user;
}

/*
 * SQL: _pg_sync.scope(relid) — the calling user as the owner column of a
 * registered per-user table holds it (NULL for a shared table): whose
 * conflicts of that table the user sees.
 */
Datum
sync_scope(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *user = caller();
	SyncTable  *t;
	char	   *scope = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	SPI_connect();
	t = sync_registry_lookup(relid, true);
	if (t != NULL && t->owner >= 0)
		scope = MemoryContextStrdup(cxt, sync_owner_text(t, user));
	SPI_finish();
	if (scope == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(scope));
}

/*
 * SQL: sync_resolve_conflict(conflict_id, resolution, merged) — closes one
 * of the caller's open conflicts: "server" keeps the server's row, "client"
 * writes the record the device pushed, "merged" writes the given record.
 * Either way every device is sent the result by its next pull. Unknown, or
 * another user's: 42704; already resolved: SY007.
 */
Datum
sync_resolve_conflict(PG_FUNCTION_ARGS)
{
	int64		id = PG_GETARG_INT64(0);
	char	   *resolution = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *merged = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *user = caller();
	MemoryContext callcxt,
				oldcxt;
	SyncOwnerCtx owner_ctx;
	Datum		args[2];
	Oid			types[2] = {INT8OID, TEXTOID};
	int			rc;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	td;
	char	   *table_name,
			   *record_id,
			   *owner,
			   *pusher,
			   *client_record,
			   *chosen = NULL;
	bool		resolved,
				server_gone;
	List	   *tables;
	SyncTableRef *ref;
	SyncTable  *t;
	SyncToken	none = {0};
	PushTable	pt;
	StringInfoData doc,
				out;
	SyncChanges *changes;
	text	   *result;

	if (resolution == NULL || (strcmp(resolution, "server") != 0 && strcmp(resolution, "client") != 0 &&
							   strcmp(resolution, "merged") != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("resolution must be server, client or merged")));
	if ((merged != NULL) != (strcmp(resolution, "merged") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a merged record is given with resolution merged, and only then")));

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_resolve_conflict", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);
	initStringInfo(&out);
	SPI_connect();

	/* the conflict, locked: two resolutions of it queue up, the second finds it closed */
	sync_owner_enter(&owner_ctx);
	args[0] = Int64GetDatum(id);
	rc = SPI_execute_with_args(
		"SELECT t.name, k.record_id, k.owner, k.user_id, k.client_record::pg_catalog.text,"
		"       k.server_record IS NULL, k.resolved_at IS NOT NULL, t.owner_column IS NULL"
		"  FROM _pg_sync.conflicts k JOIN _pg_sync.tables t ON t.table_id OPERATOR(pg_catalog.=) k.table_id"
		" WHERE k.conflict_id OPERATOR(pg_catalog.=) $1 FOR UPDATE OF k",
		1, types, args, NULL, false, 1);
	sync_owner_leave(&owner_ctx);
	sync_check_spi(rc, SPI_OK_SELECT, "reading a conflict");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no conflict " INT64_FORMAT " of this user", id)));
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	table_name = SPI_getvalue(tup, td, 1);
	record_id = SPI_getvalue(tup, td, 2);
	owner = SPI_getvalue(tup, td, 3);
	pusher = SPI_getvalue(tup, td, 4);
	client_record = SPI_getvalue(tup, td, 5);
	server_gone = DatumGetBool(SPI_getbinval(tup, td, 6, &isnull));
	resolved = DatumGetBool(SPI_getbinval(tup, td, 7, &isnull));

	/* the table, locked against DDL; the caller must be the one the conflict belongs to */
	sync_owner_enter(&owner_ctx);
	tables = sync_registry_load(&none, RowExclusiveLock, list_make1(table_name));
	sync_owner_leave(&owner_ctx);
	ref = NULL;
	for (int i = 0; i < list_length(tables); i++)
		if (strcmp(((SyncTableRef *) list_nth(tables, i))->name, table_name) == 0)
			ref = list_nth(tables, i);
	if (ref == NULL || ref->vanished)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no conflict " INT64_FORMAT " of this user", id)));
	t = ref->desc;
	if (t->owner >= 0 ? strcmp(owner, sync_owner_text(t, user)) != 0 : strcmp(pusher, user) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no conflict " INT64_FORMAT " of this user", id)));
	if (resolved)
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_CONFLICT_RESOLVED),
				 errmsg("conflict " INT64_FORMAT " is resolved already", id)));

	/* the write: the chosen record, or a delete; "server" only resends the server's state */
	memset(&pt, 0, sizeof(pt));
	if (strcmp(resolution, "server") == 0)
	{
		bool		gone = server_gone;

		sync_mark_changed(t, owner, &record_id, &gone, 1);
	}
	else
	{
		chosen = strcmp(resolution, "client") == 0 ? client_record : merged;
		initStringInfo(&doc);
		appendStringInfoChar(&doc, '{');
		escape_json(&doc, t->name);
		if (chosen == NULL)
		{
			appendStringInfoString(&doc, ":{\"deleted\":[");
			escape_json(&doc, record_id);
			appendStringInfoString(&doc, "]}}");
		}
		else
			appendStringInfo(&doc, ":{\"updated\":[%s]}}", chosen);
		changes = sync_decode_changes(doc.data, doc.len);
		if (changes->ntables != 1 || changes->tables[0].nrecords + changes->tables[0].ndeleted != 1 ||
			strcmp(changes->tables[0].nrecords ? changes->tables[0].records[0].id : changes->tables[0].deleted[0],
				   record_id) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the merged record must be a JSON object with \"id\": \"%s\"", record_id)));
		pt.t = t;
		pt.tc = &changes->tables[0];
		pt.user = user;
		pt.owner = t->owner >= 0 ? owner : NULL;
		pt.force = true;
		sync_push_check(&pt);
		sync_push_lock(&pt, &none);
		sync_push_resolve(&pt);
		sync_push_write(&pt);
	}

	sync_owner_enter(&owner_ctx);
	args[1] = CStringGetTextDatum(resolution);
	rc = SPI_execute_with_args(
		"UPDATE _pg_sync.conflicts SET resolved_at = pg_catalog.now(), resolution = $2"
		" WHERE conflict_id OPERATOR(pg_catalog.=) $1",
		2, types, args, NULL, false, 0);
	sync_owner_leave(&owner_ctx);
	sync_check_spi(rc, SPI_OK_UPDATE, "closing a conflict");

	appendStringInfo(&out, "{\"conflict_id\":" INT64_FORMAT ",\"table\":", id);
	escape_json(&out, t->name);
	appendStringInfoString(&out, ",\"id\":");
	escape_json(&out, record_id);
	appendStringInfo(&out, ",\"resolution\":\"%s\",\"created\":" INT64_FORMAT ",\"updated\":" INT64_FORMAT
					 ",\"deleted\":" INT64_FORMAT "}", resolution, pt.created, pt.updated, pt.deleted);
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	result = cstring_to_text_with_len(out.data, out.len);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(result);
}
