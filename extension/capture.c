/*
 * capture.c — the triggers that record changes. After every statement that
 * writes a registered table, one set-based upsert records, for each written
 * row, which top-level transaction last wrote it and whether that was a
 * delete (a tombstone), under the row's owner. A row that moves to another
 * owner or key leaves a tombstone behind. TRUNCATE records a tombstone for
 * every row before it goes. Rolled-back (sub)transactions take their records
 * with them: the record is written in the same (sub)transaction.
 *
 * The statement triggers see the written rows through transition tables
 * (pg_sync_old, pg_sync_new), so a push or an UPDATE of many rows costs one
 * statement, not one per row.
 */
#include "pg_sync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
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
 * tombstone for every old (key, owner) that no new row has any more.
 */
static SPIPlanPtr
capture_plan(SyncTable *t, int event)
{
	SPIPlanPtr *slot = &t->capture_plans[event];
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
		"   SET xid = excluded.xid, deleted = excluded.deleted"
		" WHERE m.xid OPERATOR(pg_catalog.<>) excluded.xid"
		"    OR m.deleted OPERATOR(pg_catalog.<>) excluded.deleted", rows),
		2, types);
	return *slot;
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
