/*
 * push.c — sync_push: applies a WatermelonDB changes document in one
 * transaction, in stages:
 *
 *   1. check the whole document before any row is locked: its shape (the
 *      decoder), the device, a push_id seen before (answered from the
 *      ledger), the token, the tables (locked against DDL), every record's
 *      id (one per push) and values (converted to the columns' types);
 *   2. per table, in registration order: lock the records and rows and find
 *      the conflicts (apply.c);
 *   3. settle them by the table's policy (policy.c), queue manual ones
 *      (conflicts.c);
 *   4. write (apply.c).
 *
 * Any error leaves nothing applied — but with push_mode per_record, a record
 * whose values or constraints fail is rejected and the rest applies.
 */
#include "pg_sync.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

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

/* Index of the writable column a record field sets, or -1 (unknown fields are ignored). */
static int
column_index(SyncTable *t, const char *name)
{
	int			i;

	for (i = 0; i < t->ncols; i++)
		if (t->cols[i].writable && i != t->key && i != t->owner &&
			strcmp(t->cols[i].name, name) == 0)
			return i;
	return -1;
}

/* Converts a record's fields to the values it writes. */
static void
record_values(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	int			f;

	for (f = 0; f < r->rec->nfields; f++)
	{
		int			c = column_index(t, r->rec->fields[f].key);

		if (c < 0)
			continue;
		r->vals[c] = sync_value_to_datum(t, &t->cols[c], r->id, &r->rec->fields[f].value, &r->nulls[c]);
		r->set[c] = true;
	}
}

/*
 * The same, for push_mode per_record: a value that does not fit rejects the
 * record (its own subtransaction) instead of failing the push. A cancel or
 * anything but a data error still fails it.
 */
static void
record_values_or_reject(PushTable *pt, PushRecord *r)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		record_values(pt, r);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (ERRCODE_TO_CATEGORY(ed->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			ed->sqlerrcode != ERRCODE_DATATYPE_MISMATCH)
			ReThrowError(ed);
		r->action = SA_REJECT;
		r->error = ed->message;
	}
	PG_END_TRY();
}

/*
 * Check stage of one table: every record's canonical id (an id twice in one
 * push is an error), and the values it writes, as the columns' types. The
 * owner column of a per-user table always holds the caller.
 */
void
sync_push_check(PushTable *pt)
{
	SyncTable  *t = pt->t;
	SyncTableChanges *tc = pt->tc;
	HTAB	   *seen = sync_idset_create();
	Datum		owner_value = (Datum) 0;
	int			i;

	if (pt->owner != NULL)
	{
		SyncColumn *oc = &t->cols[t->owner];

		owner_value = InputFunctionCall(&oc->infn, (char *) pt->owner, oc->ioparam, oc->typmod);
	}
	pt->nrecs = tc->nrecords + tc->ndeleted;
	pt->recs = palloc0(sizeof(PushRecord) * (pt->nrecs + 1));
	for (i = 0; i < pt->nrecs; i++)
	{
		PushRecord *r = &pt->recs[i];
		const char *raw = i < tc->nrecords ? tc->records[i].id : tc->deleted[i - tc->nrecords];
		Datum		key = sync_id_to_datum(t, raw);

		r->id = OutputFunctionCall(&t->cols[t->key].outfn, key);
		if (sync_idset_has(seen, r->id))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("record \"%s\" of table \"%s\" appears more than once in the push",
							raw, t->name),
					 errdetail("Nothing of this push was applied.")));
		sync_idset_add(seen, r->id);
		r->vals = palloc0(sizeof(Datum) * t->ncols);
		r->nulls = palloc0(sizeof(bool) * t->ncols);
		r->set = palloc0(sizeof(bool) * t->ncols);
		r->vals[t->key] = key;
		r->set[t->key] = true;
		if (pt->owner != NULL)
		{
			r->vals[t->owner] = owner_value;
			r->set[t->owner] = true;
		}
		if (i >= tc->nrecords || t->pull_only)
			continue;			/* a delete; or a record of a pull-only table (rejected) */
		r->rec = &tc->records[i];
		if (t->per_record)
			record_values_or_reject(pt, r);
		else
			record_values(pt, r);
	}
}

/* Appends a JSON object's member name (and opens it) to a result being built. */
static void
result_key(StringInfo out, bool *first, const char *name)
{
	if (!*first)
		appendStringInfoChar(out, ',');
	*first = false;
	escape_json(out, name);
	appendStringInfoChar(out, ':');
}

/*
 * The push result: {"created", "updated", "deleted"}, and when there are any
 * "experimentalRejectedIds": {table: [id]}, "conflicts": [{table, id, policy,
 * resolution, conflict_id, clamped}] and "errors": {table: {id: message}}.
 */
static char *
push_result(PushTable *pts, int n)
{
	static const char *const policies[] = {"abort", "client_wins", "server_wins", "last_write_wins",
	"version", "merge", "custom", "manual", "insert_only"};
	StringInfoData out;
	int64		created = 0,
				updated = 0,
				deleted = 0;
	int			i,
				k;
	bool		any_rejected = false,
				any_conflict = false;

	for (i = 0; i < n; i++)
	{
		created += pts[i].created;
		updated += pts[i].updated;
		deleted += pts[i].deleted;
		for (k = 0; k < pts[i].nrecs; k++)
		{
			any_rejected |= pts[i].recs[k].action == SA_REJECT;
			any_conflict |= pts[i].recs[k].resolution != NULL;
		}
	}
	initStringInfo(&out);
	appendStringInfo(&out, "{\"created\":" INT64_FORMAT ",\"updated\":" INT64_FORMAT
					 ",\"deleted\":" INT64_FORMAT, created, updated, deleted);
	if (any_rejected)
	{
		bool		ft = true;

		appendStringInfoString(&out, ",\"experimentalRejectedIds\":{");
		for (i = 0; i < n; i++)
		{
			bool		fi = true;

			for (k = 0; k < pts[i].nrecs; k++)
			{
				if (pts[i].recs[k].action != SA_REJECT)
					continue;
				if (fi)
				{
					result_key(&out, &ft, pts[i].t->name);
					appendStringInfoChar(&out, '[');
				}
				else
					appendStringInfoChar(&out, ',');
				fi = false;
				escape_json(&out, pts[i].recs[k].id);
			}
			if (!fi)
				appendStringInfoChar(&out, ']');
		}
		appendStringInfoChar(&out, '}');
	}
	if (any_conflict)
	{
		bool		first = true;

		appendStringInfoString(&out, ",\"conflicts\":[");
		for (i = 0; i < n; i++)
			for (k = 0; k < pts[i].nrecs; k++)
			{
				PushRecord *r = &pts[i].recs[k];

				if (r->resolution == NULL)
					continue;
				if (!first)
					appendStringInfoChar(&out, ',');
				first = false;
				appendStringInfoString(&out, "{\"table\":");
				escape_json(&out, pts[i].t->name);
				appendStringInfoString(&out, ",\"id\":");
				escape_json(&out, r->id);
				appendStringInfo(&out, ",\"policy\":\"%s\",\"resolution\":\"%s\"",
								 policies[pts[i].t->policy], r->resolution);
				if (r->action == SA_QUEUE)
					appendStringInfo(&out, ",\"conflict_id\":" INT64_FORMAT, r->conflict_id);
				if (r->clamped)
					appendStringInfoString(&out, ",\"clamped\":true");
				appendStringInfoChar(&out, '}');
			}
		appendStringInfoChar(&out, ']');
	}
	if (any_rejected)
	{
		bool		ft = true;

		appendStringInfoString(&out, ",\"errors\":{");
		for (i = 0; i < n; i++)
		{
			bool		fi = true;

			for (k = 0; k < pts[i].nrecs; k++)
			{
				PushRecord *r = &pts[i].recs[k];

				if (r->action != SA_REJECT)
					continue;
				if (fi)
				{
					result_key(&out, &ft, pts[i].t->name);
					appendStringInfoChar(&out, '{');
				}
				else
					appendStringInfoChar(&out, ',');
				fi = false;
				escape_json(&out, r->id);
				appendStringInfoChar(&out, ':');
				escape_json(&out, r->error ? r->error : "rejected");
			}
			if (!fi)
				appendStringInfoChar(&out, '}');
		}
		appendStringInfoChar(&out, '}');
	}
	appendStringInfoChar(&out, '}');
	return out.data;
}

/*
 * Runs the stages for the tables of a push (pts, in registration order)
 * whose tables are locked and records checked; returns the result.
 */
static char *
apply_tables(PushTable *pts, int n, SyncToken *tok)
{
	int			i;

	for (i = 0; i < n; i++)
	{
		PushTable  *pt = &pts[i];

		if (pt->t->pull_only)
		{
			sync_push_reject_all(pt);
			continue;
		}
		sync_push_lock(pt, tok);
		sync_push_resolve(pt);
		sync_queue_conflicts(pt);
		sync_push_write(pt);
	}
	return push_result(pts, n);
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
	int			i,
				n = 0;
	char	   *explicit_user,
			   *client_id,
			   *push_id;
	char	   *user = NULL;
	bool		user_known = false;
	List	   *names = NIL;
	SyncDevice	dev;
	char	   *result;
	PushTable  *pts;
	StringInfoData per_table;
	int64		records = 0,
				conflicts = 0,
				rejected = 0;
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
	/* (a user_id given is checked at once: only trusted roles may name one) */
	if (client_id || push_id || explicit_user)
	{
		user = sync_current_user_id(explicit_user);
		user_known = true;
	}
	sync_device_open(&dev, user, client_id, true);
	if (push_id && (result = sync_ledger_claim(&dev, push_id, doc)) != NULL)
		goto done;

	changes = sync_decode_changes(VARDATA_ANY(doc), VARSIZE_ANY_EXHDR(doc));
	for (i = 0; i < changes->ntables; i++)
		if (changes->tables[i].nrecords + changes->tables[i].ndeleted > 0)
			names = lappend(names, changes->tables[i].name);

	/* the token, and the tables (locked against DDL) */
	sync_owner_enter(&owner_ctx);
	sync_token_resolve(token, &tok, NULL);
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
		if (token == 0 && tc->ndeleted > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a push without last_pulled_at cannot delete records"),
					 errdetail("Table \"%s\" lists deleted records the client never pulled.", tc->name)));
	}

	/* check every table's records before any row is locked, in registration order */
	pts = palloc0(sizeof(PushTable) * (list_length(tables) + 1));
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);
		SyncTableChanges *tc = NULL;
		PushTable  *pt;

		for (i = 0; i < changes->ntables; i++)
			if (strcmp(changes->tables[i].name, ref->name) == 0 &&
				changes->tables[i].nrecords + changes->tables[i].ndeleted > 0)
				tc = &changes->tables[i];
		if (tc == NULL)
			continue;
		pt = &pts[n++];
		pt->t = ref->desc;
		pt->tc = tc;
		pt->new_since_token = ref->new_since_token;
		if (!user_known)
		{
			user = sync_current_user_id(explicit_user);
			user_known = true;
		}
		pt->user = user;
		if (client_id)
			pt->origin = psprintf("%d:%s%s", (int) strlen(user ? user : ""), user ? user : "", client_id);
		if (pt->t->owner >= 0)
		{
			if (user == NULL)
				sync_no_user(pt->t->name);
			pt->owner = sync_owner_text(pt->t, user);
		}
		sync_push_check(pt);
	}

	result = apply_tables(pts, n, &tok);

	/* in the same transaction as the data: the device's counters, the ledger */
	initStringInfo(&per_table);
	appendStringInfoChar(&per_table, '{');
	for (i = 0; i < n; i++)
	{
		records += pts[i].nrecs;
		conflicts += pts[i].conflicts;
		rejected += pts[i].rejected;
		appendStringInfo(&per_table, "%s\"%d\":{\"pushes\":1,\"records\":%d,\"rejected\":" INT64_FORMAT
						 ",\"conflicts\":" INT64_FORMAT "}",
						 i > 0 ? "," : "", pts[i].t->table_id, pts[i].nrecs, pts[i].rejected, pts[i].conflicts);
	}
	appendStringInfoChar(&per_table, '}');
	sync_device_pushed(&dev, records, conflicts, rejected, per_table.data);
	if (push_id)
		sync_ledger_store(&dev, push_id, result);

done:
	result = MemoryContextStrdup(callcxt, result);	/* it outlives SPI_finish */
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	out = cstring_to_text(result);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(out);
}
