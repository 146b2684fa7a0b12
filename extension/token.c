/*
 * token.c — tokens are checkpoint ids. A checkpoint records a snapshot; a
 * pull returns the changes whose writer is visible in the new checkpoint but
 * was not in the caller's, so a late commit is never skipped and a long
 * writer never holds anyone back. Everything here runs inside SPI as the
 * extension owner.
 */
#include "pg_sync.h"

#include "access/xact.h"
#include "access/transam.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"

static SPIPlanPtr resolve_plan = NULL;
static SPIPlanPtr bounds_plan = NULL;
static SPIPlanPtr snapshot_plan = NULL;
static SPIPlanPtr newest_plan = NULL;
static SPIPlanPtr insert_plan = NULL;

PG_FUNCTION_INFO_V1(sync_checkpoint);

/* Checks that a client token is in range; 0 stands for "nothing seen". */
static void
check_range(int64 token)
{
	if (token < 0 || token > SYNC_MAX_TOKEN)
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_TOKEN_UNKNOWN),
				 errmsg("sync token " INT64_FORMAT " was not issued by this database", token),
				 errdetail("Tokens are positive integers below 2^53."),
				 errhint("Reset the client: pull with last_pulled_at = null.")));
}

/*
 * Resolves a client token to its checkpoint. A token this database never
 * issued, or one whose checkpoint retention removed, is refused with its own
 * SQLSTATE: the client must reset and pull from scratch.
 */
void
sync_token_resolve(int64 token, SyncToken *out)
{
	Datum		args[2];
	int			rc;
	bool		isnull;
	int64		lineage,
				oldest,
				newest;

	check_range(token);
	memset(out, 0, sizeof(*out));
	if (token == 0)
		return;

	if (resolve_plan == NULL)
	{
		Oid			types[2] = {INT8OID, INT4OID};

		resolve_plan = sync_prepare(
			"SELECT snap, snap::pg_catalog.text,"
			"       (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) created_at)"
			"         OPERATOR(pg_catalog.<) ($2 OPERATOR(pg_catalog.*) interval '1 ms')"
			"  FROM _pg_sync.checkpoints WHERE id OPERATOR(pg_catalog.=) $1", 2, types);
		bounds_plan = sync_prepare(
			"SELECT s.lineage_start, (SELECT pg_catalog.min(id) FROM _pg_sync.checkpoints),"
			"       (SELECT pg_catalog.max(id) FROM _pg_sync.checkpoints)"
			"  FROM _pg_sync.state s", 0, NULL);
	}
	args[0] = Int64GetDatum(token);
	args[1] = Int32GetDatum(sync_checkpoint_interval_ms);
	rc = SPI_execute_plan(resolve_plan, args, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "resolving a token");
	if (SPI_processed == 1)
	{
		out->id = token;
		out->snap = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		out->snap = datumCopy(out->snap, false, -1);
		out->snap_text = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		out->young = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		return;
	}

	rc = SPI_execute_plan(bounds_plan, NULL, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading token bounds");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_sync state is missing"),
				 errhint("Recreate the extension.")));
	lineage = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	oldest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		oldest = PG_INT64_MAX;
	newest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull)
		newest = lineage;

	/*
	 * Just past what this snapshot can see: on a hot standby that has not
	 * replayed the checkpoint yet, or in a REPEATABLE READ transaction that
	 * began before it was recorded, the token may well be real. Retry later
	 * rather than reset the client. (In READ COMMITTED on the primary a token
	 * handed out by a committed pull is always visible.)
	 */
	if (token > newest && token - newest <= SYNC_TOKEN_LOOKAHEAD &&
		(RecoveryInProgress() || IsolationUsesXactSnapshot()))
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_TOKEN_NOT_YET_VISIBLE),
				 errmsg("sync token " INT64_FORMAT " is not visible yet", token),
				 errdetail("The token is newer than this transaction's snapshot%s.",
						   RecoveryInProgress() ? " (a standby behind its primary)" : ""),
				 errhint("Retry the pull in a new transaction.")));
	if (token >= lineage && token < oldest)
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_TOKEN_EXPIRED),
				 errmsg("sync token " INT64_FORMAT " has expired", token),
				 errdetail("Changes older than the retention period are no longer kept."),
				 errhint("Reset the client: pull with last_pulled_at = null.")));
	ereport(ERROR,
			(errcode(ERRCODE_SYNC_TOKEN_UNKNOWN),
			 errmsg("sync token " INT64_FORMAT " was not issued by this database", token),
			 errhint("Reset the client: pull with last_pulled_at = null.")));
}

/*
 * Returns the current statement's snapshot as pg_snapshot text, and the
 * datum in *snap. Read-only SPI uses the caller's active snapshot, the same
 * one every later read-only query of the call sees.
 */
char *
sync_token_current_snapshot(Datum *snap)
{
	int			rc;
	bool		isnull;

	if (snapshot_plan == NULL)
		snapshot_plan = sync_prepare(
			"SELECT pg_catalog.pg_current_snapshot(), pg_catalog.pg_current_snapshot()::pg_catalog.text", 0, NULL);
	rc = SPI_execute_plan(snapshot_plan, NULL, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading the snapshot");
	*snap = datumCopy(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
					  false, -1);
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
}

/* Whether this transaction may write a checkpoint. */
static bool
can_write(void)
{
	return !RecoveryInProgress() && !XactReadOnly;
}

/* Inserts a checkpoint holding snap and returns its id. */
static int64
insert_checkpoint(Datum snap)
{
	Datum		args[1];
	int			rc;
	bool		isnull;

	if (insert_plan == NULL)
	{
		Oid			types[1] = {PG_SNAPSHOTOID};

		insert_plan = sync_prepare(
			"INSERT INTO _pg_sync.checkpoints (id, snap)"
			" VALUES (pg_catalog.nextval('_pg_sync.checkpoint_id'), $1) RETURNING id", 1, types);
	}
	args[0] = snap;
	rc = SPI_execute_plan(insert_plan, args, NULL, false, 1);
	sync_check_spi(rc, SPI_OK_INSERT_RETURNING, "recording a checkpoint");
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* A parsed pg_snapshot: xmin, xmax and the in-progress xids, ascending. */
typedef struct SnapInfo
{
	uint64		xmin;
	uint64		xmax;
	int			nxip;
	uint64	   *xip;
} SnapInfo;

/* Parses the text form "xmin:xmax:xip,xip,..." of a pg_snapshot. */
static void
parse_snapshot(const char *text, SnapInfo *si)
{
	const char *p = text;
	char	   *end;
	int			cap = 8;

	si->xmin = strtou64(p, &end, 10);
	p = end + 1;
	si->xmax = strtou64(p, &end, 10);
	p = end;
	si->nxip = 0;
	si->xip = palloc(sizeof(uint64) * cap);
	while (*p == ':' || *p == ',')
	{
		p++;
		if (*p == '\0')
			break;
		if (si->nxip == cap)
		{
			cap *= 2;
			si->xip = repalloc(si->xip, sizeof(uint64) * cap);
		}
		si->xip[si->nxip++] = strtou64(p, &end, 10);
		p = end;
	}
}

/* Whether xid is in the in-progress list of a parsed snapshot. */
static bool
snap_has_xip(SnapInfo *si, uint64 xid)
{
	int			i;

	for (i = 0; i < si->nxip; i++)
		if (si->xip[i] == xid)
			return true;
	return false;
}

/*
 * Whether every transaction visible in snapshot a is visible in snapshot b:
 * answering up to b after a neither skips nor repeats anything.
 */
static bool
snap_contains(const char *b_text, const char *a_text)
{
	SnapInfo	a,
				b;
	int			i;

	parse_snapshot(a_text, &a);
	parse_snapshot(b_text, &b);
	if (b.xmax < a.xmax)
		return false;
	/* a xid b still saw running must have been running (or unborn) for a too */
	for (i = 0; i < b.nxip; i++)
		if (b.xip[i] < a.xmax && !snap_has_xip(&a, b.xip[i]))
			return false;
	return true;
}

/*
 * The snapshot a checkpoint recorded by this transaction must hold. A
 * transaction's own xid is not in its snapshot's in-progress list, yet its
 * rows are not committed: a checkpoint that said "seen" would let the
 * transaction's later writes go unsent. So the own xid is added to the list.
 * Returns NULL when the transaction has no xid (nothing to change).
 */
static char *
snapshot_without_own_xid(const char *text)
{
	FullTransactionId own = GetTopFullTransactionIdIfAny();
	uint64		x = U64FromFullTransactionId(own);
	SnapInfo	si;
	StringInfoData buf;
	int			i;
	bool		added = false;

	if (!FullTransactionIdIsValid(own))
		return NULL;
	parse_snapshot(text, &si);
	if (x >= si.xmax || snap_has_xip(&si, x))
		return pstrdup(text);
	initStringInfo(&buf);
	appendStringInfo(&buf, UINT64_FORMAT ":" UINT64_FORMAT ":", Min(si.xmin, x), si.xmax);
	for (i = 0; i < si.nxip || !added; i++)
	{
		uint64		next;

		if (!added && (i == si.nxip || x < si.xip[i]))
		{
			next = x;			/* goes before xip[i] */
			added = true;
			i--;
		}
		else
			next = si.xip[i];
		appendStringInfo(&buf, "%s" UINT64_FORMAT, buf.data[buf.len - 1] == ':' ? "" : ",", next);
	}
	return buf.data;
}

/*
 * Chooses the checkpoint a pull answers up to, from the caller's token prev
 * and the current snapshot. The current snapshot is best (exact: every row
 * read belongs to it). The newest checkpoint is reused instead when it holds
 * the same snapshot, or when this transaction cannot write, or when it is
 * younger than interval_ms (pg_sync.checkpoint_interval) and the caller's own token is not
 * (a client pulling again at once -- after a push conflict, say -- must see
 * what committed since) -- but only if it contains everything prev had seen
 * (checkpoint ids do not follow snapshot order), else a new one is recorded,
 * or, read-only, prev is kept. *exact says whether the chosen checkpoint equals the snapshot the
 * rows are read in; *must_insert that the caller has to record it with
 * sync_token_record() (done last, after every read).
 */
void
sync_token_choose(SyncToken *prev, Datum cur_snap, const char *cur_text, int interval_ms,
				  SyncToken *out, bool *exact, bool *must_insert)
{
	Datum		args[1];
	int			rc;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	td;
	int64		newest_id;
	char	   *newest_text;
	bool		young;
	char	   *own_text = snapshot_without_own_xid(cur_text);
	bool		same,
				usable;

	if (newest_plan == NULL)
	{
		Oid			types[1] = {INT4OID};

		newest_plan = sync_prepare(
			"SELECT id, snap, snap::pg_catalog.text,"
			"       (pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) created_at)"
			"         OPERATOR(pg_catalog.<) ($1 OPERATOR(pg_catalog.*) interval '1 ms')"
			"  FROM _pg_sync.checkpoints ORDER BY id DESC LIMIT 1", 1, types);
	}
	args[0] = Int32GetDatum(interval_ms);
	rc = SPI_execute_plan(newest_plan, args, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading the newest checkpoint");
	*must_insert = false;
	memset(out, 0, sizeof(*out));

	if (SPI_processed == 1)
	{
		tup = SPI_tuptable->vals[0];
		td = SPI_tuptable->tupdesc;
		newest_id = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
		newest_text = SPI_getvalue(tup, td, 3);
		young = DatumGetBool(SPI_getbinval(tup, td, 4, &isnull));
		same = strcmp(newest_text, own_text ? own_text : cur_text) == 0;
		usable = prev->id == 0 || newest_id == prev->id ||
			snap_contains(newest_text, prev->snap_text);
		if (usable && (same || !can_write() || (young && !prev->young && prev->id != newest_id)))
		{
			out->id = newest_id;
			out->snap = datumCopy(SPI_getbinval(tup, td, 2, &isnull), false, -1);
			out->snap_text = newest_text;
			*exact = same && own_text == NULL;
			return;
		}
	}
	if (!can_write())
	{
		/* read-only: nothing newer that contains the caller's view */
		if (prev->id == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no sync checkpoint exists yet"),
					 errhint("Call sync_checkpoint() on the primary.")));
		*out = *prev;
		*exact = false;
		return;
	}
	*must_insert = true;
	if (own_text)
	{
		out->snap_text = own_text;
		out->snap = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(own_text));
		*exact = false;
	}
	else
	{
		out->snap = cur_snap;
		out->snap_text = pstrdup(cur_text);
		*exact = true;
	}
}

/* Records the checkpoint chosen by sync_token_choose and sets its id. */
void
sync_token_record(SyncToken *tok)
{
	tok->id = insert_checkpoint(tok->snap);
}

/* SQL: records a checkpoint of the current snapshot unless the newest is the same. */
Datum
sync_checkpoint(PG_FUNCTION_ARGS)
{
	SyncOwnerCtx owner_ctx;
	Datum		snap;
	char	   *text;
	SyncToken	none = {0};
	SyncToken	tok;
	bool		exact,
				must_insert;

	if (!can_write())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("sync_checkpoint() cannot run in a read-only transaction")));
	SPI_connect();
	sync_owner_enter(&owner_ctx);
	text = sync_token_current_snapshot(&snap);
	/* interval 0: reuse the newest checkpoint only if it is the same snapshot */
	sync_token_choose(&none, snap, text, 0, &tok, &exact, &must_insert);
	if (must_insert)
		sync_token_record(&tok);
	sync_owner_leave(&owner_ctx);
	SPI_finish();
	PG_RETURN_INT64(tok.id);
}
