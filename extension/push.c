/*
 * push.c — sync_push: applies a WatermelonDB changes document in one
 * transaction. Decode and check the whole document first, then per table in
 * registration order: lock, test for conflicts against the client's token,
 * apply. Any error leaves nothing applied.
 */
#include "pg_sync.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(sync_push);

/* Finds the registered table a client name refers to. */
static SyncTableRef *
find_table(List *tables, const char *name)
{
	ListCell   *lc;

	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);

		if (strcmp(ref->name, name) == 0)
			return ref;
	}
	return NULL;
}

/* SQL: sync_push(changes, last_pulled_at, user_id, client_id, push_id) */
Datum
sync_push(PG_FUNCTION_ARGS)
{
	text	   *doc;
	int64		token;
	MemoryContext callcxt,
				oldcxt;
	SyncChanges *changes;
	SyncToken	tok;
	List	   *tables;
	ListCell   *lc;
	SyncOwnerCtx owner_ctx;
	int64		counts[5] = {0, 0, 0, 0, 0};	/* created, updated, deleted, conflicts, rejected */
	int			i;
	StringInfoData result,
				per_table;
	char	   *explicit_user;
	char	   *client_id;
	char	   *push_id;
	char	   *user = NULL;
	bool		user_known = false;
	List	   *rejected = NIL;
	List	   *names = NIL;
	SyncDevice	dev;
	char	   *stored;
	text	   *out;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("changes must not be null")));
	doc = PG_GETARG_TEXT_PP(0);
	token = PG_ARGISNULL(1) ? 0 : PG_GETARG_INT64(1);
	if (VARSIZE_ANY_EXHDR(doc) > (Size) sync_max_push_bytes)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("push of %zu bytes is larger than %d bytes",
						(size_t) VARSIZE_ANY_EXHDR(doc), sync_max_push_bytes),
				 errhint("Raise pg_sync.max_push_bytes or push in smaller batches.")));
	explicit_user = (PG_NARGS() > 2 && !PG_ARGISNULL(2)) ? text_to_cstring(PG_GETARG_TEXT_PP(2)) : NULL;
	client_id = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ? text_to_cstring(PG_GETARG_TEXT_PP(3)) : NULL;
	push_id = (PG_NARGS() > 4 && !PG_ARGISNULL(4)) ? text_to_cstring(PG_GETARG_TEXT_PP(4)) : NULL;

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_push", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);
	SPI_connect();

	/* the device: refused when deactivated; a push it made already is answered from the ledger */
	if (client_id || push_id)
	{
		user = sync_current_user_id(explicit_user);
		user_known = true;
	}
	sync_device_open(&dev, user, client_id, true);
	if (push_id && (stored = sync_ledger_claim(&dev, push_id, doc)) != NULL)
	{
		SPI_finish();
		MemoryContextSwitchTo(oldcxt);
		out = cstring_to_text(stored);
		MemoryContextDelete(callcxt);
		PG_RETURN_TEXT_P(out);
	}

	changes = sync_decode_changes(VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc));

	/* the tables this push writes */
	for (i = 0; i < changes->ntables; i++)
		if (changes->tables[i].nrecords + changes->tables[i].ndeleted > 0)
			names = lappend(names, changes->tables[i].name);

	sync_owner_enter(&owner_ctx);
	sync_token_resolve(token, &tok);
	tables = sync_registry_load(&tok, RowExclusiveLock, names);
	sync_owner_leave(&owner_ctx);
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);

		if (ref->vanished && sync_name_listed(names, ref->name))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("synced table \"%s\" was dropped while this push waited for it", ref->name),
					 errdetail("Nothing of this push was applied."),
					 errhint("Pull, then push again.")));
	}

	/* every named table must be registered, unless its entry is empty */
	for (i = 0; i < changes->ntables; i++)
	{
		SyncTableChanges *tc = &changes->tables[i];

		if (find_table(tables, tc->name) == NULL && tc->nrecords + tc->ndeleted > 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table \"%s\" is not synced", tc->name),
					 errdetail("Nothing of this push was applied.")));
	}
	if (token == 0)
		for (i = 0; i < changes->ntables; i++)
			if (changes->tables[i].ndeleted > 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("a push without last_pulled_at cannot delete records"),
						 errdetail("Table \"%s\" lists deleted records the client never pulled.",
								   changes->tables[i].name)));

	if (explicit_user && !user_known)
	{
		user = sync_current_user_id(explicit_user);
		user_known = true;
	}

	/* apply in registration order: concurrent pushes lock in the same order */
	{
		MemoryContext spicxt = MemoryContextSwitchTo(callcxt);

		initStringInfo(&per_table);	/* {"<table id>": {"pushes":1, ...}, ...} */
		MemoryContextSwitchTo(spicxt);
	}
	appendStringInfoChar(&per_table, '{');
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);

		for (i = 0; i < changes->ntables; i++)
		{
			SyncTableChanges *tc = &changes->tables[i];
			List	   *tab_rejected = NIL;
			int64		before[5];

			if (strcmp(tc->name, ref->name) != 0 || tc->nrecords + tc->ndeleted == 0)
				continue;
			if (ref->desc->owner >= 0 && !user_known)
			{
				user = sync_current_user_id(NULL);
				user_known = true;
			}
			if (ref->desc->owner >= 0 && user == NULL)
				sync_no_user(ref->desc->name);
			memcpy(before, counts, sizeof(counts));
			sync_apply_table(ref->desc, tc, &tok, ref->new_since_token, user, counts, &tab_rejected);
			counts[4] += list_length(tab_rejected);
			if (tab_rejected != NIL)
				rejected = lappend(rejected, lcons(ref->desc->name, tab_rejected));
			appendStringInfo(&per_table, "%s\"%d\":{\"pushes\":1,\"records\":%d,\"rejected\":%d,\"conflicts\":" INT64_FORMAT "}",
							 per_table.len > 1 ? "," : "", ref->desc->table_id,
							 tc->nrecords + tc->ndeleted, list_length(tab_rejected),
							 counts[3] - before[3]);
		}
	}
	appendStringInfoChar(&per_table, '}');

	/* {"created": n, "updated": n, "deleted": n[, "experimentalRejectedIds": {...}]} */
	{
		MemoryContext spicxt = MemoryContextSwitchTo(callcxt);

		initStringInfo(&result);	/* outlives SPI_finish */
		MemoryContextSwitchTo(spicxt);
	}
	appendStringInfo(&result, "{\"created\":" INT64_FORMAT ",\"updated\":" INT64_FORMAT
					 ",\"deleted\":" INT64_FORMAT, counts[0], counts[1], counts[2]);
	if (rejected != NIL)
	{
		appendStringInfoString(&result, ",\"experimentalRejectedIds\":{");
		foreach(lc, rejected)
		{
			List	   *ids = lfirst(lc);
			ListCell   *lc2;

			if (foreach_current_index(lc) > 0)
				appendStringInfoChar(&result, ',');
			escape_json(&result, linitial(ids));
			appendStringInfoString(&result, ":[");
			for_each_from(lc2, ids, 1)
			{
				if (foreach_current_index(lc2) > 1)
					appendStringInfoChar(&result, ',');
				escape_json(&result, lfirst(lc2));
			}
			appendStringInfoChar(&result, ']');
		}
		appendStringInfoChar(&result, '}');
	}
	appendStringInfoChar(&result, '}');

	/* in the same transaction as the data: the device's counters, the ledger */
	{
		int64		records = 0;

		for (i = 0; i < changes->ntables; i++)
			records += changes->tables[i].nrecords + changes->tables[i].ndeleted;
		sync_device_pushed(&dev, records, counts[3], counts[4], per_table.data);
	}
	if (push_id)
		sync_ledger_store(&dev, push_id, result.data);
	SPI_finish();

	MemoryContextSwitchTo(oldcxt);
	out = cstring_to_text_with_len(result.data, result.len);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(out);
}
