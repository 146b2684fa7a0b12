/*
 * apply.c — the locking and writing stages of a push, per table.
 *
 * Lock (sync_push_lock): the records' ids are locked in one global order
 * (advisory locks per id, tables in registration order), so pushes of the
 * same records serialise instead of deadlocking; then the rows that exist
 * are locked FOR UPDATE (read too when the policy needs them), and every
 * record is tested for a conflict against the client's token (or, for the
 * version policy, against the row's version).
 *
 * Write (sync_push_write): deletes, inserts and updates, each one
 * set-based statement per set of columns, passing the rows as an array of
 * the table's own row type. A statement that fails on a record's data is
 * replayed record by record to name the record (and, with push_mode
 * per_record, to reject just that record and keep the rest).
 */
#include "pg_sync.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/regproc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/typcache.h"
#include "utils/xid8.h"

static SPIPlanPtr conflict_plan = NULL;
static SPIPlanPtr conflict_range_plan = NULL;
static SPIPlanPtr changed_plan = NULL;

/* --- small helpers --- */

/* An array of key values, of the key column's array type. */
Datum
sync_ids_array(SyncTable *t, char **ids, int n)
{
	SyncColumn *k = &t->cols[t->key];
	Datum	   *d = palloc(sizeof(Datum) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = sync_id_to_datum(t, ids[i]);
	return PointerGetDatum(construct_array(d, n, k->typid, k->typlen, k->typbyval, k->typalign));
}

/* A text[] of C strings. */
static Datum
text_array(char **strs, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(strs[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Raises the push conflict error for a record. */
void
sync_conflict_error(SyncTable *t, const char *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNC_CONFLICT),
			 errmsg("push conflict: record \"%s\" of table \"%s\" changed on the server after the client's last pull",
					id, t->name),
			 errdetail("Nothing of this push was applied."),
			 errhint("Pull, then push again.")));
}

/*
 * Marks ids as changed in a scope of a table, in this transaction: the next
 * pull of that scope sends the row (gone[i] false) or the id in "deleted".
 * As the extension owner. For records a device keeps although the server
 * did not take them (rejected, or queued in the conflict inbox).
 */
void
sync_mark_changed(SyncTable *t, const char *scope, char **ids, bool *gone, int n)
{
	Datum		args[5];
	Datum	   *g = palloc(sizeof(Datum) * (n + 1));
	int			i,
				rc;
	SyncOwnerCtx owner_ctx;

	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		g[i] = BoolGetDatum(gone[i]);
	sync_owner_enter(&owner_ctx);
	if (changed_plan == NULL)
	{
		Oid			types[5] = {INT4OID, TEXTARRAYOID, TEXTOID, XID8OID, BOOLARRAYOID};

		changed_plan = sync_prepare(
			"INSERT INTO _pg_sync.row_meta AS m (table_id, id, owner, xid, deleted)"
			" SELECT $1, r.id, $3, $4, r.gone"
			"   FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($5)) AS r(id, gone)"
			" ON CONFLICT (table_id, id, owner) DO UPDATE"
			"   SET xid = excluded.xid, deleted = excluded.deleted", 5, types);
	}
	args[0] = Int32GetDatum(t->table_id);
	args[1] = text_array(ids, n);
	args[2] = CStringGetTextDatum(scope);
	args[3] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	args[4] = PointerGetDatum(construct_array(g, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	rc = SPI_execute_plan(changed_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "marking records for the next pull");
	sync_owner_leave(&owner_ctx);
}

/* --- lock --- */

/* qsort comparator for uint32 */
static int
cmp_u32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Serialises pushes that touch the same records, before any row is locked:
 * an exclusive lock per record id (a hash of it) in ascending order, under a
 * shared lock on the table; a push of more than SYNC_PUSH_KEY_LOCKS distinct
 * ids takes the table's lock exclusively instead. Tables are pushed in
 * registration order, so every push takes these locks in one global order and
 * two pushes never deadlock, whether the rows exist or are being created.
 * The locks live in a space of their own among advisory locks (field 4 of
 * the tag, see README) and go with the transaction.
 */
static void
lock_push_keys(SyncTable *t, char **ids, int n)
{
	uint32	   *h = palloc(sizeof(uint32) * (n + 1));
	int			nh = 0,
				i;
	LOCKTAG		tag;

	for (i = 0; i < n; i++)
		h[i] = hash_bytes((const unsigned char *) ids[i], strlen(ids[i]));
	qsort(h, n, sizeof(uint32), cmp_u32);
	for (i = 0; i < n; i++)
		if (nh == 0 || h[nh - 1] != h[i])
			h[nh++] = h[i];

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) t->table_id, 0, SYNC_LOCKTAG_TABLE);
	(void) LockAcquire(&tag, nh > SYNC_PUSH_KEY_LOCKS ? ExclusiveLock : ShareLock, false, false);
	if (nh > SYNC_PUSH_KEY_LOCKS)
		return;
	for (i = 0; i < nh; i++)
	{
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) t->table_id, h[i], SYNC_LOCKTAG_RECORD);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
}

/* The query locking (and reading) the rows whose keys are in an array. */
static SPIPlanPtr
lock_plan(SyncTable *t)
{
	StringInfoData sql;
	int			i;

	if (t->lock_plan)
		return t->lock_plan;
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT %s::pg_catalog.text, %s",
					 quote_identifier(t->cols[t->key].name),
					 t->owner >= 0 ? psprintf("%s::pg_catalog.text", quote_identifier(t->cols[t->owner].name)) : "NULL");
	if (sync_policy_reads_rows(t))
		for (i = 0; i < t->ncols; i++)
			appendStringInfo(&sql, ", %s", quote_identifier(t->cols[i].name));
	appendStringInfo(&sql, " FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1) ORDER BY 1 FOR UPDATE",
					 t->qualname, quote_identifier(t->cols[t->key].name));
	t->lock_plan = sync_prepare(sql.data, 1, &t->cols[t->key].arraytypid);
	return t->lock_plan;
}

/* qsort/bsearch comparator of records by id */
static int
cmp_record(const void *a, const void *b)
{
	return strcmp(((const PushRecord *) a)->id, ((const PushRecord *) b)->id);
}

/* The record of an id (the records are sorted by id, ids are unique). */
static PushRecord *
record_of(PushTable *pt, const char *id)
{
	PushRecord	key;

	key.id = (char *) id;
	return bsearch(&key, pt->recs, pt->nrecs, sizeof(PushRecord), cmp_record);
}

/* Reads the version a pushed record carries (as the version column's value). */
static bool
pushed_version(PushTable *pt, PushRecord *r, Datum *v, bool *isnull)
{
	int			c = pt->t->version_col;

	if (r->rec == NULL || !r->set[c])
		return false;
	*v = r->vals[c];
	*isnull = r->nulls[c];
	return true;
}

/*
 * Marks the records whose ids the last SPI query returned (column 1) as
 * conflicts; with flagged, only the rows whose column 2 is true.
 */
static void
mark_conflicts(PushTable *pt, bool flagged)
{
	TupleDesc	td = SPI_tuptable->tupdesc;
	uint64		j;

	for (j = 0; j < SPI_processed; j++)
	{
		HeapTuple	tup = SPI_tuptable->vals[j];
		PushRecord *r;
		bool		isnull;

		if (flagged && (!DatumGetBool(SPI_getbinval(tup, td, 2, &isnull)) || isnull))
			continue;
		r = record_of(pt, SPI_getvalue(tup, td, 1));
		if (r)
			r->conflict = true;
	}
}

/*
 * The conflicts of a push whose token names a checkpoint, from the records
 * of the owner written since the token's xmin: a range of row_meta_changes,
 * usually a few entries where probing the primary key for every pushed id
 * costs a descent per id. Read with the statement's fresh snapshot, so a
 * record is counted only if its write committed (an aborted write's index
 * entry is not). ORDER BY xid keeps every plan on that index: by the
 * primary key, xid would be a filter over every record of the owner. Gives
 * up, returning false, when the range holds more records than about twice
 * the push's (an owner with many changes since an old token): the caller
 * then probes by id. Runs as the extension owner.
 */
static bool
find_changed_since(PushTable *pt, SyncToken *tok)
{
	Datum		args[4];
	int64		limit = (int64) pt->nrecs * 2 + 64;
	int			rc;

	if (conflict_range_plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTOID, PG_SNAPSHOTOID, INT8OID};

		conflict_range_plan = sync_prepare(
			"SELECT id, NOT pg_catalog.pg_visible_in_snapshot(xid, $3) FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($3)"
			" ORDER BY xid LIMIT $4", 4, types);
	}
	args[0] = Int32GetDatum(pt->t->table_id);
	args[1] = CStringGetTextDatum(pt->owner ? pt->owner : "");
	args[2] = tok->snap;
	args[3] = Int64GetDatum(limit);
	rc = SPI_execute_plan(conflict_range_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "checking conflicts");
	if (SPI_processed >= (uint64) limit)
		return false;
	mark_conflicts(pt, true);
	return true;
}

/*
 * The conflicts of a push by its ids: the change record of each, by the
 * records' primary key, changed after the token (every one that exists
 * without a token). Runs as the extension owner.
 */
static void
find_changed_by_id(PushTable *pt, SyncToken *tok, char **ids)
{
	Datum		args[4];
	char		argnulls[4];
	int			rc;

	if (conflict_plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTARRAYOID, PG_SNAPSHOTOID, TEXTOID};

		/*
		 * By (table_id, owner, id), the records' primary key: a shared
		 * table's records all have the owner '' (capture.c, and
		 * sync_mark_changed's scope). With the owner optional, the generic
		 * plan the plan cache settles on scanned every record of the table.
		 * deleted, which row_meta_changes does not carry, keeps that index
		 * (which carries the ids) from answering it by reading every record
		 * of the owner. Planned for each call: the generic plan, counting on
		 * an owner of average size, took only (table_id, owner) from the
		 * primary key and filtered the ids, reading every record of the
		 * owner (28 ms for 3 ids of an owner of 100,000 records). Planned
		 * for the call's owner and ids, the ids are looked up in the key.
		 * One row per id (the primary key).
		 */
		conflict_plan = sync_prepare_custom(
			"SELECT id, deleted FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $4"
			"   AND id OPERATOR(pg_catalog.=) ANY($2)"
			"   AND ($3 IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(xid, $3))", 4, types);
	}
	args[0] = Int32GetDatum(pt->t->table_id);
	args[1] = text_array(ids, pt->nrecs);
	args[2] = tok->id != 0 ? tok->snap : (Datum) 0;
	args[3] = CStringGetTextDatum(pt->owner ? pt->owner : "");
	argnulls[0] = argnulls[1] = argnulls[3] = ' ';
	argnulls[2] = tok->id != 0 ? ' ' : 'n';
	rc = SPI_execute_plan(conflict_plan, args, argnulls, false, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "checking conflicts");
	mark_conflicts(pt, false);
}

/*
 * Lock stage: takes the push's locks on the table's records, locks the rows
 * that exist (reading them when the policy decides on them), and finds each
 * record's conflict. A row the caller may not write (another owner's, one
 * row-level security hides) rejects its record.
 */
void
sync_push_lock(PushTable *pt, SyncToken *tok)
{
	SyncTable  *t = pt->t;
	char	  **ids = palloc(sizeof(char *) * (pt->nrecs + 1));
	Datum		args[1];
	bool		check_all = tok->id == 0 || tok->sees_nothing || pt->new_since_token;
	bool		reads = sync_policy_reads_rows(t);
	SyncOwnerCtx owner_ctx;
	int			i,
				c,
				rc;
	uint64		j;

	qsort(pt->recs, pt->nrecs, sizeof(PushRecord), cmp_record);
	for (i = 0; i < pt->nrecs; i++)
		ids[i] = pt->recs[i].id;
	lock_push_keys(t, ids, pt->nrecs);

	/* the rows, locked in key order, waiting for their writers */
	args[0] = sync_ids_array(t, ids, pt->nrecs);
	rc = SPI_execute_plan(lock_plan(t), args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "locking rows");
	for (j = 0; j < SPI_processed; j++)
	{
		HeapTuple	tup = SPI_tuptable->vals[j];
		TupleDesc	td = SPI_tuptable->tupdesc;
		PushRecord *r = record_of(pt, SPI_getvalue(tup, td, 1));
		char	   *own = SPI_getvalue(tup, td, 2);

		if (r == NULL)
			continue;
		if (pt->owner != NULL && (own == NULL || strcmp(own, pt->owner) != 0))
		{
			r->foreign = true;
			continue;
		}
		r->exists = true;
		if (reads)
		{
			r->server = palloc(sizeof(Datum) * t->ncols);
			r->server_nulls = palloc(sizeof(bool) * t->ncols);
			for (c = 0; c < t->ncols; c++)
				r->server[c] = SPI_getbinval(tup, td, c + 3, &r->server_nulls[c]);
		}
	}

	/* conflicts: rows changed after the token, read with a fresh snapshot */
	sync_owner_enter(&owner_ctx);
	if (tok->id == 0 || !find_changed_since(pt, tok))
		find_changed_by_id(pt, tok, ids);
	sync_owner_leave(&owner_ctx);

	for (i = 0; i < pt->nrecs; i++)
	{
		PushRecord *r = &pt->recs[i];

		/* a client that never pulled the table cannot have seen its rows */
		if (check_all && r->exists)
			r->conflict = true;
		/* version: a stale (or missing) version is the conflict of a row that is there */
		if (t->policy == SP_VERSION && r->exists && r->rec != NULL)
		{
			Datum		v;
			bool		vnull;
			int			vc = t->version_col;

			r->conflict = !pushed_version(pt, r, &v, &vnull) ||
				vnull != r->server_nulls[vc] ||
				(!vnull && !datum_image_eq(v, r->server[vc], t->cols[vc].typbyval, t->cols[vc].typlen));
		}
		if (r->foreign)
		{
			/* another's row: never taken over; deleting it is ignored, as for a missing row */
			r->action = r->rec ? SA_REJECT : SA_SKIP;
			r->error = "the record belongs to another user, or is not visible to the caller";
			r->conflict = false;
		}
	}
}

/* --- write --- */

/* Frees the least recently used write plans of a table until at most keep are left. */
static void
evict_write_plans(SyncTable *t, int keep)
{
	SyncWritePlan **prevp = &t->write_plans;
	SyncWritePlan *wp;
	int			n = 0;

	while (*prevp != NULL && n < keep)
	{
		prevp = &(*prevp)->next;
		n++;
	}
	while ((wp = *prevp) != NULL)
	{
		*prevp = wp->next;
		if (wp->insert_plan)
			SPI_freeplan(wp->insert_plan);
		if (wp->update_plan)
			SPI_freeplan(wp->update_plan);
		pfree(wp->colset);
		pfree(wp);
		t->nwrite_plans--;
	}
}

/*
 * The insert and update plans for one set of columns, prepared on first use
 * and kept in a most-recently-used list of at most SYNC_MAX_WRITE_PLANS per
 * table (clients choose the sets of columns they push: what a backend keeps
 * must be bounded). The rows arrive as one array of the table's row type:
 * the statements' shapes never depend on more than the column set.
 */
static SyncWritePlan *
write_plan(SyncTable *t, const char *colset)
{
	SyncWritePlan *wp;
	SyncWritePlan **prevp;
	StringInfoData cols,
				vals,
				sets;
	int			i;
	bool		overriding = false;
	const char *key = quote_identifier(t->cols[t->key].name);
	Oid			arraytype = get_array_type(t->rowtype);
	MemoryContext old;

	for (prevp = &t->write_plans; (wp = *prevp) != NULL; prevp = &wp->next)
		if (strcmp(wp->colset, colset) == 0)
		{
			*prevp = wp->next;
			wp->next = t->write_plans;
			t->write_plans = wp;
			return wp;
		}
	evict_write_plans(t, SYNC_MAX_WRITE_PLANS - 1);

	initStringInfo(&cols);
	initStringInfo(&vals);
	initStringInfo(&sets);
	for (i = 0; i < t->ncols; i++)
	{
		const char *name;

		if (colset[i] != '1')
			continue;
		name = quote_identifier(t->cols[i].name);
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", name);
		appendStringInfo(&vals, "%sv.%s", vals.len ? ", " : "", name);
		if (i != t->key)
			appendStringInfo(&sets, "%s%s = v.%s", sets.len ? ", " : "", name, name);
		if (t->cols[i].identity_always)
			overriding = true;
	}

	old = MemoryContextSwitchTo(GetMemoryChunkContext(t));
	wp = palloc0(sizeof(SyncWritePlan));
	wp->colset = pstrdup(colset);
	MemoryContextSwitchTo(old);
	wp->insert_plan = sync_prepare(
		psprintf("INSERT INTO %s AS t (%s)%s SELECT %s FROM pg_catalog.unnest($1) AS v"
				 " ON CONFLICT (%s) DO NOTHING RETURNING %s::pg_catalog.text",
				 t->qualname, cols.data, overriding ? " OVERRIDING SYSTEM VALUE" : "",
				 vals.data, key, key),
		1, &arraytype);
	if (sets.len > 0)
		wp->update_plan = sync_prepare(
			psprintf("UPDATE ONLY %s AS t SET %s FROM pg_catalog.unnest($1) AS v"
					 " WHERE t.%s OPERATOR(pg_catalog.=) v.%s",
					 t->qualname, sets.data, key, key),
			1, &arraytype);
	wp->next = t->write_plans;
	t->write_plans = wp;
	t->nwrite_plans++;
	return wp;
}

/* The rows of some records, as an array of the table's row type. */
static Datum
rows_array(SyncTable *t, PushRecord **recs, int n)
{
	TupleDesc	desc = lookup_rowtype_tupdesc_copy(t->rowtype, -1);
	Datum	   *rows = palloc(sizeof(Datum) * (n + 1));
	Datum	   *values = palloc0(sizeof(Datum) * (desc->natts + 1));
	bool	   *nulls = palloc(sizeof(bool) * (desc->natts + 1));
	int			i,
				c;

	for (i = 0; i < n; i++)
	{
		memset(nulls, true, sizeof(bool) * desc->natts);
		for (c = 0; c < t->ncols; c++)
			if (recs[i]->set[c])
			{
				values[t->cols[c].attnum - 1] = recs[i]->vals[c];
				nulls[t->cols[c].attnum - 1] = recs[i]->nulls[c];
			}
		rows[i] = heap_copy_tuple_as_datum(heap_form_tuple(desc, values, nulls), desc);
	}
	return PointerGetDatum(construct_array(rows, n, t->rowtype, -1, false, TYPALIGN_DOUBLE));
}

/*
 * Whether an error of a set-based write comes from the data of a record (a
 * value, a constraint, a row-level security check), so that replaying the
 * records one by one can name the one it comes from. Anything else (a
 * cancel, a statement or lock timeout, a deadlock, a shutdown, out of memory)
 * is raised again at once, never replayed.
 */
static bool
record_error(int sqlerrcode)
{
	int			category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category == ERRCODE_DATA_EXCEPTION ||
		category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ||
		sqlerrcode == ERRCODE_WITH_CHECK_OPTION_VIOLATION;
}

/* One set-based write: a statement over some records (or the ids of deletes). */
typedef struct WriteBatch
{
	PushTable  *pt;
	SPIPlanPtr	plan;
	bool		deletes;		/* the plan takes an array of ids */
	PushRecord **recs;
	int			n;
	bool	   *failed;			/* per_record: the records the replay rejected */
	int			ok_rc;			/* the SPI result code of the plan's success */
} WriteBatch;

/* The argument of the batch's plan for records from..from+n-1. */
static Datum
batch_arg(WriteBatch *b, int from, int n)
{
	if (b->deletes)
	{
		char	  **ids = palloc(sizeof(char *) * (n + 1));
		int			i;

		for (i = 0; i < n; i++)
			ids[i] = b->recs[from + i]->id;
		return sync_ids_array(b->pt->t, ids, n);
	}
	return rows_array(b->pt->t, &b->recs[from], n);
}

/* Runs plan with one argument in a subtransaction; returns the error, or NULL. */
static ErrorData *
try_write(SPIPlanPtr plan, Datum arg, int *rc)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile ed = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		*rc = SPI_execute_plan(plan, &arg, NULL, false, 0);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	return ed;
}

/*
 * Runs one set-based write. When it fails on a record's data, the records
 * are replayed one at a time, in order: by default in a subtransaction that
 * is rolled back, to find the record the error comes from and raise it
 * naming table and record; with push_mode per_record each in its own
 * subtransaction that stays, so a bad record is rejected (b->failed) and the
 * rest written. Returns the SPI result code; SPI_tuptable holds RETURNING
 * rows (all of them, also from a replay).
 */
static int
run_write(WriteBatch *b)
{
	PushTable  *pt = b->pt;
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *ed;
	ErrorData  *volatile other = NULL;
	volatile int culprit = -1;
	int			rc = 0;

	ed = try_write(b->plan, batch_arg(b, 0, b->n), &rc);
	if (ed == NULL)
		return rc;
	/* a cancel, a timeout, a lock or serialization failure...: at once */
	if (!record_error(ed->sqlerrcode))
		ReThrowError(ed);

	if (pt->t->per_record)
	{
		SPITupleTable *all = NULL;
		uint64		nall = 0;
		int			g;

		for (g = 0; g < b->n; g++)
		{
			ErrorData  *one = try_write(b->plan, batch_arg(b, g, 1), &rc);

			if (one != NULL)
			{
				if (!record_error(one->sqlerrcode))
					ReThrowError(one);
				b->failed[g] = true;
				b->recs[g]->action = SA_REJECT;
				b->recs[g]->error = one->message;
				continue;
			}
			/* collect RETURNING rows of the records that stayed */
			if (SPI_tuptable && SPI_processed > 0)
			{
				if (all == NULL)
				{
					all = SPI_tuptable;
					nall = SPI_processed;
				}
				else
				{
					all->vals = repalloc(all->vals, sizeof(HeapTuple) * (nall + SPI_processed));
					memcpy(all->vals + nall, SPI_tuptable->vals, sizeof(HeapTuple) * SPI_processed);
					nall += SPI_processed;
				}
			}
		}
		SPI_tuptable = all;
		SPI_processed = nall;
		return b->ok_rc;		/* (also when every record was rejected) */
	}

	if (b->n == 1)
		culprit = 0;
	else
	{
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			for (int g = 0; g < b->n; g++)
			{
				Datum		arg = batch_arg(b, g, 1);

				culprit = g;
				SPI_execute_plan(b->plan, &arg, NULL, false, 0);
			}
			culprit = -1;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			other = CopyErrorData();
			FlushErrorState();
		}
		PG_END_TRY();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/* the replay itself was cancelled (or failed otherwise): that goes first */
		if (other != NULL && !record_error(other->sqlerrcode))
			ReThrowError(other);
	}
	if (culprit >= 0)
		ed->message = psprintf("record \"%s\" of table \"%s\": %s",
							   b->recs[culprit]->id, pt->t->name, ed->message);
	ReThrowError(ed);
	return 0;					/* not reached */
}

/* The deletes of a table (rows locked above: a missing row needs nothing). */
static void
write_deletes(PushTable *pt)
{
	SyncTable  *t = pt->t;
	PushRecord **recs = palloc(sizeof(PushRecord *) * (pt->nrecs + 1));
	WriteBatch	b;
	int			n = 0,
				i,
				rc;

	for (i = 0; i < pt->nrecs; i++)
		if (pt->recs[i].action == SA_DELETE && pt->recs[i].exists)
			recs[n++] = &pt->recs[i];
	if (n == 0)
		return;
	if (t->delete_plan == NULL)
		t->delete_plan = sync_prepare(
			psprintf("DELETE FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)", t->qualname,
					 quote_identifier(t->cols[t->key].name)),
			1, &t->cols[t->key].arraytypid);
	memset(&b, 0, sizeof(b));
	b.pt = pt;
	b.plan = t->delete_plan;
	b.deletes = true;
	b.recs = recs;
	b.n = n;
	b.failed = palloc0(sizeof(bool) * (n + 1));
	b.ok_rc = SPI_OK_DELETE;
	rc = run_write(&b);
	sync_check_spi(rc, SPI_OK_DELETE, "deleting rows");
	pt->deleted += SPI_processed;
}

/* The set of columns a record writes, as '1'/'0' per column. */
static char *
colset_of(SyncTable *t, PushRecord *r)
{
	char	   *cs = palloc(t->ncols + 1);
	int			i;

	for (i = 0; i < t->ncols; i++)
		cs[i] = r->set[i] ? '1' : '0';
	cs[t->ncols] = '\0';
	return cs;
}

/*
 * Whether the row of a record is there and the caller's, locking it (a
 * fresh look); reads it for the policies that decide on the server's row.
 */
static bool
visible_own(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	Datum		arg = sync_ids_array(t, &r->id, 1);
	int			rc = SPI_execute_plan(lock_plan(t), &arg, NULL, false, 0);
	HeapTuple	tup;
	TupleDesc	td;
	char	   *own;
	int			c;

	sync_check_spi(rc, SPI_OK_SELECT, "locking a row");
	if (SPI_processed != 1)
		return false;
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	own = SPI_getvalue(tup, td, 2);
	if (pt->owner != NULL && (own == NULL || strcmp(own, pt->owner) != 0))
		return false;
	if (sync_policy_reads_rows(t))
	{
		r->server = palloc(sizeof(Datum) * t->ncols);
		r->server_nulls = palloc(sizeof(bool) * t->ncols);
		for (c = 0; c < t->ncols; c++)
		{
			r->server[c] = SPI_getbinval(tup, td, c + 3, &r->server_nulls[c]);
			if (!r->server_nulls[c] && !t->cols[c].typbyval)
				r->server[c] = datumCopy(r->server[c], false, t->cols[c].typlen);
		}
	}
	return true;
}

/* qsort_arg comparator of record indexes: by the columns they write, then in id order */
static int
cmp_colset(const void *a, const void *b, void *arg)
{
	char	  **colsets = arg;
	int			ia = *(const int *) a,
				ib = *(const int *) b;
	int			c = strcmp(colsets[ia], colsets[ib]);

	return c != 0 ? c : ia - ib;
}

/*
 * The inserts and updates of a table: one statement per set of columns
 * written (the rows are locked already: the order of the writes does not
 * matter). A row that appeared between the
 * locks and the insert (a plain SQL insert committed meanwhile: pushes
 * serialise on their locks) is a conflict of its own, locked, read and
 * settled by the table's policy; what it decides to write is written in the
 * update pass.
 */
static void
write_rows(PushTable *pt)
{
	SyncTable  *t = pt->t;
	char	  **colsets = palloc(sizeof(char *) * (pt->nrecs + 1));
	int		   *order = palloc(sizeof(int) * (pt->nrecs + 1));
	PushRecord **group = palloc(sizeof(PushRecord *) * (pt->nrecs + 1));
	bool	   *failed = palloc(sizeof(bool) * (pt->nrecs + 1));
	int			pass,
				i,
				g,
				n,
				rc;
	uint64		j;

	for (i = 0; i < pt->nrecs; i++)
		colsets[i] = pt->recs[i].action == SA_WRITE ? colset_of(t, &pt->recs[i]) : NULL;

	for (pass = 0; pass < 2; pass++)	/* inserts, then updates */
	{
		/* the records of this pass, grouped by the columns they write */
		n = 0;
		for (i = 0; i < pt->nrecs; i++)
			if (pt->recs[i].action == SA_WRITE && pt->recs[i].exists == (pass == 1))
				order[n++] = i;
		qsort_arg(order, n, sizeof(int), cmp_colset, colsets);

		for (i = 0; i < n; i = g)
		{
			int			ng = 0;
			SyncWritePlan *wp;
			WriteBatch	b;

			for (g = i; g < n && strcmp(colsets[order[g]], colsets[order[i]]) == 0; g++)
				group[ng++] = &pt->recs[order[g]];
			wp = write_plan(t, colsets[order[i]]);
			memset(&b, 0, sizeof(b));
			memset(failed, 0, sizeof(bool) * ng);
			b.pt = pt;
			b.recs = group;
			b.n = ng;
			b.failed = failed;
			if (pass == 0)
			{
				HTAB	   *inserted = sync_idset_create();
				int			k;

				b.plan = wp->insert_plan;
				b.ok_rc = SPI_OK_INSERT_RETURNING;
				rc = run_write(&b);
				sync_check_spi(rc, SPI_OK_INSERT_RETURNING, "inserting rows");
				pt->created += SPI_processed;
				for (j = 0; j < SPI_processed; j++)
					sync_idset_add(inserted, SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1));
				for (k = 0; k < ng; k++)
				{
					PushRecord *r = group[k];

					if (b.failed[k] || sync_idset_has(inserted, r->id))
						continue;
					/*
					 * There, but not seen under the locks: a row the caller
					 * may not see (row-level security) or write, or one
					 * written by someone else since.
					 */
					if (!visible_own(pt, r))
					{
						r->action = SA_REJECT;
						r->error = "the record belongs to another user, or is not visible to the caller";
						r->foreign = true;
					}
					else if (pt->force)
						r->exists = true;	/* updated in the next pass */
					else
					{
						/* a conflict like any other: the table's policy settles it */
						r->exists = true;
						r->conflict = true;
						sync_push_resolve_late(pt, r);
						if (r->action == SA_WRITE)
							colsets[r - pt->recs] = colset_of(t, r);	/* updated in the next pass */
					}
				}
			}
			else if (wp->update_plan)
			{
				b.plan = wp->update_plan;
				b.ok_rc = SPI_OK_UPDATE;
				rc = run_write(&b);
				sync_check_spi(rc, SPI_OK_UPDATE, "updating rows");
				pt->updated += SPI_processed;
			}
			else
				pt->updated += ng;	/* only the key: nothing to change */
		}
	}
}

/*
 * Whether the device that pushed r has the row as written: the record was
 * applied as pushed (no policy changed it, no timestamp clamped) and every
 * column it sent was written from it. (Whether the table stored it as sent
 * -- triggers, defaults, generated columns, types -- a pull tells by the
 * hash.)
 */
static bool
device_has_write(SyncTable *t, PushRecord *r)
{
	int			f,
				i;

	if (r->action != SA_WRITE || r->clamped || r->rec == NULL ||
		(r->resolution != NULL && strcmp(r->resolution, "client") != 0))
		return false;
	for (f = 0; f < r->rec->nfields; f++)
		for (i = 0; i < t->ncols; i++)
			if (t->cols[i].synced && i != t->key && !r->set[i] &&
				strcmp(t->cols[i].name, r->rec->fields[f].key) == 0)
				return false;	/* sent, not written: a generated column, say */
	return true;
}

/*
 * Forgets what a device was noted to have of rows it pushed again and the
 * push did not write as sent (a conflict the policy settled otherwise, a
 * rejected record): its next pull sends them. As the owner.
 */
static void
forget_origins(PushTable *pt, Datum *ids, int n)
{
	static SPIPlanPtr forget_plan = NULL;
	Datum		args[4];
	SyncOwnerCtx owner_ctx;
	int			rc;

	sync_owner_enter(&owner_ctx);
	if (forget_plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTOID, TEXTOID, TEXTARRAYOID};

		/* planned for each call, as find_changed_by_id's check is */
		forget_plan = sync_prepare_custom(
			"UPDATE _pg_sync.row_meta SET origin = NULL, origin_hash = NULL, origin_cols = NULL"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND id OPERATOR(pg_catalog.=) ANY($4) AND origin OPERATOR(pg_catalog.=) $3", 4, types);
	}
	args[0] = Int32GetDatum(pt->t->table_id);
	args[1] = CStringGetTextDatum(pt->owner ? pt->owner : "");
	args[2] = CStringGetTextDatum(pt->origin);
	args[3] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
	rc = SPI_execute_plan(forget_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_UPDATE, "forgetting what the device had");
	sync_owner_leave(&owner_ctx);
}

/*
 * The columns of r the device has as the push wrote them ('1'/'0' per
 * column of the table): those the record sent and the push wrote from it.
 */
static char *
device_cols(SyncTable *t, PushRecord *r)
{
	char	   *cs = colset_of(t, r);
	int			c;

	for (c = 0; c < t->ncols; c++)
	{
		int			f;

		for (f = 0; cs[c] == '1' && f < r->rec->nfields; f++)
			if (strcmp(r->rec->fields[f].key, t->cols[c].name) == 0)
				break;
		if (cs[c] == '1' && f == r->rec->nfields)
			cs[c] = '0';
	}
	return cs;
}

/*
 * The notes a push naming its device hands the capture before it writes
 * rows (see sync_push_origins): what the device will have of each record
 * it expects to write as sent.
 */
static SyncPushOrigins *
origins_prepare(PushTable *pt)
{
	SyncTable  *t = pt->t;
	SyncPushOrigins *po = palloc0(sizeof(SyncPushOrigins));
	int			i;

	po->table_id = t->table_id;
	po->owner = pt->owner ? pt->owner : "";
	po->origin = pt->origin;
	po->notes = palloc(sizeof(SyncOriginNote) * (pt->nrecs + 1));
	for (i = 0; i < pt->nrecs; i++)
	{
		PushRecord *r = &pt->recs[i];
		SyncOriginNote *note;

		if (!device_has_write(t, r))
			continue;
		note = &po->notes[po->n++];
		note->id = r->id;
		note->cols = device_cols(t, r);
		note->hash = sync_pushed_hash(t, r->id, r->rec, note->cols);
		note->taken = false;
	}
	sync_origin_sort(po);
	return po;
}

/*
 * After the writes: notes, for the records the device has as written,
 * which device pushed them and a hash of what it has (its next pulls leave
 * those rows out while they stay as they are), where the capture did not
 * already write the note po prepared; forgets what was noted of the others.
 * As the owner.
 */
static void
note_origins(PushTable *pt, SyncPushOrigins *po)
{
	static SPIPlanPtr origin_plan = NULL;
	SyncTable  *t = pt->t;
	Datum	   *ids = palloc(sizeof(Datum) * (pt->nrecs + 1));
	Datum	   *hashes = palloc(sizeof(Datum) * (pt->nrecs + 1));
	Datum	   *cols = palloc(sizeof(Datum) * (pt->nrecs + 1));
	Datum		args[6];
	SyncOwnerCtx owner_ctx;
	Datum	   *stale = palloc(sizeof(Datum) * (pt->nrecs + 1));
	int			n = 0,
				nstale = 0,
				i,
				rc;

	for (i = 0; i < pt->nrecs; i++)
	{
		PushRecord *r = &pt->recs[i];
		SyncOriginNote *note;
		char	   *cs;
		int64		hash;

		if (!device_has_write(t, r))
		{
			/* the device now has what it pushed, not the row: whatever was noted is stale */
			stale[nstale++] = CStringGetTextDatum(r->id);
			continue;
		}
		cs = device_cols(t, r);
		note = sync_origin_note(po, r->id);
		if (note != NULL && strcmp(note->cols, cs) == 0)
		{
			if (note->taken)
				continue;		/* written with the record */
			hash = note->hash;	/* hashed before the writes */
		}
		else
			hash = sync_pushed_hash(t, r->id, r->rec, cs);
		ids[n] = CStringGetTextDatum(r->id);
		hashes[n] = Int64GetDatum(hash);
		cols[n++] = CStringGetTextDatum(cs);
	}
	if (nstale > 0)
		forget_origins(pt, stale, nstale);
	if (n == 0)
		return;
	sync_owner_enter(&owner_ctx);
	if (origin_plan == NULL)
	{
		Oid			types[6] = {INT4OID, TEXTOID, TEXTOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID};

		/* planned for each call, as find_changed_by_id's check is */
		origin_plan = sync_prepare_custom(
			"UPDATE _pg_sync.row_meta m SET origin = $3, origin_hash = u.h, origin_cols = u.c"
			"  FROM ROWS FROM (pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6)) AS u(id, h, c)"
			" WHERE m.table_id OPERATOR(pg_catalog.=) $1 AND m.owner OPERATOR(pg_catalog.=) $2"
			"   AND m.id OPERATOR(pg_catalog.=) u.id", 6, types);
	}
	args[0] = Int32GetDatum(t->table_id);
	args[1] = CStringGetTextDatum(pt->owner ? pt->owner : "");
	args[2] = CStringGetTextDatum(pt->origin);
	args[3] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[4] = PointerGetDatum(construct_array(hashes, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[5] = PointerGetDatum(construct_array(cols, n, TEXTOID, -1, false, TYPALIGN_INT));
	rc = SPI_execute_plan(origin_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_UPDATE, "noting what the device has");
	sync_owner_leave(&owner_ctx);
}

/*
 * Write stage: deletes, then inserts, then updates, as the caller (GRANTs
 * and row-level security apply). Then the records of conflicts waiting in
 * the inbox are marked for the caller's next pull, which sends the server's
 * state of them (the device took its push for done).
 */
void
sync_push_write(PushTable *pt)
{
	char	  **ids = palloc(sizeof(char *) * (pt->nrecs + 1));
	bool	   *gone = palloc(sizeof(bool) * (pt->nrecs + 1));
	int			n = 0,
				i;
	SyncPushOrigins *po = NULL;
	SyncPushOrigins *outer = sync_push_origins;

	write_deletes(pt);
	/* a device's notes go into the records the capture writes with the rows */
	if (pt->origin)
		po = origins_prepare(pt);
	sync_push_origins = po;
	PG_TRY();
	{
		write_rows(pt);
	}
	PG_FINALLY();
	{
		sync_push_origins = outer;
	}
	PG_END_TRY();
	sync_queue_conflicts(pt);	/* those of rows that appeared while writing */
	if (pt->origin)
		note_origins(pt, po);
	for (i = 0; i < pt->nrecs; i++)
	{
		PushRecord *r = &pt->recs[i];

		if (r->action == SA_REJECT)
			pt->rejected++;
		if (r->action == SA_QUEUE)
		{
			ids[n] = r->id;
			gone[n++] = !r->exists;
		}
	}
	sync_mark_changed(pt->t, pt->owner ? pt->owner : "", ids, gone, n);
}

/*
 * A push to a pull-only table: every record is rejected (listed in
 * experimentalRejectedIds; WatermelonDB keeps it on the device, unsynced),
 * nothing is written, and the rest of the push applies. So that the device
 * can drop its local edit and get the server's state back, each rejected id
 * is marked as changed in the caller's scope: the next pull sends the
 * server's row, or (per-user tables) the id in "deleted" when the caller has
 * no such row.
 * The rows are only read (the caller may have nothing but SELECT).
 */
void
sync_push_reject_all(PushTable *pt)
{
	SyncTable  *t = pt->t;
	char	  **ids = palloc(sizeof(char *) * (pt->nrecs + 1));
	bool	   *gone = palloc(sizeof(bool) * (pt->nrecs + 1));
	HTAB	   *mine = sync_idset_create();
	const char *scope = pt->owner ? pt->owner : "";
	Datum		arg;
	int			i,
				n,
				rc;
	uint64		j;

	for (i = 0; i < pt->nrecs; i++)
	{
		ids[i] = pt->recs[i].id;
		pt->recs[i].action = SA_REJECT;
		pt->recs[i].error = "the table is pull-only";
	}
	if (t->exists_plan == NULL)
		t->exists_plan = sync_prepare(
			psprintf("SELECT %s::pg_catalog.text, %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)",
					 quote_identifier(t->cols[t->key].name),
					 t->owner >= 0 ? psprintf("%s::pg_catalog.text", quote_identifier(t->cols[t->owner].name)) : "''",
					 t->qualname, quote_identifier(t->cols[t->key].name)),
			1, &t->cols[t->key].arraytypid);
	arg = sync_ids_array(t, ids, pt->nrecs);
	rc = SPI_execute_plan(t->exists_plan, &arg, NULL, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading rows");
	for (j = 0; j < SPI_processed; j++)
	{
		char	   *own = SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 2);

		if (own != NULL && strcmp(own, scope) == 0)
			sync_idset_add(mine, SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1));
	}
	/*
	 * Ids the server has no row for go back in "deleted" -- but only in the
	 * caller's own scope: on a shared table a mark would reach every user, so
	 * a device that created a record there keeps it (the app drops it).
	 */
	n = 0;
	for (i = 0; i < pt->nrecs; i++)
	{
		bool		has = sync_idset_has(mine, ids[i]);

		if (!has && pt->owner == NULL)
			continue;
		ids[n] = ids[i];
		gone[n++] = !has;
	}
	pt->rejected += pt->nrecs;
	sync_mark_changed(t, scope, ids, gone, n);
	if (pt->origin)
	{
		Datum	   *all = palloc(sizeof(Datum) * (pt->nrecs + 1));

		for (i = 0; i < pt->nrecs; i++)
			all[i] = CStringGetTextDatum(pt->recs[i].id);
		forget_origins(pt, all, pt->nrecs);
	}
}
