/*
 * devices.c — the devices of a user and the push ledger.
 *
 * A pull or push that names its device (client_id) is refused when the user
 * deactivated that device, and, in a transaction that may write, recorded:
 * first seen, last pull (time and the token it returned), last push,
 * counters. An idle device polling for nothing writes nothing: its row is
 * rewritten only when the token it gets changes, or at most once a minute.
 * A push that carries a push_id is applied once: the first one claims the
 * id in the ledger in its own transaction and stores its result there; the
 * same push again — later, or concurrently (it waits for the first) —
 * returns that result and applies nothing.
 *
 * Also the SQL functions that read them: sync_status() and _pg_sync.caller().
 * Everything here runs inside SPI, as the extension owner.
 */
#include "pg_sync.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

PG_FUNCTION_INFO_V1(sync_caller);
PG_FUNCTION_INFO_V1(sync_status);

static SPIPlanPtr device_plan = NULL;
static SPIPlanPtr device_lock_plan = NULL;
static SPIPlanPtr last_pull_plan = NULL;
static SPIPlanPtr first_pull_plan = NULL;
static SPIPlanPtr pulled_plan = NULL;
static SPIPlanPtr pushed_plan = NULL;
static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr claimed_plan = NULL;
static SPIPlanPtr store_plan = NULL;

/* Checks a client_id or push_id: 1 to SYNC_MAX_ID_LEN bytes (SQLSTATE 22023). */
void
sync_check_device_id(const char *what, const char *id)
{
	size_t		len = strlen(id);

	if (len == 0 || len > SYNC_MAX_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be 1 to %d bytes long", what, SYNC_MAX_ID_LEN)));
}

/*
 * Looks a device up (user NULL: the caller has no user id) and refuses a
 * deactivated one with SY005 before anything is read or written for it.
 */
void
sync_device_open(SyncDevice *dev, const char *user, const char *client_id, bool for_push)
{
	Datum		args[2];
	int			rc;
	bool		isnull;
	SyncOwnerCtx owner_ctx;

	memset(dev, 0, sizeof(*dev));
	dev->user = user ? user : "";
	dev->client_id = client_id;
	if (client_id == NULL)
		return;
	sync_check_device_id("client_id", client_id);

	sync_owner_enter(&owner_ctx);
	if (device_plan == NULL)
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		const char *q =
			"SELECT active FROM _pg_sync.clients"
			" WHERE user_id OPERATOR(pg_catalog.=) $1 AND client_id OPERATOR(pg_catalog.=) $2";

		device_plan = sync_prepare(q, 2, types);
		device_lock_plan = sync_prepare(psprintf("%s FOR SHARE", q), 2, types);
		/* (the unlogged record of pulls: only on the primary) */
		last_pull_plan = sync_prepare(
			"SELECT last_token,"
			"       last_pull_at OPERATOR(pg_catalog.<)"
			"         (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 minute')"
			"  FROM _pg_sync.client_pulls"
			" WHERE user_id OPERATOR(pg_catalog.=) $1 AND client_id OPERATOR(pg_catalog.=) $2", 2, types);
	}
	args[0] = CStringGetTextDatum(dev->user);
	args[1] = CStringGetTextDatum(client_id);
	/*
	 * A push holds the device's row shared until it ends: a deactivation
	 * waits for the push, and a push waits for a deactivation in progress
	 * and then sees it. (A pull only reads: polling must not write.)
	 */
	if (for_push)
		rc = SPI_execute_plan(device_lock_plan, args, NULL, false, 1);
	else
		rc = SPI_execute_plan(device_plan, args, NULL, true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading a device");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	td = SPI_tuptable->tupdesc;

		dev->exists = true;
		dev->active = DatumGetBool(SPI_getbinval(tup, td, 1, &isnull));
		dev->pull_stale = true;
		if (!for_push && sync_token_can_record())
		{
			rc = SPI_execute_plan(last_pull_plan, args, NULL, true, 1);
			sync_check_spi(rc, SPI_OK_SELECT, "reading a device");
			if (SPI_processed == 1)
			{
				tup = SPI_tuptable->vals[0];
				td = SPI_tuptable->tupdesc;
				dev->last_token = DatumGetInt64(SPI_getbinval(tup, td, 1, &isnull));
				dev->pull_stale = DatumGetBool(SPI_getbinval(tup, td, 2, &isnull));
			}
		}
	}
	sync_owner_leave(&owner_ctx);

	if (dev->exists && !dev->active)
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_DEVICE_INACTIVE),
				 errmsg("device \"%s\" is deactivated", client_id),
				 errhint("Its user can activate it again with sync_activate_client().")));
}

/* Records a pull of a named device that answered with token (when this transaction may write). */
void
sync_device_pulled(SyncDevice *dev, int64 token)
{
	Datum		args[3];
	int			rc;
	SyncOwnerCtx owner_ctx;
	Oid			types[3] = {TEXTOID, TEXTOID, INT8OID};

	if (dev->client_id == NULL || !sync_token_can_record())
		return;
	/* nothing new to say: an idle device polling writes nothing */
	if (dev->exists && dev->last_token == token && !dev->pull_stale)
		return;

	sync_owner_enter(&owner_ctx);
	args[0] = CStringGetTextDatum(dev->user);
	args[1] = CStringGetTextDatum(dev->client_id);
	args[2] = Int64GetDatum(token);
	if (!dev->exists)
	{
		if (first_pull_plan == NULL)
			first_pull_plan = sync_prepare(
				"INSERT INTO _pg_sync.clients (user_id, client_id) VALUES ($1, $2)"
				" ON CONFLICT (user_id, client_id) DO NOTHING", 2, types);
		rc = SPI_execute_plan(first_pull_plan, args, NULL, false, 0);
		sync_check_spi(rc, SPI_OK_INSERT, "recording a device");
	}
	/* (unlogged: a pull that writes nothing else does not wait for a WAL flush) */
	if (pulled_plan == NULL)
		pulled_plan = sync_prepare(
			"INSERT INTO _pg_sync.client_pulls AS p (user_id, client_id, last_pull_at, last_token)"
			" VALUES ($1, $2, pg_catalog.now(), $3)"
			" ON CONFLICT (user_id, client_id) DO UPDATE"
			"   SET last_pull_at = excluded.last_pull_at, last_token = excluded.last_token", 3, types);
	rc = SPI_execute_plan(pulled_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "recording a pull");
	sync_owner_leave(&owner_ctx);
}

/*
 * Records a push of a named device: records written or rejected, conflicts
 * a policy settled, and per table (a JSON object by table id).
 */
void
sync_device_pushed(SyncDevice *dev, int64 records, int64 conflicts, int64 rejected,
				   const char *per_table)
{
	Datum		args[6];
	int			rc;
	SyncOwnerCtx owner_ctx;

	if (dev->client_id == NULL)
		return;
	sync_owner_enter(&owner_ctx);
	if (pushed_plan == NULL)
	{
		Oid			types[6] = {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, JSONBOID};

		pushed_plan = sync_prepare(
			"INSERT INTO _pg_sync.clients AS c (user_id, client_id, last_push_at, pushes,"
			"                                   records_pushed, conflicts, rejected, per_table)"
			" VALUES ($1, $2, pg_catalog.now(), 1, $3, $4, $5, $6)"
			" ON CONFLICT (user_id, client_id) DO UPDATE"
			"   SET last_push_at = excluded.last_push_at,"
			"       pushes = c.pushes OPERATOR(pg_catalog.+) 1,"
			"       records_pushed = c.records_pushed OPERATOR(pg_catalog.+) excluded.records_pushed,"
			"       conflicts = c.conflicts OPERATOR(pg_catalog.+) excluded.conflicts,"
			"       rejected = c.rejected OPERATOR(pg_catalog.+) excluded.rejected,"
			"       per_table = _pg_sync.add_counts(c.per_table, excluded.per_table)", 6, types);
	}
	args[0] = CStringGetTextDatum(dev->user);
	args[1] = CStringGetTextDatum(dev->client_id);
	args[2] = Int64GetDatum(records);
	args[3] = Int64GetDatum(conflicts);
	args[4] = Int64GetDatum(rejected);
	args[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(per_table));
	rc = SPI_execute_plan(pushed_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "recording a push");
	sync_owner_leave(&owner_ctx);
}

/*
 * Claims a push_id for this push. Returns NULL when this push is the first
 * with the id (it goes on, and sync_ledger_store() keeps its result), or the
 * stored result of the push that had it (applied already: return that). A
 * concurrent push with the same id waits here until the first one ends. The
 * same id with another document is refused (SY006).
 */
char *
sync_ledger_claim(SyncDevice *dev, const char *push_id, text *doc)
{
	Datum		args[4];
	int			rc;
	bool		isnull;
	char	   *result = NULL;
	SyncOwnerCtx owner_ctx;
	Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID};

	sync_check_device_id("push_id", push_id);
	if (!sync_token_can_record())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("a push with a push_id cannot run in a read-only transaction")));
	sync_owner_enter(&owner_ctx);
	if (claim_plan == NULL)
	{
		claim_plan = sync_prepare(
			"INSERT INTO _pg_sync.push_ledger (user_id, client_id, push_id, payload_hash)"
			" VALUES ($1, $2, $3, pg_catalog.sha256(pg_catalog.textsend($4)))"
			" ON CONFLICT (user_id, client_id, push_id) DO NOTHING", 4, types);
		claimed_plan = sync_prepare(
			"SELECT payload_hash OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.textsend($4)),"
			"       result::pg_catalog.text"
			"  FROM _pg_sync.push_ledger"
			" WHERE user_id OPERATOR(pg_catalog.=) $1 AND client_id OPERATOR(pg_catalog.=) $2"
			"   AND push_id OPERATOR(pg_catalog.=) $3", 4, types);
	}
	args[0] = CStringGetTextDatum(dev->user);
	args[1] = CStringGetTextDatum(dev->client_id ? dev->client_id : "");
	args[2] = CStringGetTextDatum(push_id);
	args[3] = PointerGetDatum(doc);
	rc = SPI_execute_plan(claim_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "claiming a push id");
	if (SPI_processed == 0)
	{
		/* a fresh snapshot (read-write SPI) sees the push that has the id */
		rc = SPI_execute_plan(claimed_plan, args, NULL, false, 1);
		sync_check_spi(rc, SPI_OK_SELECT, "reading a push id");
		if (SPI_processed != 1)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("push \"%s\" was applied by a transaction this one cannot see", push_id),
					 errhint("Retry in a new READ COMMITTED transaction.")));
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_SYNC_PUSH_ID_REUSED),
					 errmsg("push \"%s\" was already applied with other changes", push_id),
					 errdetail("A push_id names one push: a retry must carry the same document."),
					 errhint("Use a new push_id for new changes.")));
		result = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		if (result == NULL)
			elog(ERROR, "pg_sync: push \"%s\" has no stored result", push_id);
	}
	sync_owner_leave(&owner_ctx);
	return result;
}

/* Keeps the result of the push that claimed push_id. */
void
sync_ledger_store(SyncDevice *dev, const char *push_id, const char *result)
{
	Datum		args[4];
	int			rc;
	SyncOwnerCtx owner_ctx;

	sync_owner_enter(&owner_ctx);
	if (store_plan == NULL)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, TEXTOID, JSONOID};

		store_plan = sync_prepare(
			"UPDATE _pg_sync.push_ledger SET result = $4"
			" WHERE user_id OPERATOR(pg_catalog.=) $1 AND client_id OPERATOR(pg_catalog.=) $2"
			"   AND push_id OPERATOR(pg_catalog.=) $3", 4, types);
	}
	args[0] = CStringGetTextDatum(dev->user);
	args[1] = CStringGetTextDatum(dev->client_id ? dev->client_id : "");
	args[2] = CStringGetTextDatum(push_id);
	args[3] = CStringGetTextDatum(result);
	rc = SPI_execute_plan(store_plan, args, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_UPDATE, "storing a push result");
	sync_owner_leave(&owner_ctx);
}

/* The calling user's id from the claims; 28000 when there is none. */
static char *
caller_user(void)
{
	char	   *user = sync_current_user_id(NULL);

	if (user == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("no user id was given"),
				 errdetail("Claim \"%s\" of request.jwt.claims is missing.", sync_user_claim)));
	return user;
}

/* SQL: _pg_sync.caller() — the calling user's id, for the SQL functions on devices. */
Datum
sync_caller(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(caller_user()));
}

/* Appends ,"key":value to a JSON object being built (value already JSON; NULL: null). */
static void
add_key(StringInfo buf, const char *key, const char *json)
{
	appendStringInfoChar(buf, ',');
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	appendStringInfoString(buf, json ? json : "null");
}

/*
 * How many change records in the caller's scope the token has not seen: per
 * registered table, an index range over the change records from the token's
 * xmin. NULL (-1) when the token is no longer (or never was) valid.
 */
static int64
pending_changes(const char *user, int64 token)
{
	SyncToken	tok;
	List	   *tables;
	ListCell   *lc;
	int64		total = 0;
	static SPIPlanPtr count_plan = NULL;
	SyncOwnerCtx owner_ctx;

	sync_owner_enter(&owner_ctx);
	if (!sync_token_find(token, &tok))
	{
		/* a page of a paged pull: what the pull's token had not seen */
		SyncPage   *page = sync_page_find(token, false);

		if (page == NULL || page->prev_id == 0 || !sync_token_find(page->prev_id, &tok))
		{
			sync_owner_leave(&owner_ctx);
			return -1;
		}
	}
	tables = sync_registry_load(&tok, AccessShareLock, NIL);
	if (count_plan == NULL)
	{
		Oid			types[3] = {INT4OID, TEXTOID, PG_SNAPSHOTOID};

		count_plan = sync_prepare(
			"SELECT pg_catalog.count(*) FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND xid OPERATOR(pg_catalog.>=) pg_catalog.pg_snapshot_xmin($3)"
			"   AND NOT pg_catalog.pg_visible_in_snapshot(xid, $3)", 3, types);
	}
	sync_owner_leave(&owner_ctx);

	foreach(lc, tables)
	{
		SyncTableRef *ref = lfirst(lc);
		const char *scope;
		Datum		args[3];
		bool		isnull;
		int			rc;

		if (ref->vanished)
			continue;
		/* (read with the caller's rights: the owner column's type is the table's) */
		scope = ref->desc->owner >= 0 ? sync_owner_text(ref->desc, user) : "";
		sync_owner_enter(&owner_ctx);
		args[0] = Int32GetDatum(ref->desc->table_id);
		args[1] = CStringGetTextDatum(scope);
		args[2] = tok.snap;
		rc = SPI_execute_plan(count_plan, args, NULL, true, 1);
		sync_check_spi(rc, SPI_OK_SELECT, "counting pending changes");
		total += DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		sync_owner_leave(&owner_ctx);
	}
	return total;
}

/*
 * SQL: sync_status(client_id) — what a sync status screen shows, for the
 * calling user: {"user_id", "devices", "open_conflicts", "last_pull_at",
 * "last_push_at", "pending_changes"}; with a client_id, that device's last
 * pull and push and how many changed records its last token has not seen.
 */
Datum
sync_status(PG_FUNCTION_ARGS)
{
	char	   *client_id = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *user;
	MemoryContext callcxt,
				oldcxt;
	StringInfoData out;
	SyncOwnerCtx owner_ctx;
	Datum		args[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	int			rc;
	bool		isnull;
	char	   *devices,
			   *conflicts,
			   *last_pull = NULL,
			   *last_push = NULL;
	Datum		tokd = (Datum) 0;
	bool		has_token = false;
	text	   *result;

	if (client_id)
		sync_check_device_id("client_id", client_id);
	user = caller_user();

	callcxt = AllocSetContextCreate(CurrentMemoryContext, "sync_status", ALLOCSET_DEFAULT_SIZES);
	oldcxt = MemoryContextSwitchTo(callcxt);
	initStringInfo(&out);
	SPI_connect();
	sync_owner_enter(&owner_ctx);
	args[0] = CStringGetTextDatum(user);
	args[1] = client_id ? CStringGetTextDatum(client_id) : (Datum) 0;
	rc = SPI_execute_with_args(psprintf(
		"SELECT (SELECT pg_catalog.count(*) FROM _pg_sync.clients c WHERE c.user_id OPERATOR(pg_catalog.=) $1),"
		"       (SELECT pg_catalog.count(*) FROM _pg_sync.conflicts k"
		"         JOIN _pg_sync.tables t ON t.table_id OPERATOR(pg_catalog.=) k.table_id"
		"         WHERE k.resolved_at IS NULL AND CASE WHEN t.owner_column IS NULL"
		"               THEN k.user_id OPERATOR(pg_catalog.=) $1"
		"               ELSE k.owner OPERATOR(pg_catalog.=) _pg_sync.scope(t.relid) END),"
		"       pg_catalog.to_json(pg_catalog.max(p.last_pull_at))::pg_catalog.text,"
		"       pg_catalog.to_json(pg_catalog.max(c.last_push_at))::pg_catalog.text,"
		"       pg_catalog.max(p.last_token)"
		"  FROM _pg_sync.clients c"
		"  LEFT JOIN %s p ON p.user_id OPERATOR(pg_catalog.=) c.user_id"
		"                AND p.client_id OPERATOR(pg_catalog.=) c.client_id"
		" WHERE c.user_id OPERATOR(pg_catalog.=) $1"
		"   AND ($2 IS NULL OR c.client_id OPERATOR(pg_catalog.=) $2)",
		/* (a standby has no record of pulls) */
		RecoveryInProgress() ?
		"(SELECT NULL::pg_catalog.text, NULL::pg_catalog.text, NULL::pg_catalog.timestamptz, NULL::pg_catalog.int8)"
		" AS p(user_id, client_id, last_pull_at, last_token)" : "_pg_sync.client_pulls"),
		2, types, args, client_id ? NULL : " n", true, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading devices");
	devices = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	conflicts = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	last_pull = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	last_push = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	tokd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull);
	has_token = client_id != NULL && !isnull;
	sync_owner_leave(&owner_ctx);

	appendStringInfoString(&out, "{\"user_id\":");
	escape_json(&out, user);
	add_key(&out, "devices", devices);
	add_key(&out, "open_conflicts", conflicts);
	add_key(&out, "last_pull_at", last_pull);
	add_key(&out, "last_push_at", last_push);
	if (has_token)
	{
		int64		n = pending_changes(user, DatumGetInt64(tokd));

		add_key(&out, "pending_changes", n < 0 ? NULL : psprintf(INT64_FORMAT, n));
	}
	else
		add_key(&out, "pending_changes", NULL);
	appendStringInfoChar(&out, '}');
	SPI_finish();
	MemoryContextSwitchTo(oldcxt);
	result = cstring_to_text_with_len(out.data, out.len);
	MemoryContextDelete(callcxt);
	PG_RETURN_TEXT_P(result);
}
