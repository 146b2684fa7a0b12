/*
 * capture_c.c -- two change-record designs of capture_designs.sh written in
 * C, the way the extension's capture writes its own records (capture.c): no
 * SQL, the executor's table and index calls, the top-level xid read once
 * per statement. They let the benchmark compare what the designs cost when
 * each is written as cheaply as the extension writes its current record,
 * instead of through PL/pgSQL statements.
 *
 *   capture_c_log(log_table, key_column, owner_column)
 *       AFTER INSERT / UPDATE / DELETE ... FOR EACH STATEMENT, with the
 *       transition tables new_rows / old_rows: design D's append-only log.
 *       One entry (table_id 1, owner, xid, id, deleted) per written row,
 *       inserted with the log's indexes; an UPDATE that moves a row to
 *       another key or owner adds a tombstone for the old one, as the
 *       extension records it. Key and owner must be text.
 *
 *   capture_c_stamp(xid_column)
 *       BEFORE INSERT OR UPDATE ... FOR EACH ROW: design H's column, set to
 *       the top-level transaction id (xid8) in the row being written,
 *       whatever the statement wrote there.
 *
 * A benchmark module, not part of the extension: it is built and installed
 * by capture_designs.sh when its designs are asked for.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/tuplestore.h"
#include "utils/xid8.h"

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(capture_c_log);
PG_FUNCTION_INFO_V1(capture_c_stamp);

#define LOG_NATTS 5				/* table_id, owner, xid, id, deleted */

/* The attribute number of a text column of the trigger's table. */
static AttrNumber
text_column(Relation rel, const char *name)
{
	AttrNumber	att = get_attnum(RelationGetRelid(rel), name);

	if (att <= 0 || TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid != TEXTOID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a text column of \"%s\"", name, RelationGetRelationName(rel))));
	return att;
}

/* The (key, owner) of every row of a transition table, copied. */
static int
read_rows(Tuplestorestate *store, TupleDesc desc, AttrNumber key_att, AttrNumber owner_att,
		  Datum *key, Datum *owner)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
	int			n = 0;

	tuplestore_rescan(store);
	while (tuplestore_gettupleslot(store, true, false, slot))
	{
		bool		isnull;

		key[n] = slot_getattr(slot, key_att, &isnull);
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("a row with a null key was written")));
		key[n] = PointerGetDatum(DatumGetTextPCopy(key[n]));
		owner[n] = slot_getattr(slot, owner_att, &isnull);
		owner[n] = isnull ? CStringGetTextDatum("") : PointerGetDatum(DatumGetTextPCopy(owner[n]));
		n++;
	}
	tuplestore_rescan(store);
	ExecDropSingleTupleTableSlot(slot);
	return n;
}

Datum
capture_c_log(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	AttrNumber	key_att,
				owner_att;
	Oid			log_oid;
	int			nnew = 0,
				nold = 0,
				n,
				i;
	Datum	   *key,
			   *owner;
	bool	   *deleted;
	EState	   *estate;
	Relation	log;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
	FullTransactionId xid;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event) || td->tg_trigger->tgnargs != 3)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("capture_c_log() must be an AFTER ... FOR EACH STATEMENT trigger with three arguments")));
	rel = td->tg_relation;
	desc = RelationGetDescr(rel);
	key_att = text_column(rel, td->tg_trigger->tgargs[1]);
	owner_att = text_column(rel, td->tg_trigger->tgargs[2]);
	if (td->tg_newtable)
		nnew = (int) tuplestore_tuple_count(td->tg_newtable);
	if (td->tg_oldtable && !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		nold = (int) tuplestore_tuple_count(td->tg_oldtable);
	if (nnew + nold == 0)
		return PointerGetDatum(NULL);

	/* the entries: new rows live; old rows dead, on UPDATE only those that moved */
	key = palloc(sizeof(Datum) * (nnew + nold));
	owner = palloc(sizeof(Datum) * (nnew + nold));
	deleted = palloc0(sizeof(bool) * (nnew + nold));
	n = nnew > 0 ? read_rows(td->tg_newtable, desc, key_att, owner_att, key, owner) : 0;
	if (nold > 0)
	{
		int			m = read_rows(td->tg_oldtable, desc, key_att, owner_att, key + n, owner + n);

		for (i = n; i < n + m; i++)
		{
			bool		stays = false;
			int			j;

			/* (a scan of the new rows: the benchmark writes one row per statement) */
			for (j = 0; j < nnew && !stays; j++)
				stays = DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, key[i], key[j])) &&
					DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, owner[i], owner[j]));
			if (!stays)
			{
				key[n] = key[i];
				owner[n] = owner[i];
				deleted[n] = true;
				n++;
			}
		}
	}

	/* as a statement of its own would: after what came before */
	CommandCounterIncrement();
	xid = GetTopFullTransactionId();
	log_oid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(td->tg_trigger->tgargs[0])),
							   RowExclusiveLock, false);
	estate = CreateExecutorState();
	estate->es_output_cid = GetCurrentCommandId(true);
	log = table_open(log_oid, NoLock);
	if (RelationGetDescr(log)->natts != LOG_NATTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a change log (table_id, owner, xid, id, deleted)",
						RelationGetRelationName(log))));
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, log, 0, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(log), &TTSOpsVirtual);
	for (i = 0; i < n; i++)
	{
		ExecClearTuple(slot);
		slot->tts_values[0] = Int32GetDatum(1);
		slot->tts_values[1] = owner[i];
		slot->tts_values[2] = FullTransactionIdGetDatum(xid);
		slot->tts_values[3] = key[i];
		slot->tts_values[4] = BoolGetDatum(deleted[i]);
		memset(slot->tts_isnull, 0, sizeof(bool) * LOG_NATTS);
		ExecStoreVirtualTuple(slot);
		table_tuple_insert(log, slot, estate->es_output_cid, 0, NULL);
		list_free(ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL
#if PG_VERSION_NUM >= 160000
										,false
#endif
					  ));
	}
	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(log, NoLock);
	return PointerGetDatum(NULL);
}

Datum
capture_c_stamp(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	rel;
	int			att;
	Datum		value;
	bool		isnull = false;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event) || TRIGGER_FIRED_BY_DELETE(td->tg_event) ||
		td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("capture_c_stamp() must be a BEFORE INSERT OR UPDATE ... FOR EACH ROW trigger with one argument")));
	rel = td->tg_relation;
	att = get_attnum(RelationGetRelid(rel), td->tg_trigger->tgargs[0]);
	if (att <= 0 || TupleDescAttr(RelationGetDescr(rel), att - 1)->atttypid != XID8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not an xid8 column of \"%s\"", td->tg_trigger->tgargs[0],
						RelationGetRelationName(rel))));
	value = FullTransactionIdGetDatum(GetTopFullTransactionId());
	return PointerGetDatum(heap_modify_tuple_by_cols(TRIGGER_FIRED_BY_UPDATE(td->tg_event) ?
													 td->tg_newtuple : td->tg_trigtuple,
													 RelationGetDescr(rel), 1, &att, &value, &isnull));
}
