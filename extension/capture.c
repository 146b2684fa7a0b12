/*
 * capture.c — the triggers that record changes. For every written row the
 * row trigger stores which top-level transaction last wrote it and whether
 * that was a delete (a tombstone), under the row's owner. A row that moves to
 * another owner or key leaves a tombstone behind. TRUNCATE records a
 * tombstone for every row before it goes. Rolled-back (sub)transactions take
 * their records with them: the record is written in the same transaction.
 */
#include "pg_sync.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_capture_row);
PG_FUNCTION_INFO_V1(sync_capture_truncate);

static SPIPlanPtr record_plan = NULL;

/* Upserts the record of one row's last change. */
static void
record_change(SyncTable *t, const char *id, const char *owner, FullTransactionId xid, bool deleted)
{
	Datum		args[5];
	int			rc;

	if (record_plan == NULL)
	{
		Oid			types[5] = {INT4OID, TEXTOID, TEXTOID, XID8OID, BOOLOID};

		record_plan = sync_prepare(
			"INSERT INTO _pg_sync.row_meta AS m (table_id, id, owner, xid, deleted)"
			" VALUES ($1, $2, $3, $4, $5)"
			" ON CONFLICT (table_id, id, owner) DO UPDATE"
			"   SET xid = excluded.xid, deleted = excluded.deleted"
			" WHERE m.xid <> excluded.xid OR m.deleted <> excluded.deleted", 5, types);
	}
	args[0] = Int32GetDatum(t->table_id);
	args[1] = CStringGetTextDatum(id);
	args[2] = CStringGetTextDatum(owner);
	args[3] = FullTransactionIdGetDatum(xid);
	args[4] = BoolGetDatum(deleted);
	rc = SPI_execute_plan(record_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "recording a change");
}

/* Text of column c of a tuple ('' for the owner when NULL). */
static char *
column_text(SyncTable *t, int c, HeapTuple tup, TupleDesc td)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, t->cols[c].attnum, td, &isnull);

	if (isnull)
		return "";
	return OutputFunctionCall(&t->cols[c].outfn, d);
}

/* Row trigger: AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW. */
Datum
sync_capture_row(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	tupdesc;
	SyncTable  *t;
	FullTransactionId xid;
	Oid			save_user;
	int			save_sec;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_AFTER(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_pg_sync.capture_row() must be an AFTER ... FOR EACH ROW trigger")));
	tupdesc = RelationGetDescr(td->tg_relation);
	xid = GetTopFullTransactionId();

	SPI_connect();
	sync_as_owner(&save_user, &save_sec);
	t = sync_registry_lookup(RelationGetRelid(td->tg_relation), true);
	if (t != NULL)
	{
		if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
			record_change(t, column_text(t, t->key, td->tg_trigtuple, tupdesc),
						  t->owner >= 0 ? column_text(t, t->owner, td->tg_trigtuple, tupdesc) : "",
						  xid, false);
		else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
			record_change(t, column_text(t, t->key, td->tg_trigtuple, tupdesc),
						  t->owner >= 0 ? column_text(t, t->owner, td->tg_trigtuple, tupdesc) : "",
						  xid, true);
		else
		{
			char	   *oldid = column_text(t, t->key, td->tg_trigtuple, tupdesc);
			char	   *newid = column_text(t, t->key, td->tg_newtuple, tupdesc);
			char	   *oldowner = t->owner >= 0 ? column_text(t, t->owner, td->tg_trigtuple, tupdesc) : "";
			char	   *newowner = t->owner >= 0 ? column_text(t, t->owner, td->tg_newtuple, tupdesc) : "";

			if (strcmp(oldid, newid) != 0 || strcmp(oldowner, newowner) != 0)
				record_change(t, oldid, oldowner, xid, true);
			record_change(t, newid, newowner, xid, false);
		}
	}
	sync_restore_user(save_user, save_sec);
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
	Oid			save_user;
	int			save_sec;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("_pg_sync.capture_truncate() must be a BEFORE TRUNCATE trigger")));
	xid = GetTopFullTransactionId();
	SPI_connect();
	sync_as_owner(&save_user, &save_sec);
	t = sync_registry_lookup(RelationGetRelid(td->tg_relation), true);
	if (t != NULL)
	{
		char	   *sql;
		Datum		args[2];
		Oid			types[2] = {INT4OID, XID8OID};
		int			rc;

		sql = psprintf("INSERT INTO _pg_sync.row_meta AS m (table_id, id, owner, xid, deleted)"
					   " SELECT $1, %s::text, %s, $2, true FROM ONLY %s"
					   " ON CONFLICT (table_id, id, owner) DO UPDATE"
					   "   SET xid = excluded.xid, deleted = true",
					   quote_identifier(t->cols[t->key].name),
					   t->owner >= 0 ? psprintf("coalesce(%s::text, '')",
												quote_identifier(t->cols[t->owner].name)) : "''",
					   t->qualname);
		args[0] = Int32GetDatum(t->table_id);
		args[1] = FullTransactionIdGetDatum(xid);
		rc = SPI_execute_with_args(sql, 2, types, args, NULL, false, 0);
		sync_check_spi(rc, SPI_OK_INSERT, "recording a truncate");
	}
	sync_restore_user(save_user, save_sec);
	SPI_finish();
	return PointerGetDatum(NULL);
}
