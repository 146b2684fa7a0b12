/*
 * token.c — tokens are checkpoint ids. A checkpoint records a snapshot; a
 * pull returns the changes whose writer is visible in the new checkpoint but
 * was not in the caller's, so a late commit is never skipped and a long
 * writer never holds anyone back.
 *
 * Here: resolving a client's token (or refusing it with the SQLSTATE that
 * tells the client what to do), the current snapshot of a call, the newest
 * recorded checkpoint, recording one, snapshot arithmetic (visibility,
 * containment), and the xmin horizon retention must stay behind. Queries run
 * inside SPI as the extension owner.
 */
#include "pg_sync.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

static SPIPlanPtr bounds_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr timeline_read_plan = NULL;
static SPIPlanPtr timeline_lock_plan = NULL;
static SPIPlanPtr timeline_set_plan = NULL;
static SPIPlanPtr timeline_jump_plan = NULL;

/* the WAL timeline this backend last found in _pg_sync.state (0: none yet) */
static TimeLineID timeline_checked = 0;

PG_FUNCTION_INFO_V1(sync_checkpoint);
PG_FUNCTION_INFO_V1(sync_oldest_xmin);

/* --- snapshots ------------------------------------------------------------ */

/* Parses the text form "xmin:xmax:xip,xip,..." of a pg_snapshot. */
void
sync_snap_parse(const char *text, SyncSnap *si)
{
	const char *p = text;
	char	   *end;
	int			cap = 8;

	si->xmin = strtoull(p, &end, 10);
	p = end + 1;
	si->xmax = strtoull(p, &end, 10);
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
		si->xip[si->nxip++] = strtoull(p, &end, 10);
		p = end;
	}
}

/* Whether xid is in the in-progress list of a parsed snapshot (sorted). */
static bool
snap_has_xip(const SyncSnap *si, uint64 xid)
{
	int			lo = 0,
				hi = si->nxip - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;

		if (si->xip[mid] == xid)
			return true;
		if (si->xip[mid] < xid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return false;
}

/* pg_visible_in_snapshot(xid, snapshot), on a parsed snapshot. */
bool
sync_snap_visible(const SyncSnap *si, uint64 xid)
{
	if (xid < si->xmin)
		return true;
	if (xid >= si->xmax)
		return false;
	return !snap_has_xip(si, xid);
}

/*
 * Whether every transaction visible in snapshot a is visible in snapshot b:
 * answering up to b after a neither skips nor repeats anything.
 */
bool
sync_snap_contains(const SyncSnap *b, const SyncSnap *a)
{
	int			i;

	if (b->xmax < a->xmax)
		return false;
	/* a xid b still saw running must have been running (or unborn) for a too */
	for (i = 0; i < b->nxip; i++)
		if (b->xip[i] < a->xmax && !snap_has_xip(a, b->xip[i]))
			return false;
	return true;
}

/*
 * Whether a checkpoint recorded at created_at is too old to be handed out
 * again (pg_sync.token_refresh): a device that keeps pulling must never
 * hold a token retention would remove, even when nothing changes for it.
 */
static bool
is_stale(Datum created_at)
{
	TimestampTz now = GetCurrentTimestamp();

	return TimestampDifferenceExceeds(DatumGetTimestampTz(created_at), now,
									  sync_token_refresh_ms);
}

/* Fills a token from a snapshot datum and its text. */
static void
token_set(SyncToken *tok, int64 id, Datum snap, char *text)
{
	tok->id = id;
	tok->snap = snap;
	tok->snap_text = text;
	sync_snap_parse(text, &tok->parsed);
}

/* --- resolving a client's token ------------------------------------------ */

static void resolve_not_checkpoint(int64 token, SyncToken *out, bool *expired);

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
 * The checkpoints are read without SQL, in the snapshot a read-only query of
 * the call reads in (the active one), through the table's primary key.
 */

/* Fills a token from a row of _pg_sync.checkpoints. */
static void
checkpoint_token(Relation rel, HeapTuple tup, SyncToken *out)
{
	TupleDesc	td = RelationGetDescr(rel);
	bool		isnull;
	Datum		id = heap_getattr(tup, sync_internal_attnum(rel, "id", false), td, &isnull);
	Datum		snap = heap_getattr(tup, sync_internal_attnum(rel, "snap", false), td, &isnull);
	Datum		created_at = heap_getattr(tup, sync_internal_attnum(rel, "created_at", false), td, &isnull);

	snap = PointerGetDatum(PG_DETOAST_DATUM_COPY(snap));
	token_set(out, DatumGetInt64(id), snap, DatumGetCString(DirectFunctionCall1(pg_snapshot_out, snap)));
	out->stale = is_stale(created_at);
}

/*
 * Reads one checkpoint through the primary key: the one with id token, or
 * the newest (token 0); false when there is none.
 */
static bool
read_checkpoint(int64 token, SyncToken *out)
{
	Relation	rel = sync_internal_open("checkpoints");
	Relation	irel = sync_internal_index(rel, NULL, false);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (token != 0)
		ScanKeyInit(&key, sync_internal_attnum(rel, "id", false), BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum(token));
	scan = systable_beginscan_ordered(rel, irel, GetActiveSnapshot(), token != 0 ? 1 : 0, &key);
	if ((tup = systable_getnext_ordered(scan, BackwardScanDirection)) != NULL)
	{
		checkpoint_token(rel, tup, out);
		found = true;
	}
	systable_endscan_ordered(scan);
	index_close(irel, NoLock);
	table_close(rel, NoLock);
	return found;
}

/* Finds a token's checkpoint; false (no error) when there is none. */
bool
sync_token_find(int64 token, SyncToken *out)
{
	memset(out, 0, sizeof(*out));
	if (token <= 0 || token > SYNC_MAX_TOKEN)
		return false;
	return read_checkpoint(token, out);
}

/*
 * Resolves a client token to its checkpoint, or refuses it:
 * - SY002 (expired) for a checkpoint sync_prune removed;
 * - SY003 (never issued) for anything else this database did not record;
 * - SY004 (retry) where the answer cannot be known yet: on a hot standby that
 *   may not have replayed the checkpoint, or in a REPEATABLE READ transaction
 *   older than it. Checkpoint ids do not follow commit order, so a missing id
 *   below the newest visible one may still be a real checkpoint that commits
 *   later; the primary in READ COMMITTED always knows.
 */
void
sync_token_resolve(int64 token, SyncToken *out, bool *expired)
{
	SyncOwnerCtx owner_ctx;

	check_range(token);
	memset(out, 0, sizeof(*out));
	if (token == 0)
		return;

	if (expired)
		*expired = false;
	if (sync_token_find(token, out))
		return;
	/* a page token, or a token refused: read by SQL, as the owner */
	sync_owner_enter(&owner_ctx);
	resolve_not_checkpoint(token, out, expired);
	sync_owner_leave(&owner_ctx);
}

/* sync_token_resolve() of a token that names no checkpoint. As the owner. */
static void
resolve_not_checkpoint(int64 token, SyncToken *out, bool *expired)
{
	int			rc;
	bool		isnull;
	int64		lineage,
				pruned_max,
				newest;
	bool		uncertain;

	if ((out->page = sync_page_find(token, false)) != NULL)
	{
		/*
		 * A page token: as far as a push is concerned, the client has seen
		 * what its token before the paged pull said (pages it applied since
		 * only make later conflicts look like conflicts: never one missed).
		 */
		SyncPage   *page = out->page;

		out->id = token;
		if (page->prev_id != 0)
		{
			out->snap = page->prev_snap;
			out->snap_text = page->prev_text;
		}
		else
		{
			out->snap_text = pstrdup("1:1:");
			out->snap = DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(out->snap_text));
			out->sees_nothing = true;
		}
		sync_snap_parse(out->snap_text, &out->parsed);
		return;
	}
	if (bounds_plan == NULL)
	{
		/* (pruned_max through to_jsonb: the query also runs on an 0.1 schema) */
		bounds_plan = sync_prepare(
			"SELECT s.lineage_start,"
			"       coalesce((pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.->>) 'pruned_max')::pg_catalog.int8,"
			"                s.lineage_start OPERATOR(pg_catalog.-) 1),"
			"       (SELECT pg_catalog.max(id) FROM _pg_sync.checkpoints)"
			"  FROM _pg_sync.state s", 0, NULL);
	}
	rc = SPI_execute_plan(bounds_plan, NULL, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading token bounds");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("pg_sync state is missing"),
				 errhint("Recreate the extension.")));
	lineage = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	pruned_max = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	newest = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	if (isnull)
		newest = lineage;

	uncertain = RecoveryInProgress() || IsolationUsesXactSnapshot();
	if (uncertain && token >= lineage && token <= newest + SYNC_TOKEN_LOOKAHEAD)
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_TOKEN_NOT_YET_VISIBLE),
				 errmsg("sync token " INT64_FORMAT " is not visible yet", token),
				 errdetail("%s cannot tell a checkpoint it has not seen yet from one that was removed.",
						   RecoveryInProgress() ? "A hot standby" : "A REPEATABLE READ transaction"),
				 errhint("Retry the pull in a new READ COMMITTED transaction on the primary.")));
	if (token >= lineage && token <= pruned_max)
	{
		if (expired)
		{
			*expired = true;
			return;
		}
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_TOKEN_EXPIRED),
				 errmsg("sync token " INT64_FORMAT " has expired", token),
				 errdetail("Changes older than the retention period are no longer kept."),
				 errhint("Reset the client: pull with last_pulled_at = null.")));
	}
	ereport(ERROR,
			(errcode(ERRCODE_SYNC_TOKEN_UNKNOWN),
			 errmsg("sync token " INT64_FORMAT " was not issued by this database", token),
			 errhint("Reset the client: pull with last_pulled_at = null.")));
}

/* --- the current snapshot and checkpoints -------------------------------- */

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
	SyncSnap	si;
	StringInfoData buf;
	int			i;
	bool		added = false;

	if (!FullTransactionIdIsValid(own))
		return NULL;
	sync_snap_parse(text, &si);
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
 * The snapshot this call reads in, as an unrecorded token (id 0). Read-only
 * SPI uses the caller's active snapshot, the one every later read-only query
 * of the call sees. Returns true when the token is exactly that snapshot;
 * false when the transaction has written and its own xid had to be marked as
 * not yet seen (its rows are read, but must not count as delivered).
 */
bool
sync_token_current(SyncToken *out)
{
	LOCAL_FCINFO(fcinfo, 0);
	Datum		snap;
	char	   *text;
	char	   *own;

	/* pg_current_snapshot() reads the active snapshot, as a read-only query would */
	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	snap = pg_current_snapshot(fcinfo);
	text = DatumGetCString(DirectFunctionCall1(pg_snapshot_out, snap));
	own = snapshot_without_own_xid(text);
	memset(out, 0, sizeof(*out));
	if (own == NULL)
	{
		token_set(out, 0, snap, text);
		return true;
	}
	token_set(out, 0, DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(own)), own);
	return false;
}

/* The newest checkpoint this call can see; false when there is none. */
bool
sync_token_newest(SyncToken *out)
{
	memset(out, 0, sizeof(*out));
	return read_checkpoint(0, out);
}

/* Whether this transaction may record a checkpoint. */
bool
sync_token_can_record(void)
{
	return !RecoveryInProgress() && !XactReadOnly;
}

/*
 * The timeline of this server's WAL. Only once recovery is over: the caller
 * has seen RecoveryInProgress() return false (which, before 15, also set
 * ThisTimeLineID).
 */
static TimeLineID
wal_timeline(void)
{
#if PG_VERSION_NUM >= 150000
	return GetWALInsertionTimeLine();
#else
	return ThisTimeLineID;
#endif
}

/* _pg_sync.state's timeline (false when it has none), by a prepared plan */
static bool
read_state_timeline(SPIPlanPtr plan, bool read_only, int64 *out)
{
	int			rc;
	bool		isnull = true;

	rc = SPI_execute_plan(plan, NULL, NULL, read_only, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading the timeline of the checkpoints");
	if (SPI_processed == 1)
		*out = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return !isnull;
}

/*
 * Called before an id of the checkpoint sequence is handed out (a checkpoint,
 * a page token). As the owner, inside SPI.
 *
 * An id must never be handed out twice: a client holding a token whose id
 * later names another checkpoint would be answered from that one's snapshot
 * and skip what committed in between. A standby promoted to primary (a
 * failover, the end of a point-in-time recovery) may not have received the
 * WAL of the last ids its old primary handed out, and its sequence would hand
 * them out again. Promotion starts a new WAL timeline; the first id handed out
 * on one moves the sequence SYNC_TIMELINE_JUMP past where it stands, beyond
 * any id the old timeline can have handed out unreplicated. A token of those
 * then names no checkpoint, is above every pruned id, and is refused as never
 * issued (SY003: the client resyncs, as it must after losing writes).
 *
 * Once per backend and timeline this is one unlocked read of the state row;
 * only on a new timeline is the row locked, so that one caller moves the
 * sequence and records the timeline.
 */
void
sync_token_check_timeline(void)
{
	TimeLineID	tli;
	int64		old;
	bool		had;
	Datum		arg[1];
	int			rc;

	if (RecoveryInProgress())
		return;					/* nothing is handed out on a standby */
	tli = wal_timeline();
	if (tli == timeline_checked || !sync_schema_02())
		return;					/* (an 0.1 schema, not updated yet, has no timeline) */
	if (timeline_read_plan == NULL)
	{
		Oid			types[1] = {INT8OID};

		timeline_read_plan = sync_prepare("SELECT timeline FROM _pg_sync.state", 0, NULL);
		timeline_lock_plan = sync_prepare("SELECT timeline FROM _pg_sync.state FOR UPDATE", 0, NULL);
		timeline_set_plan = sync_prepare("UPDATE _pg_sync.state SET timeline = $1", 1, types);
		timeline_jump_plan = sync_prepare(
			"SELECT pg_catalog.setval('_pg_sync.checkpoint_id',"
			" pg_catalog.nextval('_pg_sync.checkpoint_id') OPERATOR(pg_catalog.+) $1)", 1, types);
	}
	if (read_state_timeline(timeline_read_plan, true, &old) && old == (int64) tli)
	{
		timeline_checked = tli;
		return;
	}
	/* a new timeline (or none recorded): one caller at a time */
	had = read_state_timeline(timeline_lock_plan, false, &old);
	if (!(had && old == (int64) tli))
	{
		if (had)
		{
			arg[0] = Int64GetDatum(SYNC_TIMELINE_JUMP);
			rc = SPI_execute_plan(timeline_jump_plan, arg, NULL, false, 1);
			sync_check_spi(rc, SPI_OK_SELECT, "moving the checkpoint ids past the old timeline's");
			ereport(LOG,
					(errmsg("pg_sync: WAL timeline %u follows %u: checkpoint ids now start above any the old timeline can have handed out",
							tli, (TimeLineID) old)));
		}
		arg[0] = Int64GetDatum((int64) tli);
		rc = SPI_execute_plan(timeline_set_plan, arg, NULL, false, 0);
		sync_check_spi(rc, SPI_OK_UPDATE, "recording the timeline of the checkpoints");
	}
	timeline_checked = tli;
}

/*
 * The next id of the checkpoint sequence (checkpoints, page tokens). As the
 * owner, after sync_token_check_timeline().
 *
 * nextval() WAL-logs the sequence's position only every few values, ahead
 * of the values it hands out, and the record reaches disk with the commit of
 * the transaction that wrote it. A transaction that does not wait for its
 * commit (synchronous_commit = off, or a lazy checkpoint below) could lose
 * that record in a crash, and the sequence would then hand out again ids
 * that clients hold. So when nextval() wrote WAL, the WAL is flushed before
 * the id is used: every id handed out lies below a position on disk.
 */
int64
sync_token_next_id(void)
{
	Oid			seq = sync_internal_relid("checkpoint_id");
	XLogRecPtr	before = XactLastRecEnd;
	int64		id;

	if (!OidIsValid(seq))
		sync_not_installed();
	id = nextval_internal(seq, true);
	if (XactLastRecEnd != before)
		XLogFlush(XactLastRecEnd);
	return id;
}

/*
 * Lazy checkpoints. A pull that records a checkpoint, in a transaction that
 * had written nothing before and writes no WAL after, commits without
 * waiting for its WAL flush (as with synchronous_commit = off), unless
 * pg_sync.durable_checkpoints is on. What a crash can then lose is only
 * checkpoints, never a row: every write the checkpoint saw committed before
 * it, earlier in the WAL. A lost checkpoint's id is never handed out again
 * (sync_token_next_id), so its token names no checkpoint and is refused as
 * never issued (SY003), as after a failover; the client resyncs.
 *
 * lazy_armed: this transaction recorded such a checkpoint; lazy_end: the end
 * of its WAL, which must still be the end of the transaction's WAL when it
 * commits. That is checked at PRE_COMMIT, after deferred triggers have run;
 * what PostgreSQL itself does between there and the commit record writes no
 * WAL that needs the flush (relations created in the transaction would
 * have written WAL earlier). A PRE_COMMIT callback of another library that
 * runs after this one and writes WAL would commit lazily too.
 */
static bool lazy_armed = false;
static XLogRecPtr lazy_end = InvalidXLogRecPtr;
static bool lazy_registered = false;

static void
lazy_commit_callback(XactEvent event, void *arg)
{
	if (!lazy_armed)
		return;
	if (event == XACT_EVENT_PRE_COMMIT && XactLastRecEnd == lazy_end && !sync_durable_checkpoints)
		(void) set_config_option("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, ERROR, false);
	if (event != XACT_EVENT_PARALLEL_PRE_COMMIT)
		lazy_armed = false;
}

/* Records an unrecorded token's snapshot as a new checkpoint and sets its id. */
void
sync_token_record(SyncToken *tok)
{
	Datum		args[2];
	int			rc;
	bool		lazy;

	sync_token_check_timeline();

	/* nothing written before: the checkpoint may be lazy (see above) */
	lazy = !sync_durable_checkpoints && !FullTransactionIdIsValid(GetTopFullTransactionIdIfAny());
	if (insert_plan == NULL)
	{
		Oid			types[2] = {INT8OID, PG_SNAPSHOTOID};

		insert_plan = sync_prepare("INSERT INTO _pg_sync.checkpoints (id, snap) VALUES ($1, $2)", 2, types);
	}
	tok->id = sync_token_next_id();
	args[0] = Int64GetDatum(tok->id);
	args[1] = tok->snap;
	rc = SPI_execute_plan(insert_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "recording a checkpoint");
	if (lazy)
	{
		if (!lazy_registered)
		{
			RegisterXactCallback(lazy_commit_callback, NULL);
			lazy_registered = true;
		}
		lazy_armed = true;
		lazy_end = XactLastRecEnd;
	}
}

/* SQL: records a checkpoint of the current snapshot unless the newest is the same. */
Datum
sync_checkpoint(PG_FUNCTION_ARGS)
{
	SyncOwnerCtx owner_ctx;
	SyncToken	cur,
				newest;
	int64		id;

	if (!sync_token_can_record())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("sync_checkpoint() cannot run in a read-only transaction")));
	SPI_connect();
	sync_owner_enter(&owner_ctx);
	sync_token_current(&cur);
	if (sync_token_newest(&newest) && strcmp(newest.snap_text, cur.snap_text) == 0)
		id = newest.id;
	else
	{
		sync_token_record(&cur);
		id = cur.id;
	}
	sync_owner_leave(&owner_ctx);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* --- retention ------------------------------------------------------------ */

/*
 * SQL: _pg_sync.oldest_xmin() — the oldest xid any running transaction may
 * still see as running (the xmin horizon over all databases, prepared
 * transactions and replication slots included). Every snapshot that exists
 * now or is taken later, and so every checkpoint recorded from now on, sees
 * all transactions below it as finished. sync_prune keeps the change records
 * above it.
 */
Datum
sync_oldest_xmin(PG_FUNCTION_ARGS)
{
	TransactionId xid = GetOldestNonRemovableTransactionId(NULL);
	FullTransactionId next = ReadNextFullTransactionId();
	uint32		epoch = EpochFromFullTransactionId(next);

	if (!TransactionIdIsNormal(xid))
		PG_RETURN_FULLTRANSACTIONID(FullTransactionIdFromU64(0));
	/* the horizon is at most 2^31 xids behind the next xid */
	if (xid > XidFromFullTransactionId(next))
		epoch--;
	PG_RETURN_FULLTRANSACTIONID(FullTransactionIdFromEpochAndXid(epoch, xid));
}
