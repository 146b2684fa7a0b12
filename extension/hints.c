/*
 * hints.c — realtime hints without a NOTIFY in every write: a server that
 * holds many devices' connections (the edge function's /sync/events) asks,
 * for all of their users in one call, which have changes in scope that a
 * snapshot it got before did not see, and tells those users' devices to
 * pull. Writers pay nothing: the question is an index range over the change
 * records per table.
 */
#include "pg_sync.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_changed_users);

static SPIPlanPtr any_plan = NULL;
static SPIPlanPtr now_plan = NULL;

/* Whether a table has a change of one owner that a snapshot did not see ($1 table, $2 owner, $3 snapshot). */
static SPIPlanPtr
any_plan_of(void)
{
	if (any_plan == NULL)
	{
		Oid			types[3] = {INT4OID, TEXTOID, PG_SNAPSHOTOID};

		any_plan = sync_prepare(
			"SELECT FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($3)"
			"   AND NOT pg_catalog.pg_visible_in_snapshot(xid, $3) LIMIT 1", 3, types);
	}
	return any_plan;
}

/*
 * SQL: sync_changed_users(since text, user_ids text[]) → json
 * {"next": position, "all": bool, "users": [user ids]} — the users among
 * user_ids with a change in scope that position since (a "next" of an
 * earlier call; NULL: none yet) did not see; "all" when a shared table
 * changed (every user's devices should pull).
 */
Datum
sync_changed_users(PG_FUNCTION_ARGS)
{
	text	   *since_t = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);
	ArrayType  *users_a = PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *users = NULL;
	bool	   *unulls = NULL;
	int			nusers = 0;
	Datum		since = (Datum) 0;
	char	   *next;
	bool		all = false;
	HTAB	   *changed;
	List	   *tables;
	ListCell   *lc;
	SyncOwnerCtx owner_ctx;
	StringInfoData out;
	int			i,
				rc,
				n = 0;
	HASH_SEQ_STATUS seq;
	char	  **e;
	MemoryContext caller = CurrentMemoryContext;
	text	   *result;

	if (users_a)
	{
		if (ARR_NDIM(users_a) > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("user_ids must be a one-dimensional array")));
		deconstruct_array(users_a, TEXTOID, -1, false, TYPALIGN_INT, &users, &unulls, &nusers);
	}
	if (since_t)
		since = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(text_to_cstring(since_t)));

	SPI_connect();
	sync_owner_enter(&owner_ctx);
	if (now_plan == NULL)
		now_plan = sync_prepare("SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text", 0, NULL);
	rc = SPI_execute_plan(now_plan, NULL, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading the snapshot");
	next = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	tables = since_t ? sync_registry_load(NULL, AccessShareLock, NIL) : NIL;
	sync_owner_leave(&owner_ctx);

	changed = sync_idset_create();
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);
		SyncTable  *t = ref->desc;
		Datum		args[3];
		Datum	   *owners;

		if (ref->vanished || all)
			continue;
		args[0] = Int32GetDatum(t->table_id);
		args[2] = since;
		if (t->owner < 0)
		{
			sync_owner_enter(&owner_ctx);
			args[1] = CStringGetTextDatum("");
			rc = SPI_execute_plan(any_plan_of(), args, NULL, true, 1);
			sync_check_spi(rc, SPI_OK_SELECT, "reading changes");
			all = SPI_processed > 0;
			sync_owner_leave(&owner_ctx);
			continue;
		}
		if (nusers == 0)
			continue;
		/*
		 * Each user as the owner column holds it (the column's type decides),
		 * probed alone: one index range each, whatever the planner knows of
		 * the change records' size.
		 */
		owners = palloc0(sizeof(Datum) * nusers);
		for (i = 0; i < nusers; i++)	/* (as the caller: the column type's functions) */
			if (!unulls[i])
				owners[i] = CStringGetTextDatum(sync_owner_text(t, TextDatumGetCString(users[i])));
		sync_owner_enter(&owner_ctx);
		for (i = 0; i < nusers; i++)
		{
			char	   *user;

			if (unulls[i])
				continue;
			user = TextDatumGetCString(users[i]);
			if (sync_idset_has(changed, user))
				continue;
			args[1] = owners[i];
			rc = SPI_execute_plan(any_plan_of(), args, NULL, true, 1);
			sync_check_spi(rc, SPI_OK_SELECT, "reading changes");
			if (SPI_processed > 0)
				sync_idset_add(changed, user);
		}
		sync_owner_leave(&owner_ctx);
		pfree(owners);
	}

	initStringInfo(&out);
	appendStringInfoString(&out, "{\"next\":");
	escape_json(&out, next);
	appendStringInfo(&out, ",\"all\":%s,\"users\":[", all ? "true" : "false");
	hash_seq_init(&seq, changed);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (n++ > 0)
			appendStringInfoChar(&out, ',');
		escape_json(&out, *e);
	}
	appendStringInfoString(&out, "]}");
	MemoryContextSwitchTo(caller);
	result = cstring_to_text_with_len(out.data, out.len);
	SPI_finish();
	PG_RETURN_TEXT_P(result);
}
