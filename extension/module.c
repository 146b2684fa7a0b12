/*
 * module.c — loading the library: settings, the JSON allocator, and the
 * helpers every other file uses to reach the extension's own schema.
 */
#include "pg_sync.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/rel.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

int			sync_checkpoint_interval_ms = 100;
int			sync_token_refresh_ms = 3600 * 1000;
int			sync_max_clock_skew_ms = 60 * 1000;
int			sync_max_records = 50000;
char	   *sync_user_claim = NULL;
char	   *sync_trusted_role = NULL;
int			sync_max_push_bytes = 64 * 1024 * 1024;
bool		sync_direct_capture = true;
bool		sync_durable_checkpoints = false;

void		_PG_init(void);

/* Defines the settings and prepares the JSON library and caches. */
void
_PG_init(void)
{
	/* kept so that configurations written for 0.1 still load */
	DefineCustomIntVariable("pg_sync.checkpoint_interval",
							"No effect since pg_sync 0.2.",
							"Pulls in read-write transactions always answer up to their own snapshot "
							"and reuse a recorded checkpoint only when it is exact for the caller.",
							&sync_checkpoint_interval_ms,
							100, 0, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_sync.token_refresh",
							"Oldest checkpoint a pull hands out again as a token.",
							"A pull whose answer would be a checkpoint recorded longer ago (the caller's "
							"own token, or the newest one) records a new one instead, so that a device "
							"that keeps pulling never holds a token sync_prune's retention removes. "
							"Keep the retention well above it.",
							&sync_token_refresh_ms,
							3600 * 1000, 1000, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_sync.max_clock_skew",
							"How far in the future a pushed timestamp may be (last_write_wins, merge \"latest\").",
							"A later one is brought back to the server's now before it is compared and stored.",
							&sync_max_clock_skew_ms,
							60 * 1000, 0, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("pg_sync.max_push_records",
							"Largest number of records one sync_push may carry.",
							NULL,
							&sync_max_records,
							50000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("pg_sync.user_claim",
							   "JWT claim (in request.jwt.claims) that holds the user id.",
							   NULL,
							   &sync_user_claim,
							   "sub",
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("pg_sync.trusted_role",
							   "Role whose members may name the user of a sync call (user_id).",
							   "Superusers always may. Empty: only superusers.",
							   &sync_trusted_role,
							   "service_role",
							   PGC_SUSET, 0,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("pg_sync.max_push_bytes",
							"Largest changes document one sync_push accepts.",
							NULL,
							&sync_max_push_bytes,
							64 * 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_sync.direct_capture",
							 "Writes change records without SQL where it can.",
							 "Off: every change record is written by an SQL upsert (same records, slower writes).",
							 &sync_direct_capture,
							 true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("pg_sync.durable_checkpoints",
							 "Makes a pull that records a checkpoint and writes nothing else wait for its WAL flush.",
							 "Off: such a pull commits as with synchronous_commit = off; a crash can lose the last "
							 "checkpoints, and their tokens are then refused with SY003 (never answered from another checkpoint).",
							 &sync_durable_checkpoints,
							 false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("pg_sync");
#else
	EmitWarningsOnPlaceholders("pg_sync");
#endif

	sync_registry_init();
}

/*
 * Whether the internal schema is 0.2's: between installing a new library
 * and ALTER EXTENSION pg_sync UPDATE, the 0.1 schema is served (without
 * pages and device states of rows).
 */
bool
sync_schema_02(void)
{
	return OidIsValid(sync_internal_relid("pages"));
}

/* Raises the error of a database without the extension's schema. */
void
sync_not_installed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("pg_sync is not installed in this database"),
			 errhint("Run CREATE EXTENSION pg_sync.")));
}

/* Oid of the extension's table _pg_sync.<name>, or InvalidOid. */
Oid
sync_internal_relid(const char *name)
{
	Oid			nsp = get_namespace_oid("_pg_sync", true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * Opens _pg_sync.<name> to read it without SQL, taking the lock a query on it
 * takes; the caller closes it with NoLock (the lock lasts, as a query's does,
 * to the end of the transaction). Only the extension's own tables are read
 * this way, by built-in comparisons: nothing a caller defines is involved.
 */
Relation
sync_internal_open(const char *name)
{
	Oid			relid = sync_internal_relid(name);

	if (!OidIsValid(relid))
		sync_not_installed();
	return table_open(relid, AccessShareLock);
}

/*
 * Opens an index of an internal table opened by sync_internal_open(): the
 * one named _pg_sync.<name>, or the primary key when name is NULL; NULL when
 * there is none and missing_ok. Locked like the table. A REINDEX
 * CONCURRENTLY that swaps the index in the meantime is waited out: the
 * index found is checked once locked, and looked up again if it is no
 * longer the valid one of that name.
 */
Relation
sync_internal_index(Relation heap, const char *name, bool missing_ok)
{
	int			tries;

	for (tries = 0;; tries++)
	{
		Oid			idx = name ? sync_internal_relid(name) : sync_primary_key_index(heap);
		Relation	irel;

		if (!OidIsValid(idx))
		{
			if (missing_ok)
				return NULL;
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("an index of pg_sync's table \"%s\" is missing", RelationGetRelationName(heap)),
					 errdetail("Index: %s.", name ? name : "the primary key"),
					 errhint("Recreate the extension.")));
		}
		irel = try_relation_open(idx, AccessShareLock);
		if (irel != NULL)
		{
			if (irel->rd_index != NULL && irel->rd_index->indrelid == RelationGetRelid(heap) &&
				irel->rd_index->indisvalid &&
				(name ? strcmp(RelationGetRelationName(irel), name) == 0 : irel->rd_index->indisprimary))
				return irel;
			relation_close(irel, AccessShareLock);
		}
		if (tries >= 100)
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("an index of pg_sync's table \"%s\" kept changing while it was opened",
							RelationGetRelationName(heap)),
					 errhint("Retry the call.")));
		CHECK_FOR_INTERRUPTS();
		AcceptInvalidationMessages();
	}
}

/*
 * Number of the column name of an internal table opened by
 * sync_internal_open(); InvalidAttrNumber for a column an older schema does
 * not have when missing_ok.
 */
AttrNumber
sync_internal_attnum(Relation rel, const char *name, bool missing_ok)
{
	AttrNumber	att = get_attnum(RelationGetRelid(rel), name);

	if (att == InvalidAttrNumber && !missing_ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of pg_sync's table \"%s\" is missing", name, RelationGetRelationName(rel)),
				 errhint("Update the extension: ALTER EXTENSION pg_sync UPDATE.")));
	return att;
}

/* Oid of the role that owns the extension's internal schema. */
static Oid
sync_owner(void)
{
	Oid			nsp = get_namespace_oid("_pg_sync", true);
	HeapTuple	tup;
	Oid			owner;

	if (!OidIsValid(nsp))
		sync_not_installed();
	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Switches to the extension owner for reading or writing internal state, and
 * pins search_path to pg_catalog, pg_temp for as long: nothing the caller
 * defines (operators, functions, types in a schema of theirs put first in
 * search_path) can be resolved by a query pg_sync runs, prepares or replans
 * as the owner. The caller's setting comes back with sync_owner_leave(), or
 * with the (sub)transaction abort if an error intervenes -- both the GUC nest
 * level and the identity are unwound by it.
 */
void
sync_owner_enter(SyncOwnerCtx *ctx)
{
	Oid			owner = sync_owner();

	GetUserIdAndSecContext(&ctx->save_user, &ctx->save_sec);
	ctx->gucnest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
	SetUserIdAndSecContext(owner,
						   ctx->save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

/*
 * SQL: _pg_sync.calling_role() — the role that called pg_sync's SECURITY
 * DEFINER functions: the session's role as SET ROLE left it (PostgREST's
 * per-request role), which a SECURITY DEFINER call does not change the way
 * it changes current_user. Checks of "must own the table" go by it.
 */
PG_FUNCTION_INFO_V1(sync_calling_role);
Datum
sync_calling_role(PG_FUNCTION_ARGS)
{
	PG_RETURN_OID(GetOuterUserId());
}

/* Returns to the caller's identity and search_path saved by sync_owner_enter. */
void
sync_owner_leave(SyncOwnerCtx *ctx)
{
	SetUserIdAndSecContext(ctx->save_user, ctx->save_sec);
	AtEOXact_GUC(true, ctx->gucnest);
}

/* Prepares a statement with the given cursor options and keeps the plan. */
static SPIPlanPtr
prepare_kept(const char *sql, int nargs, Oid *argtypes, int cursor_options)
{
	SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, cursor_options);

	if (plan == NULL)
		elog(ERROR, "pg_sync: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "pg_sync: could not keep plan");
	return plan;
}

/* Prepares a statement and keeps the plan for the life of the backend. */
SPIPlanPtr
sync_prepare(const char *sql, int nargs, Oid *argtypes)
{
	return prepare_kept(sql, nargs, argtypes, 0);
}

/*
 * Prepares a statement whose plan does not depend on its parameters (a
 * primary-key lookup, a scan of a small table) and keeps it: always the
 * generic plan, without the custom plans the plan cache tries first.
 */
SPIPlanPtr
sync_prepare_generic(const char *sql, int nargs, Oid *argtypes)
{
	return prepare_kept(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * Prepares a statement planned anew for every call's parameters (custom
 * plans: where the best plan depends on them) and keeps it.
 */
SPIPlanPtr
sync_prepare_custom(const char *sql, int nargs, Oid *argtypes)
{
	return prepare_kept(sql, nargs, argtypes, CURSOR_OPT_CUSTOM_PLAN);
}

/* Raises an internal error when an SPI call did not return what it should. */
void
sync_check_spi(int rc, int expected, const char *what)
{
	if (rc != expected)
		elog(ERROR, "pg_sync: %s failed: %s", what, SPI_result_code_string(rc));
}

/* Whether name is in a list of C strings. */
bool
sync_name_listed(List *names, const char *name)
{
	ListCell   *lc;

	foreach(lc, names)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}
