/*
 * capture.c — the triggers that record changes. After every statement that
 * writes a registered table, one upsert of _pg_sync.row_meta records, for
 * each written row, which top-level transaction last wrote it and whether
 * that was a delete (a tombstone), under the row's owner: written directly
 * (below, "without SQL") or, where that cannot be, by one set-based SQL
 * statement. A row that moves to another owner or key leaves a tombstone
 * behind. TRUNCATE records a tombstone for every row before it goes.
 * Rolled-back (sub)transactions take their records with them: the record is
 * written in the same (sub)transaction.
 *
 * The statement triggers see the written rows through transition tables
 * (pg_sync_old, pg_sync_new), so a push or an UPDATE of many rows costs one
 * trigger call, not one per row. While a push naming its device writes rows,
 * the records of those rows also take what the device has of them
 * (sync_push_origins, prepared by apply.c).
 */
#include "pg_sync.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "executor/executor.h"
#include "parser/parse_coerce.h"
#include "storage/lmgr.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_capture);
PG_FUNCTION_INFO_V1(sync_capture_truncate);
PG_FUNCTION_INFO_V1(sync_bump_version);

/* Text of the key and owner of a transition-table row alias, as SQL. */
static char *
key_expr(SyncTable *t, const char *alias)
{
	return psprintf("%s.%s::pg_catalog.text", alias, quote_identifier(t->cols[t->key].name));
}

static char *
owner_expr(SyncTable *t, const char *alias)
{
	if (t->owner < 0)
		return "''";
	return psprintf("coalesce(%s.%s::pg_catalog.text, '')", alias, quote_identifier(t->cols[t->owner].name));
}

/*
 * The upsert recording one statement's rows. Inserts record the new rows;
 * deletes the old rows as tombstones; updates the new rows, plus a
 * tombstone for every old (key, owner) that no new row has any more. A
 * record written again forgets what a device was noted to have of the row
 * (0.2 schema), also when this transaction wrote it already: the row was
 * written since that device pushed it.
 */
static SPIPlanPtr
capture_plan(SyncTable *t, int event)
{
	bool		v02 = sync_schema_02();
	SPIPlanPtr *slot = &t->capture_plans[event + (v02 ? 3 : 0)];
	const char *rows;
	Oid			types[2] = {INT4OID, XID8OID};

	if (*slot)
		return *slot;
	if (event == 0)
		rows = psprintf("SELECT %s, %s, false FROM pg_sync_new n",
						key_expr(t, "n"), owner_expr(t, "n"));
	else if (event == 2)
		rows = psprintf("SELECT %s, %s, true FROM pg_sync_old o",
						key_expr(t, "o"), owner_expr(t, "o"));
	else
		rows = psprintf("SELECT %s, %s, false FROM pg_sync_new n"
						" UNION ALL "
						"SELECT %s, %s, true FROM pg_sync_old o"
						" WHERE NOT EXISTS (SELECT FROM pg_sync_new n"
						"                    WHERE %s OPERATOR(pg_catalog.=) %s"
						"                      AND %s OPERATOR(pg_catalog.=) %s)",
						key_expr(t, "n"), owner_expr(t, "n"),
						key_expr(t, "o"), owner_expr(t, "o"),
						key_expr(t, "n"), key_expr(t, "o"), owner_expr(t, "n"), owner_expr(t, "o"));
	*slot = sync_prepare(psprintf(
		"INSERT INTO _pg_sync.row_meta AS m (table_id, id, owner, xid, deleted)"
		" SELECT $1, r.id, r.owner, $2, r.deleted FROM (%s) AS r(id, owner, deleted)"
		" ON CONFLICT (table_id, id, owner) DO UPDATE"
		"   SET xid = excluded.xid, deleted = excluded.deleted%s"
		" WHERE m.xid OPERATOR(pg_catalog.<>) excluded.xid"
		"    OR m.deleted OPERATOR(pg_catalog.<>) excluded.deleted%s", rows,
		v02 ? ", origin = NULL, origin_hash = NULL, origin_cols = NULL" : "",
		v02 ? " OR m.origin IS NOT NULL" : ""),
		2, types);
	return *slot;
}

/*
 * The records are written without SQL: the same upsert, done the way the
 * executor does INSERT ... ON CONFLICT DO UPDATE (a check of the primary
 * key, then a speculative insert or a locked update, and again from the top
 * if a concurrent writer got in between). That saves planning, executor
 * start-up, the SPI and role switches and the per-row expression work of a
 * statement -- most of what the capture of a one-row statement cost. It
 * writes exactly what the SQL upsert writes. It is taken only when the key
 * and the owner turn into text through a built-in function (::text of a
 * built-in type), so that nothing a user defined runs, and when the table's
 * descriptor is cached; otherwise the SQL upsert does the work.
 */
#define CONV_RELABEL 1			/* the value is text already (text, varchar) */
#define CONV_FUNC 2				/* a cast function */
#define CONV_IO 3				/* the type's output function */

/* How ::text turns a column into text, if only built-in functions do it. */
static int8
conv_init(SyncColumn *c, FmgrInfo *fn, MemoryContext cxt)
{
	Oid			funcid = InvalidOid;
	bool		varlena;
	CoercionPathType path;

	path = find_coercion_pathway(TEXTOID, c->typid, COERCION_EXPLICIT, &funcid);
	if (path == COERCION_PATH_RELABELTYPE)
		return CONV_RELABEL;
	if (path == COERCION_PATH_FUNC)
	{
		if (funcid >= FirstGenbkiObjectId || get_func_nargs(funcid) != 1)
			return -1;
		fmgr_info_cxt(funcid, fn, cxt);
		return CONV_FUNC;
	}
	if (path == COERCION_PATH_COERCEVIAIO)
	{
		getTypeOutputInfo(c->typid, &funcid, &varlena);
		if (funcid >= FirstGenbkiObjectId)
			return -1;
		fmgr_info_cxt(funcid, fn, cxt);
		return CONV_IO;
	}
	return -1;
}

/* A column's value as text, as ::text gives it; NULL for NULL. */
static Datum
conv_apply(int8 conv, FmgrInfo *fn, Oid collation, Datum value, bool isnull)
{
	if (isnull)
		return (Datum) 0;
	if (conv == CONV_RELABEL)
		return PointerGetDatum(PG_DETOAST_DATUM_PACKED(value));
	if (conv == CONV_FUNC)
		return FunctionCall1Coll(fn, collation, value);
	return CStringGetTextDatum(OutputFunctionCall(fn, value));
}

/* A row's (key, owner) as row_meta holds them; false when the key is NULL. */
static bool
row_key_owner(SyncTable *t, TupleTableSlot *slot, Datum *key, Datum *owner)
{
	SyncColumn *k = &t->cols[t->key];
	bool		isnull;
	Datum		v;

	v = slot_getattr(slot, k->attnum, &isnull);
	if (isnull)
		return false;
	*key = conv_apply(t->key_conv, &t->key_fn,
					  TupleDescAttr(slot->tts_tupleDescriptor, k->attnum - 1)->attcollation, v, false);
	if (t->owner < 0)
		*owner = CStringGetTextDatum("");
	else
	{
		SyncColumn *o = &t->cols[t->owner];

		v = slot_getattr(slot, o->attnum, &isnull);
		*owner = isnull ? CStringGetTextDatum("") :
			conv_apply(t->owner_conv, &t->owner_fn,
					   TupleDescAttr(slot->tts_tupleDescriptor, o->attnum - 1)->attcollation, v, false);
	}
	return true;
}

/* row_meta's columns, in order */
#define RM_TABLE_ID 0
#define RM_ID 1
#define RM_OWNER 2
#define RM_XID 3
#define RM_DELETED 4
#define RM_ORIGIN 5
#define RM_ORIGIN_HASH 6
#define RM_ORIGIN_COLS 7
#define RM_NATTS 8

/* the notes of the push naming its device that is writing rows, if any */
SyncPushOrigins *sync_push_origins = NULL;

static int
cmp_note(const void *a, const void *b)
{
	return strcmp(((const SyncOriginNote *) a)->id, ((const SyncOriginNote *) b)->id);
}

/* Sorts the notes by id, for sync_origin_note. */
void
sync_origin_sort(SyncPushOrigins *po)
{
	qsort(po->notes, po->n, sizeof(SyncOriginNote), cmp_note);
}

/* The note of id, or NULL. */
SyncOriginNote *
sync_origin_note(SyncPushOrigins *po, const char *id)
{
	SyncOriginNote key;

	if (po == NULL || po->n == 0)
		return NULL;
	key.id = id;
	return bsearch(&key, po->notes, po->n, sizeof(SyncOriginNote), cmp_note);
}

static int	text_order(Datum a, Datum b);

/* Whether a record already says what a note would write. */
static bool
record_has_note(TupleTableSlot *existing, Datum origin, SyncOriginNote *note)
{
	if (existing->tts_isnull[RM_ORIGIN] || existing->tts_isnull[RM_ORIGIN_HASH] ||
		existing->tts_isnull[RM_ORIGIN_COLS])
		return false;
	return DatumGetInt64(existing->tts_values[RM_ORIGIN_HASH]) == note->hash &&
		text_order(existing->tts_values[RM_ORIGIN], origin) == 0 &&
		strcmp(TextDatumGetCString(existing->tts_values[RM_ORIGIN_COLS]), note->cols) == 0;
}

typedef struct DirectWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	List	   *arbiter;		/* the primary key */
	TupleTableSlot *slot;		/* the record to insert */
	TupleTableSlot *existing;	/* a record found */
	TupleTableSlot *updated;	/* its new version */
	CommandId	cid;
	/* an UPDATE's old and new rows, for what a device was noted to have */
	SyncTable  *t;
	Tuplestorestate *oldrows;
	Tuplestorestate *newrows;
	TupleDesc	rowdesc;
	MinimalTuple *rows;			/* old rows, then new rows: copied when first needed */
	int			nrows;
} DirectWriter;

/* The rows of a transition table, copied into rows[from..]; how many. */
static int
copy_rows(DirectWriter *w, Tuplestorestate *store, int from)
{
	TupleTableSlot *scan = MakeSingleTupleTableSlot(w->rowdesc, &TTSOpsMinimalTuple);
	int			n = from;

	tuplestore_rescan(store);
	while (n < w->nrows && tuplestore_gettupleslot(store, true, false, scan))
		w->rows[n++] = ExecCopySlotMinimalTuple(scan);
	tuplestore_rescan(store);
	ExecDropSingleTupleTableSlot(scan);
	return n - from;
}

/*
 * Whether an UPDATE left row number row (of its new rows) as it was in
 * every synced column: then a device noted to have the row still has it.
 * (An UPDATE's transition tables hold each row's old and new versions at
 * the same place.)
 */
static bool
row_unchanged(DirectWriter *w, int row)
{
	SyncTable  *t = w->t;
	TupleTableSlot *o,
			   *n;
	bool		same = true;
	int			half,
				i;

	if (row < 0 || w->oldrows == NULL || w->newrows == NULL)
		return false;
	half = (int) tuplestore_tuple_count(w->newrows);
	if ((int) tuplestore_tuple_count(w->oldrows) != half || row >= half)
		return false;
	if (w->rows == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->nrows = 2 * half;
		w->rows = palloc0(sizeof(MinimalTuple) * (w->nrows + 1));
		if (copy_rows(w, w->oldrows, 0) != half || copy_rows(w, w->newrows, half) != half)
			w->nrows = 0;
		MemoryContextSwitchTo(old);
	}
	if (w->nrows == 0)
		return false;
	o = MakeSingleTupleTableSlot(w->rowdesc, &TTSOpsMinimalTuple);
	n = MakeSingleTupleTableSlot(w->rowdesc, &TTSOpsMinimalTuple);
	ExecStoreMinimalTuple(w->rows[row], o, false);
	ExecStoreMinimalTuple(w->rows[half + row], n, false);
	for (i = 0; same && i < t->ncols; i++)
	{
		Form_pg_attribute a;
		bool		onull,
					nnull;
		Datum		ov,
					nv;

		if (!t->cols[i].synced)
			continue;
		a = TupleDescAttr(w->rowdesc, t->cols[i].attnum - 1);
		ov = slot_getattr(o, t->cols[i].attnum, &onull);
		nv = slot_getattr(n, t->cols[i].attnum, &nnull);
		same = onull == nnull && (onull || datum_image_eq(ov, nv, a->attbyval, a->attlen));
	}
	ExecDropSingleTupleTableSlot(o);
	ExecDropSingleTupleTableSlot(n);
	return same;
}

/*
 * Upserts one record: INSERT ... ON CONFLICT (table_id, owner, id) DO
 * UPDATE. With a note of the pushing device (origin), the record also says
 * what the device has. Without, a record written again keeps what a device
 * was noted to have only when the statement was an UPDATE that left the row
 * (its new row number row; -1: none) as it was; otherwise it forgets it,
 * also when the record was already written in this transaction: the device
 * may be sent the new version, and a row written back to what the device
 * pushed must then be sent again.
 */
static void
direct_upsert(DirectWriter *w, int32 table_id, Datum key, Datum owner,
			  FullTransactionId xid, bool deleted, bool likely_new,
			  Datum origin, SyncOriginNote *note, int row)
{
	TupleTableSlot *slot = w->slot;
	ItemPointerData conflict;
	int			i;
	bool		precheck = !likely_new;

	ExecClearTuple(slot);
	for (i = 0; i < RM_NATTS; i++)
		slot->tts_isnull[i] = true;
	slot->tts_values[RM_TABLE_ID] = Int32GetDatum(table_id);
	slot->tts_values[RM_ID] = key;
	slot->tts_values[RM_OWNER] = owner;
	slot->tts_values[RM_XID] = FullTransactionIdGetDatum(xid);
	slot->tts_values[RM_DELETED] = BoolGetDatum(deleted);
	for (i = 0; i <= RM_DELETED; i++)
		slot->tts_isnull[i] = false;
	if (note)
	{
		slot->tts_values[RM_ORIGIN] = origin;
		slot->tts_values[RM_ORIGIN_HASH] = Int64GetDatum(note->hash);
		slot->tts_values[RM_ORIGIN_COLS] = CStringGetTextDatum(note->cols);
		slot->tts_isnull[RM_ORIGIN] = slot->tts_isnull[RM_ORIGIN_HASH] =
			slot->tts_isnull[RM_ORIGIN_COLS] = false;
	}
	ExecStoreVirtualTuple(slot);

	for (;;)
	{
		TM_FailureData tmfd;
		TM_Result	res;
		bool		isnull;
		bool		keep;
		LockTupleMode lockmode;

		CHECK_FOR_INTERRUPTS();

		/*
		 * A row just inserted rarely has a record yet (only a tombstone of
		 * an earlier row with its key): it goes straight to the speculative
		 * insertion, whose index insertion finds a conflict as surely as the
		 * check would; after a conflict the check comes first, as in ExecInsert.
		 */
		if (!precheck ||
			sync_check_index_constraints(w->rri, slot, w->estate, &conflict, w->arbiter))
		{
			/* no record yet: insert one, speculatively */
			uint32		token = SpeculativeInsertionLockAcquire(GetCurrentTransactionId());
			bool		spec_conflict = false;
			List	   *recheck;

			table_tuple_insert_speculative(w->rel, slot, w->cid, 0, NULL, token);
			recheck = ExecInsertIndexTuples(w->rri, slot, w->estate, false, true,
											&spec_conflict, w->arbiter
#if PG_VERSION_NUM >= 160000
											,false
#endif
				);
			table_tuple_complete_speculative(w->rel, slot, token, !spec_conflict);
			SpeculativeInsertionLockRelease(GetCurrentTransactionId());
			list_free(recheck);
			if (!spec_conflict)
			{
				if (note)
					note->taken = true;
				return;
			}
			precheck = true;	/* there is a record (or someone else inserted it meanwhile) */
			continue;
		}

		/* a record exists: lock it, and update it if it says something else */
		res = table_tuple_lock(w->rel, &conflict, w->estate->es_snapshot, w->existing,
							   w->cid, LockTupleNoKeyExclusive, LockWaitBlock, 0, &tmfd);
		if (res == TM_Updated || res == TM_Deleted)
		{
			if (IsolationUsesXactSnapshot())
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("could not serialize access due to concurrent %s",
								res == TM_Updated ? "update" : "delete")));
			ExecClearTuple(w->existing);
			continue;
		}
		if (res != TM_Ok)
			elog(ERROR, "pg_sync: unexpected result %d locking a change record", (int) res);
		if (IsolationUsesXactSnapshot() &&
			!table_tuple_satisfies_snapshot(w->rel, w->existing, w->estate->es_snapshot) &&
			!TransactionIdIsCurrentTransactionId(
				DatumGetTransactionId(slot_getsysattr(w->existing, MinTransactionIdAttributeNumber, &isnull))))
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not serialize access due to concurrent update")));

		slot_getallattrs(w->existing);
		/* a note the record keeps: that of a device that still has the row */
		keep = note == NULL && !w->existing->tts_isnull[RM_ORIGIN] && row_unchanged(w, row);
		if (U64FromFullTransactionId(DatumGetFullTransactionId(w->existing->tts_values[RM_XID])) !=
			U64FromFullTransactionId(xid) ||
			DatumGetBool(w->existing->tts_values[RM_DELETED]) != deleted ||
			(note ? !record_has_note(w->existing, origin, note) :
			 !w->existing->tts_isnull[RM_ORIGIN] && !keep))
		{
#if PG_VERSION_NUM >= 160000
			TU_UpdateIndexes update_indexes;
#else
			bool		update_indexes;
#endif
			TupleTableSlot *up = w->updated;

			ExecClearTuple(up);
			memcpy(up->tts_values, w->existing->tts_values, sizeof(Datum) * RM_NATTS);
			memcpy(up->tts_isnull, w->existing->tts_isnull, sizeof(bool) * RM_NATTS);
			up->tts_values[RM_XID] = FullTransactionIdGetDatum(xid);
			up->tts_values[RM_DELETED] = BoolGetDatum(deleted);
			/* the note, or the one the device still has, or none */
			if (!keep)
			{
				for (i = RM_ORIGIN; i <= RM_ORIGIN_COLS; i++)
				{
					up->tts_values[i] = slot->tts_values[i];
					up->tts_isnull[i] = slot->tts_isnull[i];
				}
			}
			ExecStoreVirtualTuple(up);
			res = table_tuple_update(w->rel, &conflict, up, w->cid, w->estate->es_snapshot,
									 InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
			if (res != TM_Ok)
				elog(ERROR, "pg_sync: unexpected result %d updating a locked change record", (int) res);
#if PG_VERSION_NUM >= 160000
			if (update_indexes != TU_None)
				list_free(ExecInsertIndexTuples(w->rri, up, w->estate, true, false, NULL, NIL,
												update_indexes == TU_Summarizing));
#else
			if (update_indexes)
				list_free(ExecInsertIndexTuples(w->rri, up, w->estate, true, false, NULL, NIL));
#endif
		}
		if (note)
			note->taken = true;
		ExecClearTuple(w->existing);
		return;
	}
}

/*
 * Reads the (key, owner) of every row of a transition table, copied (the
 * tuplestore may reuse its memory). False if a key is NULL. Leaves the
 * tuplestore at its start, as the other triggers sharing it expect.
 */
static bool
read_records(SyncTable *t, Tuplestorestate *store, TupleTableSlot *slot, int n,
			 Datum *key, Datum *owner)
{
	int			i = 0;
	bool		ok = true;

	tuplestore_rescan(store);
	while (ok && i < n && tuplestore_gettupleslot(store, true, false, slot))
	{
		ok = row_key_owner(t, slot, &key[i], &owner[i]);
		if (ok)
		{
			key[i] = datumCopy(key[i], false, -1);
			owner[i] = datumCopy(owner[i], false, -1);
		}
		i++;
	}
	tuplestore_rescan(store);
	return ok && i == n;
}

/* Byte order of texts (equal: what the primary key's = means here). */
static int
text_order(Datum a, Datum b)
{
	text	   *x = DatumGetTextPP(a);
	text	   *y = DatumGetTextPP(b);
	int			lx = VARSIZE_ANY_EXHDR(x),
				ly = VARSIZE_ANY_EXHDR(y);
	int			c = memcmp(VARDATA_ANY(x), VARDATA_ANY(y), Min(lx, ly));

	return c != 0 ? c : (lx > ly) - (lx < ly);
}

static Datum *sort_key;
static Datum *sort_owner;

static int
cmp_record(const void *a, const void *b)
{
	int			i = *(const int *) a,
				j = *(const int *) b;
	int			c = text_order(sort_key[i], sort_key[j]);

	return c != 0 ? c : text_order(sort_owner[i], sort_owner[j]);
}

/* Whether (k, o) is among the n records that order lists, sorted. */
static bool
has_record(Datum *key, Datum *owner, int *order, int n, Datum k, Datum o)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = text_order(key[order[mid]], k);

		if (c == 0)
			c = text_order(owner[order[mid]], o);
		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/*
 * What the direct writer needs of _pg_sync.row_meta that stays the same from
 * one statement to the next, kept for the backend's life: the table's oid
 * and, for each of its indexes, what the executor builds when it opens them
 * (ExecOpenIndices: BuildIndexInfo, and for a unique index the operators of
 * a speculative insertion). Forgotten on a relcache invalidation of the
 * table, of one of its indexes or of everything (any DDL on them, a REINDEX,
 * an index made ready, the extension dropped or updated) and built again
 * once the table is locked, from the index list the executor would read.
 * The callback only marks it stale: a call under way keeps what it started
 * with, as a statement keeps the indexes it opened.
 */
#define RM_MAX_INDEXES 8

typedef struct WriterCache
{
	Oid			relid;			/* row_meta, or InvalidOid: look it up */
	bool		built;			/* the index list below is for relid (set with it) */
	uint64		invals;			/* invalidations seen, to tell a build overtaken */
	int			nindexes;
	Oid			pk;
	Oid			oids[RM_MAX_INDEXES];
	IndexInfo  *info[RM_MAX_INDEXES];
	bool		tombs_only[RM_MAX_INDEXES]; /* only tombstones have entries */
	MemoryContext cxt;
} WriterCache;

static WriterCache wcache;

static void
writer_inval(Datum arg, Oid relid)
{
	int			i;
	bool		hit = !OidIsValid(relid) || relid == wcache.relid;

	for (i = 0; !hit && wcache.built && i < wcache.nindexes; i++)
		hit = relid == wcache.oids[i];
	if (hit)
	{
		wcache.relid = InvalidOid;
		wcache.built = false;
		wcache.invals++;
	}
}

/* Whether an index's predicate is "deleted": a live record has no entry. */
static bool
tombstones_only(IndexInfo *ii)
{
	Node	   *pred;

	if (list_length(ii->ii_Predicate) != 1)
		return false;
	pred = (Node *) linitial(ii->ii_Predicate);
	return IsA(pred, Var) && ((Var *) pred)->varattno == RM_DELETED + 1 &&
		((Var *) pred)->vartype == BOOLOID;
}

/* Reads the index list of row_meta, locked, into the cache. */
static void
writer_build(Relation rel)
{
	List	   *list;
	ListCell   *lc;
	uint64		invals;
	Oid			pk;
	int			n = 0;

	if (wcache.cxt == NULL)
	{
		wcache.cxt = AllocSetContextCreate(CacheMemoryContext, "pg_sync change-record writer",
										   ALLOCSET_SMALL_SIZES);
		CacheRegisterRelcacheCallback(writer_inval, (Datum) 0);
	}
	else
		MemoryContextReset(wcache.cxt);

	/*
	 * From here on, an invalidation of row_meta (a VACUUM or ANALYZE of it
	 * updates its pg_class row) counts against this build: the relid is
	 * known, and what an index_open below takes in leaves the build not
	 * marked built.
	 */
	wcache.relid = RelationGetRelid(rel);
	wcache.built = false;
	invals = wcache.invals;
	list = RelationGetIndexList(rel);

	/*
	 * The primary key as the index list just read gives it: an
	 * invalidation taken in by the index_open calls below rebuilds rel's
	 * relcache entry, whose rd_pkindex is then unset until the index list
	 * is read again.
	 */
	pk = rel->rd_pkindex;
	if (list_length(list) > RM_MAX_INDEXES || !OidIsValid(pk) ||
		!list_member_oid(list, pk) || RelationGetDescr(rel)->natts != RM_NATTS)
		elog(ERROR, "pg_sync: _pg_sync.row_meta is not as the extension created it");
	foreach(lc, list)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		MemoryContext old = MemoryContextSwitchTo(wcache.cxt);
		IndexInfo  *ii = BuildIndexInfo(idx);

		if (ii->ii_Unique)
			BuildSpeculativeIndexInfo(idx, ii);
#if PG_VERSION_NUM >= 150000
		{
			/*
			 * An update changes xid and deleted only: the executor's hint of
			 * which indexes an update leaves unchanged, set here since this
			 * result relation has no range table entry to work it out from
			 * (14 hints every index of an update).
			 */
			int			k;

			ii->ii_CheckedUnchanged = true;
			ii->ii_IndexUnchanged = true;
			for (k = 0; k < ii->ii_NumIndexKeyAttrs; k++)
				if (ii->ii_IndexAttrNumbers[k] == RM_XID + 1 || ii->ii_IndexAttrNumbers[k] == RM_DELETED + 1 ||
					ii->ii_IndexAttrNumbers[k] == 0)
					ii->ii_IndexUnchanged = false;
		}
#endif
		MemoryContextSwitchTo(old);
		wcache.oids[n] = RelationGetRelid(idx);
		wcache.info[n] = ii;
		wcache.tombs_only[n] = tombstones_only(ii);
		n++;
		index_close(idx, NoLock);
	}
	wcache.nindexes = n;
	wcache.pk = pk;
	list_free(list);
	/* (an invalidation taken in meanwhile leaves it to be built again) */
	if (wcache.invals == invals)
		wcache.built = true;
	else
		wcache.relid = InvalidOid;
}

/*
 * Opens row_meta and the indexes a statement writes into, as
 * ExecOpenIndices would (the partial index of tombstones only when the
 * statement writes one).
 */
static void
writer_open(DirectWriter *w, bool tombstones)
{
	Oid			relid = wcache.relid;
	int			i,
				n = 0;

	if (!OidIsValid(relid))
		relid = sync_internal_relid("row_meta");
	if (!OidIsValid(relid))
		elog(ERROR, "pg_sync: _pg_sync.row_meta is missing");
	w->rel = table_open(relid, RowExclusiveLock);
	if (!wcache.built)
		writer_build(w->rel);
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 0, NULL, 0);
	w->rri->ri_IndexRelationDescs = palloc(sizeof(Relation) * wcache.nindexes);
	w->rri->ri_IndexRelationInfo = palloc(sizeof(IndexInfo *) * wcache.nindexes);
	for (i = 0; i < wcache.nindexes; i++)
	{
		IndexInfo  *ii;

		if (wcache.tombs_only[i] && !tombstones)
			continue;
		/* a copy: the executor keeps the predicate's state in it */
		ii = palloc(sizeof(IndexInfo));
		memcpy(ii, wcache.info[i], sizeof(IndexInfo));
		w->rri->ri_IndexRelationDescs[n] = index_open(wcache.oids[i], RowExclusiveLock);
		w->rri->ri_IndexRelationInfo[n] = ii;
		n++;
	}
	w->rri->ri_NumIndices = n;
	w->arbiter = list_make1_oid(wcache.pk);
}

/*
 * Records a statement's rows without SQL. False, having written nothing,
 * when it cannot (the SQL upsert then does).
 */
static bool
capture_direct(SyncTable *t, TriggerData *td, int event)
{
	TupleTableSlot *rowslot;
	Datum	   *key,
			   *owner;
	int			nnew,
				nold,
				n,
				i;
	DirectWriter w;
	FullTransactionId xid;
	bool		ok = true;
	MemoryContext cxt;
	SyncPushOrigins *po = sync_push_origins;
	Datum		po_origin = (Datum) 0,
				po_owner = (Datum) 0;

	if (t->direct == 0)
	{
		MemoryContext desc_cxt = GetMemoryChunkContext(t);

		t->key_conv = conv_init(&t->cols[t->key], &t->key_fn, desc_cxt);
		t->owner_conv = t->owner < 0 ? CONV_RELABEL : conv_init(&t->cols[t->owner], &t->owner_fn, desc_cxt);
		t->direct = t->key_conv > 0 && t->owner_conv > 0 ? 1 : -1;
	}
	/* (the 0.1 schema, before ALTER EXTENSION UPDATE, has other records) */
	if (t->direct < 0 || (!wcache.built && !sync_schema_02()))
		return false;

	/* the records, before anything is written */
	nnew = event == 2 ? 0 : (int) tuplestore_tuple_count(td->tg_newtable);
	nold = event == 0 ? 0 : (int) tuplestore_tuple_count(td->tg_oldtable);
	key = palloc(sizeof(Datum) * (nnew + nold));
	owner = palloc(sizeof(Datum) * (nnew + nold));
	rowslot = MakeSingleTupleTableSlot(RelationGetDescr(td->tg_relation), &TTSOpsMinimalTuple);
	if (nnew > 0)
		ok = read_records(t, td->tg_newtable, rowslot, nnew, key, owner);
	if (nold > 0 && ok)
		ok = read_records(t, td->tg_oldtable, rowslot, nold, key + nnew, owner + nnew);
	ExecDropSingleTupleTableSlot(rowslot);
	if (!ok)
		return false;
	n = nnew;
	if (event == 2)
		n = nold;
	else if (event == 1)
	{
		/* an update leaves a tombstone only where a key or owner moved away */
		int		   *order = palloc(sizeof(int) * nnew);

		for (i = 0; i < nnew; i++)
			order[i] = i;
		sort_key = key;
		sort_owner = owner;
		qsort(order, nnew, sizeof(int), cmp_record);
		for (i = nnew; i < nnew + nold; i++)
			if (!has_record(key, owner, order, nnew, key[i], owner[i]))
			{
				key[n] = key[i];
				owner[n] = owner[i];
				n++;
			}
	}

	/* as a statement of its own would: after what came before */
	CommandCounterIncrement();
	xid = GetTopFullTransactionId();
	memset(&w, 0, sizeof(w));
	w.t = t;
	if (event == 1)
	{
		w.oldrows = td->tg_oldtable;
		w.newrows = td->tg_newtable;
	}
	w.rowdesc = RelationGetDescr(td->tg_relation);
	w.estate = CreateExecutorState();
	w.estate->es_output_cid = w.cid = GetCurrentCommandId(true);
	w.estate->es_snapshot = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
	{
		MemoryContext old = MemoryContextSwitchTo(w.estate->es_query_cxt);

		writer_open(&w, event == 2 || n > nnew);
		MemoryContextSwitchTo(old);
	}
	w.slot = ExecInitExtraTupleSlot(w.estate, RelationGetDescr(w.rel), &TTSOpsVirtual);
	w.updated = ExecInitExtraTupleSlot(w.estate, RelationGetDescr(w.rel), &TTSOpsVirtual);
	w.existing = ExecInitExtraTupleSlot(w.estate, RelationGetDescr(w.rel), table_slot_callbacks(w.rel));
	cxt = GetPerTupleMemoryContext(w.estate);
	/* a push naming its device, writing this table: its notes */
	if (po != NULL && po->table_id == t->table_id && event != 2)
	{
		po_origin = CStringGetTextDatum(po->origin);
		po_owner = CStringGetTextDatum(po->owner);
	}
	else
		po = NULL;
	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		SyncOriginNote *note = NULL;

		if (po != NULL && i < nnew && text_order(owner[i], po_owner) == 0)
			note = sync_origin_note(po, TextDatumGetCString(key[i]));
		/* the first nnew records are rows written, the rest tombstones */
		direct_upsert(&w, t->table_id, key[i], owner[i], xid, event == 2 || i >= nnew, event == 0,
					  po_origin, note, event != 2 && i < nnew ? i : -1);
		MemoryContextSwitchTo(old);
		ResetPerTupleExprContext(w.estate);
	}
	ExecCloseIndices(w.rri);
	ExecResetTupleTable(w.estate->es_tupleTable, false);
	FreeExecutorState(w.estate);
	table_close(w.rel, NoLock);
	return true;
}

/*
 * Statement trigger: AFTER INSERT, UPDATE or DELETE ... FOR EACH STATEMENT,
 * with transition tables pg_sync_old / pg_sync_new.
 */
Datum
sync_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Tuplestorestate *rows;
	SyncTable  *t;
	SyncOwnerCtx owner_ctx;
	int			event;
	Datum		args[2];
	int			rc;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_pg_sync.capture() must be an AFTER ... FOR EACH STATEMENT trigger")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		event = 0, rows = td->tg_newtable;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
		event = 1, rows = td->tg_newtable;
	else
		event = 2, rows = td->tg_oldtable;
	if (rows == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_pg_sync.capture() needs its transition tables"),
				 errhint("Unregister and register the table again.")));
	if (tuplestore_tuple_count(rows) == 0)
		return PointerGetDatum(NULL);

	/* the table's descriptor at hand: no SQL needed */
	if (sync_direct_capture &&
		(t = sync_registry_cached(RelationGetRelid(td->tg_relation))) != NULL &&
		capture_direct(t, td, event))
		return PointerGetDatum(NULL);

	SPI_connect();
	sync_owner_enter(&owner_ctx);
	t = sync_registry_lookup(RelationGetRelid(td->tg_relation), true);
	if (t != NULL)
	{
		if (SPI_register_trigger_data(td) != SPI_OK_TD_REGISTER)
			elog(ERROR, "pg_sync: could not register transition tables");
		args[0] = Int32GetDatum(t->table_id);
		args[1] = FullTransactionIdGetDatum(GetTopFullTransactionId());
		rc = SPI_execute_plan(capture_plan(t, event), args, NULL, false, 0);
		sync_check_spi(rc, SPI_OK_INSERT, "recording changes");
	}
	sync_owner_leave(&owner_ctx);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/* Statement trigger: BEFORE TRUNCATE. Tombstones every row. */
Datum
sync_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	SyncTable  *t;
	FullTransactionId xid;
	SyncOwnerCtx owner_ctx;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_pg_sync.capture_truncate() must be a BEFORE TRUNCATE trigger")));
	xid = GetTopFullTransactionId();
	SPI_connect();
	sync_owner_enter(&owner_ctx);
	t = sync_registry_lookup(RelationGetRelid(td->tg_relation), true);
	if (t != NULL)
	{
		Datum		args[2];
		Oid			types[2] = {INT4OID, XID8OID};
		int			rc;

		args[0] = Int32GetDatum(t->table_id);
		args[1] = FullTransactionIdGetDatum(xid);
		rc = SPI_execute_with_args(
			psprintf("INSERT INTO _pg_sync.row_meta AS m (table_id, id, owner, xid, deleted)"
					 " SELECT $1, %s, %s, $2, true FROM ONLY %s AS t"
					 " ON CONFLICT (table_id, id, owner) DO UPDATE"
					 "   SET xid = excluded.xid, deleted = true",
					 key_expr(t, "t"), owner_expr(t, "t"), t->qualname),
			2, types, args, NULL, false, 0);
		sync_check_spi(rc, SPI_OK_INSERT, "recording a truncate");
	}
	sync_owner_leave(&owner_ctx);
	SPI_finish();
	return PointerGetDatum(NULL);
}

/*
 * Row trigger of the version policy: BEFORE INSERT OR UPDATE, with the
 * version column's name as its argument. A new row gets version 1, every
 * update the old version + 1, whatever the statement wrote: clients (and
 * SQL) cannot set it.
 */
Datum
sync_bump_version(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	newtup;
	int			attnum;
	Oid			typid;
	int64		version = 1;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event) ||
		td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_pg_sync.bump_version() must be a BEFORE INSERT OR UPDATE ... FOR EACH ROW trigger with the column's name")));
	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	attnum = SPI_fnumber(desc, td->tg_trigger->tgargs[0]);
	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("version column \"%s\" of table \"%s\" does not exist",
						td->tg_trigger->tgargs[0], RelationGetRelationName(rel))));
	typid = getBaseType(TupleDescAttr(desc, attnum - 1)->atttypid);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		Datum		old = heap_getattr(td->tg_trigtuple, attnum, desc, &isnull);

		if (!isnull)
			version = (typid == INT8OID ? DatumGetInt64(old) :
					   typid == INT4OID ? (int64) DatumGetInt32(old) : (int64) DatumGetInt16(old)) + 1;
		newtup = td->tg_newtuple;
	}
	else
		newtup = td->tg_trigtuple;
	if ((typid == INT4OID && version > PG_INT32_MAX) || (typid == INT2OID && version > PG_INT16_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("version column \"%s\" of table \"%s\" is out of range",
						td->tg_trigger->tgargs[0], RelationGetRelationName(rel))));
	value = typid == INT8OID ? Int64GetDatum(version) :
		typid == INT4OID ? Int32GetDatum((int32) version) : Int16GetDatum((int16) version);
	isnull = false;
	return PointerGetDatum(heap_modify_tuple_by_cols(newtup, desc, 1, &attnum, &value, &isnull));
}
