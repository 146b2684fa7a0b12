/*
 * pull.c — sync_pull: what changed since the caller's token, as one
 * WatermelonDB pull result read from one snapshot.
 *
 * Per table (PullTable.mode): a first pull (no token, a table registered
 * after the token, one named by a schema migration's "tables", one whose
 * replacement was required) reads every live row; a later pull reads the
 * change records whose writer is visible in the answer's snapshot but was
 * not in the caller's token, then the current state of those rows; a
 * migration's new columns add the rows in which one of them is set. Live
 * rows go in "updated" (see README: the client sets sendCreatedAsUpdated),
 * deleted ones in "deleted"; an id appears once. A device that names itself
 * is not sent the rows it pushed and has as they are (row_meta.origin).
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
 *
 * With page_size, an answer that would hold more records is sent in pages
 * (pages.c). A token that expired, with replacement_ok, gets every table by
 * replacement instead of SY002; so does a table whose replacement was
 * required, or that the caller may no longer read (then as an empty set).
 */
#include "pg_sync.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "storage/lockdefs.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_pull);

/* at most this many changed rows of one owner are read with the plan made once */
#define SYNC_FEW_KEYS	16

/* largest page_size */
#define SYNC_MAX_PAGE_SIZE	1000000

static SPIPlanPtr pending_plan = NULL;

/* What a schema migration asks for (WatermelonDB's migration sync). */
typedef struct Migration
{
	List	   *tables;			/* client table names: sent whole */
	List	   *columns;		/* MigrationColumns */
} Migration;

typedef struct MigrationColumns
{
	char	   *table;
	List	   *columns;		/* column names */
} MigrationColumns;

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

/*
 * Prepares (once per descriptor) the row queries of a table: by key, whole
 * (of one owner), and a page of it in key order (pages.c).
 */
void
sync_pull_prepare_rows(SyncTable *t)
{
	char	   *cols;
	const char *key;
	const char *scope = "";
	Oid			types[4];
	int			n = 0;

	if (t->full_plan)
		return;
	cols = select_list(t);
	key = quote_identifier(t->cols[t->key].name);
	if (t->owner >= 0)
	{
		/*
		 * By key within the owner's rows: planned for each call's ids, so
		 * that an index on the owner column (which apps have) can read a
		 * user's changed rows in one range instead of one key at a time.
		 */
		Oid			bytypes[2] = {t->cols[t->key].arraytypid, t->cols[t->owner].typid};

		t->byid_plan = sync_prepare_custom(psprintf(
			"SELECT %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1) AND %s OPERATOR(pg_catalog.=) $2",
			cols, t->qualname, key, quote_identifier(t->cols[t->owner].name)), 2, bytypes);

		/*
		 * A few keys (most incremental pulls) are looked up one by one in
		 * the primary key with a plan made once: that costs less than
		 * planning. The owner condition is kept out of the plan's choice of
		 * index (IS TRUE), so that no owner, however many rows it has, is
		 * read whole. Only while the key column is still the primary key.
		 */
		if (t->key_leads_pk)
			t->byid_few_plan = sync_prepare_generic(psprintf(
				"SELECT %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)"
				" AND (%s OPERATOR(pg_catalog.=) $2) IS TRUE",
				cols, t->qualname, key, quote_identifier(t->cols[t->owner].name)), 2, bytypes);
	}
	else
		t->byid_plan = sync_prepare(psprintf("SELECT %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)",
											 cols, t->qualname, key),
									1, &t->cols[t->key].arraytypid);
	if (t->owner >= 0)
	{
		t->full_owner_plan = sync_prepare(psprintf("SELECT %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) $1",
												   cols, t->qualname,
												   quote_identifier(t->cols[t->owner].name)),
										  1, &t->cols[t->owner].typid);
		scope = psprintf("%s OPERATOR(pg_catalog.=) $4 AND ", quote_identifier(t->cols[t->owner].name));
	}
	t->full_plan = sync_prepare(psprintf("SELECT %s FROM ONLY %s", cols, t->qualname), 0, NULL);
	/* $1 after (exclusive), $2 up to (inclusive), $3 how many; $4 the owner */
	types[n++] = t->cols[t->key].typid;
	types[n++] = t->cols[t->key].typid;
	types[n++] = INT8OID;
	if (t->owner >= 0)
		types[n++] = t->cols[t->owner].typid;
	t->page_plan = sync_prepare(psprintf(
		"SELECT %s FROM ONLY %s"
		" WHERE %s($1 IS NULL OR %s OPERATOR(pg_catalog.>) $1)"
		"   AND ($2 IS NULL OR %s OPERATOR(pg_catalog.<=) $2)"
		" ORDER BY %s LIMIT $3",
		cols, t->qualname, scope, key, key, key), n, types);
}

/* Appends an id to a table's "deleted" list. */
void
sync_pull_append_deleted(PullTable *pt, const char *id)
{
	if (pt->ndeleted++ > 0)
		appendStringInfoChar(&pt->deleted, ',');
	escape_json(&pt->deleted, id);
}

/* A change record, as read_meta() reads it. */
typedef struct MetaRow
{
	char	   *id;
	bool		deleted;
	uint64		xid;
	bool		echo;			/* the asking device pushed the row: */
	int64		hash;			/* the hash and columns of what it has */
	char	   *cols;
	bool		again;			/* another version of a record read before */
} MetaRow;

/* Whether a change record's writer is visible in snapshot hi but not in lo. */
static bool
written_between(SyncToken *lo, SyncToken *hi, uint64 xid)
{
	return !sync_snap_visible(&lo->parsed, xid) && sync_snap_visible(&hi->parsed, xid);
}

/*
 * Whether the index row_meta_changes carries each record's id and origin
 * after its key (table_id, owner, xid), as 0.2 creates it: then the change
 * records can be found from the index alone.
 */
static bool
changes_index_covers(Relation irel, AttrNumber a_id, AttrNumber a_origin)
{
	Form_pg_index ix = irel->rd_index;

	return a_origin != InvalidAttrNumber && ix->indnkeyatts == 3 && ix->indnatts == 5 &&
		ix->indkey.values[3] == a_id && ix->indkey.values[4] == a_origin;
}

/* The device state of a change record the asking device pushed, from its row. */
static void
meta_echo(MetaRow *r, TupleTableSlot *slot, AttrNumber a_hash, AttrNumber a_cols)
{
	bool		isnull;
	Datum		h = slot_getattr(slot, a_hash, &isnull);

	if (isnull)
		return;
	r->echo = true;
	r->hash = DatumGetInt64(h);
	h = slot_getattr(slot, a_cols, &isnull);
	r->cols = isnull ? NULL : TextDatumGetCString(h);
}

/*
 * Reads the change records of a table in scope whose writer is visible in
 * snapshot hi but not in lo, into *rows (*nrows of them); returns for how
 * many ids, and stops after limit ids (0: reads all). *found is the set of
 * those ids when they were read from the index alone (see below), else
 * NULL. For rows the asking
 * device pushed (origin) also the hash and columns of what it has. Without
 * SQL: one range of the index row_meta_changes (table_id, owner, xid), in
 * the snapshot a read-only query of the call reads in, compared by the
 * index's own operators and collation.
 *
 * The index carries each record's id and origin, so the records are found
 * from the index alone, without visiting a heap page per record: a user's
 * records lie on about one page each, wherever its rows are. That also
 * finds the index entries of record versions no snapshot sees (written by
 * a transaction or subtransaction that rolled back, or replaced later in
 * the range) until VACUUM removes them. Such an id is only read again:
 * every id found is sent as its row is now, or as deleted when the caller
 * finds no such row of its own (so no record is taken for a tombstone
 * unless it is the one visible, and no change is missed). Only a record the
 * asking device pushed is read from its row, to know which version is
 * visible: a row is left out as an echo only when the visible version says
 * the device has it. Without those columns in the index (an index
 * re-created otherwise), each record is read from its row.
 */
static int
read_meta(PullTable *pt, PullCall *call, SyncToken *lo, SyncToken *hi, long limit,
		  MetaRow **rows, int *nrows, HTAB **found)
{
	Relation	rel = sync_internal_open("row_meta");
	Relation	irel = sync_internal_index(rel, "row_meta_changes", false);
	AttrNumber	a_id = sync_internal_attnum(rel, "id", false),
				a_deleted = sync_internal_attnum(rel, "deleted", false),
				a_xid = sync_internal_attnum(rel, "xid", false),
				a_origin = sync_internal_attnum(rel, "origin", true),
				a_hash = sync_internal_attnum(rel, "origin_hash", true),
				a_cols = sync_internal_attnum(rel, "origin_cols", true);
	bool		covers = changes_index_covers(irel, a_id, a_origin);
	ScanKeyData keys[4];
	IndexScanDesc scan;
	TupleTableSlot *slot;
	HTAB	   *ids = covers ? sync_idset_create() : NULL;
	int			n = 0,
				nids = 0;
	int			cap = 16;
	text	   *origin = (call->origin && a_origin != InvalidAttrNumber) ? cstring_to_text(call->origin) : NULL;

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   irel->rd_indcollation[0], F_INT4EQ, Int32GetDatum(pt->ref->desc->table_id));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   irel->rd_indcollation[1], F_TEXTEQ, CStringGetTextDatum(pt->owner));
	ScanKeyEntryInitialize(&keys[2], 0, 3, BTGreaterEqualStrategyNumber, InvalidOid,
						   irel->rd_indcollation[2], F_XID8GE,
						   FullTransactionIdGetDatum(FullTransactionIdFromU64(lo->parsed.xmin)));
	ScanKeyEntryInitialize(&keys[3], 0, 3, BTLessStrategyNumber, InvalidOid,
						   irel->rd_indcollation[2], F_XID8LT,
						   FullTransactionIdGetDatum(FullTransactionIdFromU64(hi->parsed.xmax)));
	*rows = palloc(cap * sizeof(MetaRow));
	slot = table_slot_create(rel, NULL);
	scan = sync_index_beginscan(rel, irel, GetActiveSnapshot(), 4);
	scan->xs_want_itup = covers;
	index_rescan(scan, keys, 4, NULL, 0);
	while (limit <= 0 || nids < limit)
	{
		bool		isnull;
		uint64		xid;
		MetaRow    *r;
		Datum		v[INDEX_MAX_KEYS];
		bool		nulls[INDEX_MAX_KEYS];

		if (covers)
		{
			if (index_getnext_tid(scan, ForwardScanDirection) == NULL)
				break;
			index_deform_tuple(scan->xs_itup, scan->xs_itupdesc, v, nulls);
			xid = U64FromFullTransactionId(DatumGetFullTransactionId(v[2]));
		}
		else
		{
			if (!index_getnext_slot(scan, ForwardScanDirection, slot))
				break;
			xid = U64FromFullTransactionId(DatumGetFullTransactionId(slot_getattr(slot, a_xid, &isnull)));
		}
		if (!written_between(lo, hi, xid))
			continue;
		if (n == cap)
			*rows = repalloc(*rows, (cap *= 2) * sizeof(MetaRow));
		r = &(*rows)[n++];
		memset(r, 0, sizeof(*r));
		r->xid = xid;
		if (covers)
		{
			r->id = TextDatumGetCString(v[3]);
			r->again = sync_idset_has(ids, r->id);
			if (!r->again)
			{
				sync_idset_add(ids, r->id);
				nids++;
			}
			/* an entry of the asking device: its version, if it is the visible one */
			if (origin != NULL && !nulls[4] &&
				DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, v[4], PointerGetDatum(origin))) &&
				index_fetch_heap(scan, slot) &&
				!DatumGetBool(slot_getattr(slot, a_deleted, &isnull)))
				meta_echo(r, slot, a_hash, a_cols);
			continue;
		}
		nids++;
		r->id = TextDatumGetCString(slot_getattr(slot, a_id, &isnull));
		r->deleted = DatumGetBool(slot_getattr(slot, a_deleted, &isnull));
		if (origin != NULL)
		{
			Datum		o = slot_getattr(slot, a_origin, &isnull);

			if (!isnull && DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, o, PointerGetDatum(origin))))
				meta_echo(r, slot, a_hash, a_cols);
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(irel, NoLock);
	table_close(rel, NoLock);
	*nrows = n;
	*found = ids;
	return nids;
}

/* Notes a change record's device state in the table's echo map. */
static void
note_echo(PullTable *pt, MetaRow *r)
{
	if (!r->echo)
		return;
	if (pt->echo == NULL)
		pt->echo = sync_echo_create();
	sync_echo_add(pt->echo, r->id, r->hash, r->cols);
}

/*
 * Incremental: the changes between the caller's token and the answer's
 * snapshot; ids to read, deleted ones listed. Clears *exact_newest when one
 * of them is not in checkpoint newest (which then cannot stand for this
 * answer). With limit > 0 reads at most limit + 1 ids and returns how many
 * it found; more than limit leaves the table's lists unfilled.
 */
static uint64
read_changes(PullTable *pt, PullCall *call, SyncToken *upto, SyncToken *newest,
			 bool *exact_newest, long limit)
{
	MetaRow    *rows;
	int			n;
	HTAB	   *found;
	int			nids = read_meta(pt, call, &call->prev, upto, limit > 0 ? limit + 1 : 0, &rows, &n, &found);
	int			i;

	if (limit > 0 && nids > limit)
		return nids;
	for (i = 0; i < n; i++)
	{
		if (*exact_newest && !sync_snap_visible(&newest->parsed, rows[i].xid))
			*exact_newest = false;
		if (!rows[i].deleted)
			note_echo(pt, &rows[i]);
		if (rows[i].again)
			continue;
		if (rows[i].deleted)
			sync_pull_append_deleted(pt, rows[i].id);
		else
			pt->live = lappend(pt->live, rows[i].id);
	}
	if (found != NULL)
	{
		pt->unsure = found;
		pt->unsure_lo = &call->prev;
		pt->unsure_hi = upto;
	}
	return nids;
}

/*
 * Of n ids found in the change index alone that the caller's read did not
 * find, keeps (sets keep[i]) those whose change record, as this call sees
 * it, was written between pt's snapshots: a tombstone, a row moved to
 * another owner, or one the caller may not read. The others were found by
 * the index entry of a record version no snapshot sees, and did not
 * change: a device must not be told to delete them (it would destroy what
 * it holds, pushed or not). Reads each record by the primary key
 * (table_id, owner, id), in the call's snapshot.
 */
static void
keep_changed(PullTable *pt, char **ids, int n, bool *keep)
{
	Relation	rel = sync_internal_open("row_meta");
	Relation	irel = sync_internal_index(rel, NULL, false);
	AttrNumber	a_xid = sync_internal_attnum(rel, "xid", false);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	IndexScanDesc scan = sync_index_beginscan(rel, irel, GetActiveSnapshot(), 3);
	ScanKeyData keys[3];
	int			i;

	ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
						   irel->rd_indcollation[0], F_INT4EQ, Int32GetDatum(pt->ref->desc->table_id));
	ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
						   irel->rd_indcollation[1], F_TEXTEQ, CStringGetTextDatum(pt->owner));
	for (i = 0; i < n; i++)
	{
		bool		isnull;

		ScanKeyEntryInitialize(&keys[2], 0, 3, BTEqualStrategyNumber, InvalidOid,
							   irel->rd_indcollation[2], F_TEXTEQ, CStringGetTextDatum(ids[i]));
		index_rescan(scan, keys, 3, NULL, 0);
		keep[i] = index_getnext_slot(scan, ForwardScanDirection, slot) &&
			written_between(pt->unsure_lo, pt->unsure_hi,
							U64FromFullTransactionId(DatumGetFullTransactionId(slot_getattr(slot, a_xid, &isnull))));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(irel, NoLock);
	table_close(rel, NoLock);
}

/*
 * Ids of rows in scope whose last change is not visible in snapshot upto (a
 * transaction's own writes, rows written after the checkpoint a read-only
 * pull answers up to, or after the snapshot a paged pull is up to). Whole
 * tables leave them for a later pull.
 */
HTAB *
sync_pull_read_pending(PullTable *pt, SyncToken *upto)
{
	Datum		args[3];
	int			rc;
	uint64		i;
	HTAB	   *set = sync_idset_create();
	SyncOwnerCtx owner_ctx;

	sync_owner_enter(&owner_ctx);
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
	sync_owner_leave(&owner_ctx);
	return set;
}

/*
 * Whole: whether checkpoint newest can stand for an answer that sends the
 * whole table as of snapshot upto: the table was registered before it, and
 * no change record in scope lies between the two.
 */
static bool
full_exact_at(PullTable *pt, PullCall *call, SyncToken *newest, SyncToken *upto)
{
	MetaRow    *rows;
	int			n;
	HTAB	   *found;

	if (!sync_snap_visible(&newest->parsed, pt->ref->registered_xid) || pt->ref->replaced)
		return false;			/* (newest may not know of the registration or the replacement) */
	return read_meta(pt, call, newest, upto, 1, &rows, &n, &found) == 0;
}

/* --- migrations --- */

/* A member of a jsonb object, or NULL. */
static JsonbValue *
member(JsonbContainer *obj, const char *key)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	return findJsonbValueFromContainer(obj, JB_FOBJECT, &k);
}

/* The strings of a JSON array member, or an error naming the place. */
static List *
string_array(JsonbValue *v, const char *place)
{
	List	   *out = NIL;
	int			i,
				n;

	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be an array of strings", place)));
	n = JsonContainerSize(v->val.binary.data);
	for (i = 0; i < n; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

		if (e->type != jbvString)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s[%d] must be a string", place, i)));
		out = lappend(out, pnstrdup(e->val.string.val, e->val.string.len));
	}
	return out;
}

/* Reads a migration document: {"from", "tables": [...], "columns": [{"table", "columns"}]}. */
static Migration *
read_migration(Jsonb *doc)
{
	Migration  *m = palloc0(sizeof(Migration));
	JsonbValue *v;
	int			i,
				n;

	if (JB_ROOT_IS_SCALAR(doc) || !JB_ROOT_IS_OBJECT(doc))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("migration must be a JSON object or null")));
	if ((v = member(&doc->root, "tables")) != NULL && v->type != jbvNull)
		m->tables = string_array(v, "migration.tables");
	if ((v = member(&doc->root, "columns")) != NULL && v->type != jbvNull)
	{
		if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("migration.columns must be an array")));
		n = JsonContainerSize(v->val.binary.data);
		for (i = 0; i < n; i++)
		{
			JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);
			JsonbValue *tv,
					   *cv;
			MigrationColumns *mc;

			if (e->type != jbvBinary || !JsonContainerIsObject(e->val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("migration.columns[%d] must be an object", i)));
			tv = member(e->val.binary.data, "table");
			if (tv == NULL || tv->type != jbvString)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("migration.columns[%d].table must be a string", i)));
			cv = member(e->val.binary.data, "columns");
			if (cv == NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("migration.columns[%d].columns is missing", i)));
			mc = palloc0(sizeof(MigrationColumns));
			mc->table = pnstrdup(tv->val.string.val, tv->val.string.len);
			mc->columns = string_array(cv, psprintf("migration.columns[%d].columns", i));
			m->columns = lappend(m->columns, mc);
		}
	}
	return m;
}

/*
 * The columns of t a migration added, by column (NULL: none the server
 * syncs; columns only the app has are ignored).
 */
static bool *
migration_columns(Migration *m, SyncTable *t)
{
	bool	   *out = NULL;
	ListCell   *lc,
			   *lc2;
	int			i;

	foreach(lc, m->columns)
	{
		MigrationColumns *mc = lfirst(lc);

		if (strcmp(mc->table, t->name) != 0)
			continue;
		foreach(lc2, mc->columns)
		{
			for (i = 0; i < t->ncols; i++)
				if (i != t->key && t->cols[i].synced && strcmp(t->cols[i].name, lfirst(lc2)) == 0)
				{
					if (out == NULL)
						out = palloc0(sizeof(bool) * t->ncols);
					out[i] = true;
				}
		}
	}
	return out;
}

/*
 * PM_COLUMNS: streams the rows in scope in which a new column is set (the
 * device filled those columns with its own empty values), recording their ids.
 */
static void
send_new_column_rows(PullTable *pt, SyncPullSink *sink)
{
	SyncTable  *t = pt->ref->desc;
	StringInfoData q;
	SPIPlanPtr	plan;
	Datum		arg[1];
	Oid			type;
	int			i;
	bool		first = true;

	initStringInfo(&q);
	appendStringInfo(&q, "SELECT %s FROM ONLY %s WHERE (", select_list(t), t->qualname);
	for (i = 0; i < t->ncols; i++)
		if (pt->new_cols[i])
		{
			appendStringInfo(&q, "%s%s IS NOT NULL", first ? "" : " OR ", quote_identifier(t->cols[i].name));
			first = false;
		}
	appendStringInfoChar(&q, ')');
	if (t->owner >= 0)
	{
		SyncColumn *oc = &t->cols[t->owner];

		appendStringInfo(&q, " AND %s OPERATOR(pg_catalog.=) $1", quote_identifier(oc->name));
		type = oc->typid;
		arg[0] = InputFunctionCall(&oc->infn, (char *) pt->owner, oc->ioparam, oc->typmod);
		plan = SPI_prepare(q.data, 1, &type);
	}
	else
		plan = SPI_prepare(q.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "pg_sync: could not prepare \"%s\": %s", q.data, SPI_result_code_string(SPI_result));
	sync_encode_query(t, plan, arg, NULL, sink);
	SPI_freeplan(plan);
}

/* --- rows --- */

/*
 * Reads rows of a table with the caller's rights into the answer (a sink
 * already set up), leaving out the rows the asking device has.
 */
void
sync_pull_read_rows(PullTable *pt, PullCall *call, SPIPlanPtr plan, Datum *args,
					const char *nulls, SyncPullSink *sink)
{
	sink->echo = pt->echo;
	sync_encode_query(pt->ref->desc, plan, args, nulls, sink);
	call->nechoed += sink->nechoed;
	sink->nechoed = 0;
}

/*
 * Sends the rows of pt->live (by key) into the answer; ids recorded as live
 * that are not there (or not visible to the caller) go to "deleted".
 * sink->seen may already hold ids sent otherwise: they are not read again.
 */
void
sync_pull_send_live(StringInfo out, PullTable *pt, PullCall *call, SyncPullSink *sink)
{
	SyncTable  *t = pt->ref->desc;
	int			n = 0,
				nmissing,
				i;
	char	  **ids;
	bool	   *keep;
	Datum		arg[2];
	ListCell   *lc;

	if (pt->live == NIL)
		return;
	ids = palloc(sizeof(char *) * list_length(pt->live));
	if (sink->seen == NULL)
		sink->seen = sync_idset_create();
	foreach(lc, pt->live)
		if (!sync_idset_has(sink->seen, lfirst(lc)))
			ids[n++] = lfirst(lc);
	if (n == 0)
		return;
	arg[0] = sync_ids_array(t, ids, n);
	if (t->owner >= 0)
	{
		SyncColumn *oc = &t->cols[t->owner];

		arg[1] = InputFunctionCall(&oc->infn, (char *) pt->owner, oc->ioparam, oc->typmod);
	}
	sync_pull_read_rows(pt, call, (n <= SYNC_FEW_KEYS && t->byid_few_plan) ? t->byid_few_plan : t->byid_plan,
						arg, NULL, sink);
	nmissing = 0;
	for (i = 0; i < n; i++)
		if (!sync_idset_has(sink->seen, ids[i]))
			ids[nmissing++] = ids[i];
	keep = palloc(sizeof(bool) * (nmissing + 1));
	memset(keep, true, sizeof(bool) * (nmissing + 1));
	if (pt->unsure != NULL && nmissing > 0)
		keep_changed(pt, ids, nmissing, keep);
	for (i = 0; i < nmissing; i++)
		if (keep[i])
			sync_pull_append_deleted(pt, ids[i]);
}

/*
 * Appends one table's entry of the changes object, reading its rows with
 * the caller's rights; returns how many records it sent.
 */
static int
pull_rows(StringInfo out, PullTable *pt, PullCall *call)
{
	SyncTable  *t = pt->ref->desc;
	SyncPullSink sink;

	memset(&sink, 0, sizeof(sink));
	sink.updated = out;			/* rows stream straight into the result */
	escape_json(out, t->name);
	appendStringInfoString(out, ":{\"created\":[],\"updated\":[");
	sync_pull_prepare_rows(t);

	if (pt->hidden)
		;						/* nothing: the device drops what it has */
	else if (pt->mode == PM_FULL)
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
	else
	{
		if (pt->mode == PM_COLUMNS)
		{
			sink.skip = pt->pending;
			sink.seen = sync_idset_create();
			send_new_column_rows(pt, &sink);
			sink.skip = NULL;
		}
		sync_pull_send_live(out, pt, call, &sink);
	}

	appendStringInfoString(out, "],\"deleted\":[");
	appendBinaryStringInfo(out, pt->deleted.data, pt->deleted.len);
	appendStringInfoString(out, "]}");
	return sink.nupdated + pt->ndeleted;
}

/* The device as row_meta.origin names it: the user's length, the user, the client id. */
static char *
origin_of(const char *user, const char *client_id)
{
	if (client_id == NULL)
		return NULL;
	if (user == NULL)
		user = "";
	return psprintf("%d:%s%s", (int) strlen(user), user, client_id);
}

/* Whether the caller may read the table at all (table or every column). */
static bool
may_read(SyncTable *t)
{
	return pg_class_aclcheck(t->relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK ||
		pg_attribute_aclcheck_all(t->relid, GetUserId(), ACL_SELECT, ACLMASK_ALL) == ACLCHECK_OK;
}

/* Appends "experimentalStrategy" when tables go by replacement. */
static void
append_strategy(StringInfo out, PullTable *pts, int ntables)
{
	int			i,
				nreplaced = 0,
				n = 0;

	for (i = 0; i < ntables; i++)
		nreplaced += pts[i].replace;
	if (nreplaced == 0)
		return;
	if (nreplaced == ntables)
	{
		appendStringInfoString(out, ",\"experimentalStrategy\":\"replacement\"");
		return;
	}
	appendStringInfoString(out, ",\"experimentalStrategy\":{\"default\":\"incremental\",\"override\":{");
	for (i = 0; i < ntables; i++)
		if (pts[i].replace)
		{
			if (n++ > 0)
				appendStringInfoChar(out, ',');
			escape_json(out, pts[i].ref->desc->name);
			appendStringInfoString(out, ":\"replacement\"");
		}
	appendStringInfoString(out, "}}");
}

/*
 * SQL: sync_pull(last_pulled_at, schema_version, migration, user_id,
 * client_id, page_size, replacement_ok)
 */
Datum
sync_pull(PG_FUNCTION_ARGS)
{
	int64		token = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	MemoryContext callcxt,
				oldcxt;
	PullCall	call;
	SyncToken	cur,
				newest;
	SyncToken  *upto;			/* the snapshot the answer is up to */
	bool		exact;			/* upto is the snapshot rows are read in */
	bool		have_newest;
	bool		exact_newest;	/* newest can stand for this answer */
	bool		expired = false;
	bool		replacement_ok = PG_NARGS() > 6 && !PG_ARGISNULL(6) && PG_GETARG_BOOL(6);
	bool		more = false;
	List	   *tables;
	Migration  *migration = NULL;
	PullTable  *pts;
	int			ntables,
				i;
	ListCell   *lc;
	SyncOwnerCtx owner_ctx;
	StringInfoData out;
	text	   *result;
	int			sent = 0;
	bool		any_full = false;
	bool		any_replace = false;
	bool		any_columns = false;
	int64		answer;
	char	   *explicit_user = (PG_NARGS() > 3 && !PG_ARGISNULL(3)) ?
		text_to_cstring(PG_GETARG_TEXT_PP(3)) : NULL;
	SyncDevice	dev;

	memset(&call, 0, sizeof(call));
	call.client_id = (PG_NARGS() > 4 && !PG_ARGISNULL(4)) ? text_to_cstring(PG_GETARG_TEXT_PP(4)) : NULL;
	if (PG_NARGS() > 5 && !PG_ARGISNULL(5))
	{
		int32		ps = PG_GETARG_INT32(5);

		if (ps < 1 || ps > SYNC_MAX_PAGE_SIZE)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("page_size must be between 1 and %d", SYNC_MAX_PAGE_SIZE)));
		call.page_size = ps;
	}
	if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("schema_version must not be negative")));

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_pull", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);
	initStringInfo(&out);		/* in callcxt: it outlives SPI_finish */
	SPI_connect();

	if (!PG_ARGISNULL(2))
		migration = read_migration(PG_GETARG_JSONB_P(2));

	/* the device: a deactivated one gets nothing */
	if (call.client_id)
		call.user = sync_current_user_id(explicit_user);
	sync_device_open(&dev, call.user, call.client_id, false);
	call.can_record = sync_token_can_record();

	/* the caller's token: a checkpoint, a page of a paged pull, or expired */
	sync_token_resolve(token, &call.prev, replacement_ok ? &expired : NULL);
	if (call.prev.page)
	{
		if (call.user == NULL)
			call.user = sync_current_user_id(explicit_user);
		call.origin = origin_of(call.user, call.client_id);
		answer = sync_pull_next_page(&out, &call, &more);
		goto answered;
	}
	if (expired)
		memset(&call.prev, 0, sizeof(call.prev));	/* replaced whole */

	tables = sync_registry_load(&call.prev, AccessShareLock, NIL);
	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);

		if (ref->vanished)
			tables = foreach_delete_current(tables, lc);	/* dropped meanwhile */
		else if (ref->desc->owner >= 0 && call.user == NULL)
		{
			call.user = sync_current_user_id(explicit_user);
			if (call.user == NULL)
				sync_no_user(ref->name);
		}
	}
	if (call.user == NULL && explicit_user)
		call.user = sync_current_user_id(explicit_user);
	call.origin = origin_of(call.user, call.client_id);

	/* each table's scope and how it is sent */
	ntables = list_length(tables);
	pts = palloc0(sizeof(PullTable) * (ntables + 1));
	i = 0;
	foreach(lc, tables)
	{
		PullTable  *pt = &pts[i++];
		SyncTable  *t;

		pt->ref = lfirst(lc);
		t = pt->ref->desc;
		pt->owner = t->owner >= 0 ? sync_owner_text(t, call.user) : "";
		initStringInfo(&pt->deleted);
		pt->mode = PM_CHANGES;
		if (call.prev.id == 0 || pt->ref->new_since_token || pt->ref->replaced ||
			(migration && sync_name_listed(migration->tables, t->name)))
			pt->mode = PM_FULL;
		else if (migration && (pt->new_cols = migration_columns(migration, t)) != NULL)
			pt->mode = PM_COLUMNS;
		if (replacement_ok && (expired || (pt->ref->replaced && call.prev.id != 0)))
			pt->replace = true;
		if (replacement_ok && token != 0 && !may_read(t))
		{
			/* no longer readable: the device drops the table's rows */
			pt->mode = PM_FULL;
			pt->replace = pt->hidden = true;
		}
		any_full |= pt->mode == PM_FULL && !pt->hidden;
		any_replace |= pt->replace;
		any_columns |= pt->mode == PM_COLUMNS;
	}

	/* the snapshot the answer is up to (the pull's own, or a checkpoint) */
	exact = sync_token_current(&cur);
	have_newest = sync_token_newest(&newest);
	if (call.can_record)
		upto = &cur;
	else
	{
		/* read-only: the newest checkpoint that contains the caller's view */
		if (have_newest && (call.prev.id == 0 || sync_snap_contains(&newest.parsed, &call.prev.parsed)))
			upto = &newest;
		else if (call.prev.id != 0)
			upto = &call.prev;
		else
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no sync checkpoint exists yet"),
					 errhint("Call sync_checkpoint() on the primary.")));
		exact = false;
	}

	exact_newest = call.can_record && have_newest && !newest.stale && !any_columns &&
		(call.prev.id == 0 || newest.id == call.prev.id ||
		 sync_snap_contains(&newest.parsed, &call.prev.parsed));

	/*
	 * Paged: an answer by replacement or with a migration's columns is never
	 * paged; whole tables always go through pages; changes only when there
	 * are more than a page of them (read here, at most a page and one).
	 */
	if (call.page_size > 0 && !any_replace && !any_columns)
	{
		bool		overflow = any_full;
		long		left = call.page_size;

		for (i = 0; i < ntables && !overflow; i++)
		{
			uint64		n = read_changes(&pts[i], &call, upto, &newest, &exact_newest, left);

			if (n > (uint64) left)
				overflow = true;
			else
				left -= n;
		}
		if (overflow)
		{
			for (i = 0; i < ntables; i++)
			{
				pts[i].live = NIL;
				resetStringInfo(&pts[i].deleted);
				pts[i].ndeleted = 0;
				pts[i].echo = NULL;
			}
			answer = sync_pull_paged(&out, &call, pts, ntables, upto, &more);
			goto answered;
		}
	}
	else
	{
		for (i = 0; i < ntables; i++)
		{
			PullTable  *pt = &pts[i];

			if (pt->hidden)
				continue;
			if (pt->mode == PM_FULL || pt->mode == PM_COLUMNS)
			{
				if (!exact)
					pt->pending = sync_pull_read_pending(pt, upto);
				if (pt->mode == PM_FULL && exact_newest && !full_exact_at(pt, &call, &newest, upto))
					exact_newest = false;
			}
			if (pt->mode != PM_FULL)
				read_changes(pt, &call, upto, &newest, &exact_newest, 0);
		}
	}

	/* the rows, with the caller's rights */
	appendStringInfoString(&out, "{\"changes\":{");
	for (i = 0; i < ntables; i++)
	{
		if (i > 0)
			appendStringInfoChar(&out, ',');
		sent += pull_rows(&out, &pts[i], &call);
	}

	/* the token that stands for this answer */
	if (!call.can_record)
		answer = upto->id;
	else if (exact_newest)
		answer = newest.id;		/* idle and repeated pulls write nothing */
	else if (call.prev.id != 0 && sent == 0 && call.nechoed == 0 && !any_full && !any_columns &&
			 !call.prev.stale)
		answer = call.prev.id;	/* nothing in scope since the caller's token */
	else
	{
		sync_owner_enter(&owner_ctx);
		sync_token_record(&cur);
		sync_owner_leave(&owner_ctx);
		answer = cur.id;
	}
	appendStringInfo(&out, "},\"timestamp\":" INT64_FORMAT, answer);
	append_strategy(&out, pts, ntables);
	appendStringInfoChar(&out, '}');

answered:
	sync_device_pulled(&dev, answer);

	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	result = cstring_to_text_with_len(out.data, out.len);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(result);
}
