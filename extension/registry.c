/*
 * registry.c — what is registered, as the current call sees it, and a
 * per-backend cache of table descriptors (columns, key, owner, I/O functions,
 * prepared plans). A relcache invalidation of a table (ALTER TABLE, register,
 * unregister) marks its descriptor stale; stale descriptors are rebuilt on
 * next use and the old ones freed when the transaction ends, never while a
 * plan of theirs may still be running.
 */
#include "pg_sync.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/indexing.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/xid8.h"

typedef struct RegistryEntry
{
	Oid			relid;			/* hash key */
	SyncTable  *desc;
} RegistryEntry;

static HTAB *registry = NULL;
static List *retired = NIL;		/* descriptors to free at transaction end */
static MemoryContext registry_cxt = NULL;
static SPIPlanPtr lookup_plans[2];

PG_FUNCTION_INFO_V1(sync_invalidate);

/* Frees a descriptor and its plans. */
static void
free_desc(SyncTable *t)
{
	SyncWritePlan *wp;
	int			i;

	if (t->full_plan)
		SPI_freeplan(t->full_plan);
	if (t->full_owner_plan)
		SPI_freeplan(t->full_owner_plan);
	if (t->byid_plan)
		SPI_freeplan(t->byid_plan);
	if (t->byid_few_plan)
		SPI_freeplan(t->byid_few_plan);
	if (t->page_plan)
		SPI_freeplan(t->page_plan);
	if (t->lock_plan)
		SPI_freeplan(t->lock_plan);
	if (t->delete_plan)
		SPI_freeplan(t->delete_plan);
	if (t->exists_plan)
		SPI_freeplan(t->exists_plan);
	for (i = 0; i < lengthof(t->capture_plans); i++)
		if (t->capture_plans[i])
			SPI_freeplan(t->capture_plans[i]);
	for (wp = t->write_plans; wp; wp = wp->next)
	{
		if (wp->insert_plan)
			SPI_freeplan(wp->insert_plan);
		if (wp->update_plan)
			SPI_freeplan(wp->update_plan);
	}
	MemoryContextDelete(GetMemoryChunkContext(t));
}

/* Relcache callback: marks the descriptor of relid (or all) stale. */
static void
registry_inval(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS st;
	RegistryEntry *e;

	if (registry == NULL)
		return;
	if (OidIsValid(relid))
	{
		e = hash_search(registry, &relid, HASH_FIND, NULL);
		if (e && e->desc)
			e->desc->valid = false;
		return;
	}
	hash_seq_init(&st, registry);
	while ((e = hash_seq_search(&st)) != NULL)
		if (e->desc)
			e->desc->valid = false;
}

/* Transaction end: frees descriptors replaced during the transaction. */
static void
registry_xact(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	while (retired != NIL)
	{
		SyncTable  *t = linitial(retired);

		retired = list_delete_first(retired);
		free_desc(t);
	}
}

/* Sets up the cache; called once from _PG_init. */
void
sync_registry_init(void)
{
	HASHCTL		ctl;

	registry_cxt = AllocSetContextCreate(CacheMemoryContext, "pg_sync registry",
										 ALLOCSET_SMALL_SIZES);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(RegistryEntry);
	ctl.hcxt = registry_cxt;
	registry = hash_create("pg_sync registry", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	CacheRegisterRelcacheCallback(registry_inval, (Datum) 0);
	RegisterXactCallback(registry_xact, NULL);
}

/* Chooses how values of a type travel as JSON. */
static SyncKind
kind_of(Oid basetyp)
{
	switch (basetyp)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return SK_INT;
		case FLOAT4OID:
		case FLOAT8OID:
			return SK_FLOAT;
		case NUMERICOID:
			return SK_NUMERIC;
		case BOOLOID:
			return SK_BOOL;
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return SK_TIMESTAMP;
		case DATEOID:
			return SK_DATE;
		case JSONOID:
		case JSONBOID:
			return SK_JSON;
		default:
			return SK_TEXT;
	}
}

/* A conflict policy's name (checked at registration). */
static SyncPolicy
parse_policy(const char *policy)
{
	static const char *const names[] = {"abort", "client_wins", "server_wins", "last_write_wins",
	"version", "merge", "custom", "manual", "insert_only"};
	int			i;

	for (i = 0; i < lengthof(names); i++)
		if (strcmp(policy, names[i]) == 0)
			return (SyncPolicy) i;
	elog(ERROR, "pg_sync: unknown conflict policy \"%s\"", policy);
	return SP_ABORT;			/* not reached */
}

/* A merge rule's name (checked at registration). */
static SyncMergeRule
parse_rule(const char *rule)
{
	static const char *const names[] = {"client", "server", "latest", "max", "min", "union", "append_by_id"};
	int			i;

	for (i = 0; i < lengthof(names); i++)
		if (strcmp(rule, names[i]) == 0)
			return (SyncMergeRule) i;
	elog(ERROR, "pg_sync: unknown merge rule \"%s\"", rule);
	return MR_CLIENT;			/* not reached */
}

/* A string member of a JSON object, or NULL. */
static char *
option_text(Jsonb *opts, const char *key)
{
	JsonbValue	k,
			   *v;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	v = findJsonbValueFromContainer(&opts->root, JB_FOBJECT, &k);
	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* Index of the synced column called name, or -1. */
static int
column_named(SyncTable *t, const char *name)
{
	int			i;

	if (name != NULL)
		for (i = 0; i < t->ncols; i++)
			if (strcmp(t->cols[i].name, name) == 0)
				return i;
	return -1;
}

/*
 * Reads a policy's options (normalised at registration: every default is
 * there) into the descriptor. A column the options name that is gone fails
 * with 42P16, like a missing key or owner column.
 */
static void
read_policy_options(SyncTable *t, const char *options)
{
	Jsonb	   *opts = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(options)));
	char	   *s;
	int			i;

	t->options = pstrdup(options);
	t->ts_col = t->version_col = -1;
	t->on_conflict = SP_ABORT;
	s = option_text(opts, "push_mode");
	t->per_record = s != NULL && strcmp(s, "per_record") == 0;
	if ((s = option_text(opts, "timestamp_column")) != NULL && (t->ts_col = column_named(t, s)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("timestamp column \"%s\" of registered table \"%s\" no longer exists", s, t->name),
				 errhint("Choose another one with sync_alter_table().")));
	if ((s = option_text(opts, "version_column")) != NULL && (t->version_col = column_named(t, s)) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("version column \"%s\" of registered table \"%s\" no longer exists", s, t->name),
				 errhint("Choose another one with sync_alter_table().")));
	if ((s = option_text(opts, "on_conflict")) != NULL)
		t->on_conflict = parse_policy(s);
	if ((s = option_text(opts, "function")) != NULL)
		t->custom_fn = (Oid) strtoul(s, NULL, 10);
	if (t->policy == SP_MERGE)
	{
		JsonbValue	k,
				   *cols;
		SyncMergeRule dflt = parse_rule((s = option_text(opts, "default")) ? s : "client");

		t->rules = palloc(sizeof(SyncMergeRule) * (t->ncols + 1));
		for (i = 0; i < t->ncols; i++)
			t->rules[i] = dflt;
		k.type = jbvString;
		k.val.string.val = "columns";
		k.val.string.len = 7;
		cols = findJsonbValueFromContainer(&opts->root, JB_FOBJECT, &k);
		if (cols != NULL && cols->type == jbvBinary)
		{
			JsonbIterator *it = JsonbIteratorInit(cols->val.binary.data);
			JsonbValue	v;
			JsonbIteratorToken tok;
			char	   *col = NULL;

			while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			{
				if (tok == WJB_KEY)
					col = pnstrdup(v.val.string.val, v.val.string.len);
				else if (tok == WJB_VALUE && v.type == jbvString && col != NULL)
				{
					int			c = column_named(t, col);

					if (c < 0)
						ereport(ERROR,
								(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
								 errmsg("merge column \"%s\" of registered table \"%s\" no longer exists", col, t->name),
								 errhint("Change the rules with sync_alter_table().")));
					t->rules[c] = parse_rule(pnstrdup(v.val.string.val, v.val.string.len));
				}
			}
		}
	}
}

/* Builds a descriptor from the catalog and the registration row. */
static SyncTable *
build_desc(SyncRegistration *reg)
{
	MemoryContext cxt,
				old;
	SyncTable  *t;
	Relation	rel;
	TupleDesc	td;
	int			i;
	StringInfoData buf;
	Oid			pkindex;
	AttrNumber	pkattnum;
	AttrNumber	pklead;

	cxt = AllocSetContextCreate(registry_cxt, "pg_sync table", ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	t = palloc0(sizeof(SyncTable));
	t->relid = reg->relid;
	t->table_id = reg->table_id;
	t->name = pstrdup(reg->name);
	t->policy = parse_policy(reg->policy);
	t->pull_only = reg->pull_only;
	t->key = -1;
	t->owner = -1;

	rel = relation_open(reg->relid, AccessShareLock);
	td = RelationGetDescr(rel);
	/*
	 * The key is the registered column, whatever it is called now and even
	 * if the primary key moved: clients hold rows by its values. (A
	 * registration of 0.1, not updated yet, knows only the primary key.)
	 */
	pkattnum = pklead = InvalidAttrNumber;
	pkindex = sync_primary_key_index(rel);
	if (OidIsValid(pkindex))
	{
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkindex));

		if (HeapTupleIsValid(itup))
		{
			Form_pg_index idx = (Form_pg_index) GETSTRUCT(itup);

			if (idx->indnkeyatts >= 1)
				pklead = idx->indkey.values[0];
			if (idx->indnatts == 1)
				pkattnum = idx->indkey.values[0];
			ReleaseSysCache(itup);
		}
	}
	t->qualname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
											 RelationGetRelationName(rel));
	t->rowtype = rel->rd_rel->reltype;
	t->cols = palloc0(sizeof(SyncColumn) * td->natts);
	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		SyncColumn *c;
		Oid			outfn,
					infn;
		bool		isvarlena;

		if (a->attisdropped)
			continue;
		c = &t->cols[t->ncols];
		c->name = pstrdup(NameStr(a->attname));
		c->attnum = a->attnum;
		c->typid = a->atttypid;
		c->typmod = a->atttypmod;
		c->basetypid = getBaseType(a->atttypid);
		c->kind = kind_of(c->basetypid);
		c->arraytypid = get_array_type(a->atttypid);
		c->write_as_text = !OidIsValid(c->arraytypid) ||
			get_typtype(c->basetypid) == TYPTYPE_COMPOSITE;
		get_typlenbyvalalign(a->atttypid, &c->typlen, &c->typbyval, &c->typalign);
		getTypeOutputInfo(a->atttypid, &outfn, &isvarlena);
		fmgr_info_cxt(outfn, &c->outfn, cxt);
		getTypeInputInfo(a->atttypid, &infn, &c->ioparam);
		fmgr_info_cxt(infn, &c->infn, cxt);
		c->synced = !sync_reserved_field(c->name);
		c->identity_always = a->attidentity == ATTRIBUTE_IDENTITY_ALWAYS;
		c->writable = c->synced && a->attgenerated == '\0' && !c->identity_always;
		initStringInfo(&buf);
		escape_json(&buf, c->name);
		appendStringInfoChar(&buf, ':');
		c->json_key = buf.data;
		if (reg->key_attnum != 0 ? a->attnum == reg->key_attnum : a->attnum == pkattnum)
			t->key = t->ncols;
		if (reg->owner_column != NULL &&
			(reg->owner_attnum != 0 ? a->attnum == reg->owner_attnum
			 : strcmp(c->name, reg->owner_column) == 0))
			t->owner = t->ncols;
		t->ncols++;
	}
	relation_close(rel, NoLock);

	if (t->key < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("key column \"%s\" of registered table \"%s\" no longer exists",
						reg->key_column, reg->name),
				 errdetail("Clients hold its rows by the values of that column."),
				 errhint("Unregister the table and register it again (clients then resync it).")));
	if (reg->owner_column != NULL && t->owner < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("owner column \"%s\" of registered table \"%s\" no longer exists",
						reg->owner_column, reg->name),
				 errhint("Unregister the table and register it again with its new owner column.")));
	/* the key travels as "id"; another column of that name cannot */
	for (i = 0; i < t->ncols; i++)
		if (i != t->key && strcmp(t->cols[i].name, "id") == 0)
			t->cols[i].synced = t->cols[i].writable = false;
	t->cols[t->key].synced = true;
	t->key_leads_pk = t->cols[t->key].attnum == pklead;
	read_policy_options(t, reg->options);
	t->valid = true;
	MemoryContextSwitchTo(old);
	return t;
}

/*
 * Returns the descriptor for a registration row, rebuilding it when the
 * catalog or the registration changed.
 */
static SyncTable *
get_desc(SyncRegistration *reg)
{
	SyncOwnerCtx owner_ctx;
	RegistryEntry *e;
	bool		found;
	SyncTable  *t;

	e = hash_search(registry, &reg->relid, HASH_ENTER, &found);
	if (!found)
		e->desc = NULL;
	t = e->desc;
	if (t && t->valid && t->table_id == reg->table_id && strcmp(t->name, reg->name) == 0 &&
		t->pull_only == reg->pull_only &&
		t->policy == parse_policy(reg->policy) &&
		strcmp(t->options, reg->options) == 0 &&
		(reg->key_attnum == 0 || t->cols[t->key].attnum == reg->key_attnum) &&
		(reg->owner_column == NULL ? t->owner < 0 :
		 t->owner >= 0 && (reg->owner_attnum != 0 ? t->cols[t->owner].attnum == reg->owner_attnum
						   : strcmp(t->cols[t->owner].name, reg->owner_column) == 0)))
		return t;
	/* build first (by SQL, as the owner): if it fails, the entry keeps its old descriptor */
	sync_owner_enter(&owner_ctx);
	t = build_desc(reg);
	sync_owner_leave(&owner_ctx);
	e = hash_search(registry, &reg->relid, HASH_FIND, NULL);
	if (e->desc)
	{
		MemoryContext old = MemoryContextSwitchTo(registry_cxt);

		retired = lappend(retired, e->desc);
		MemoryContextSwitchTo(old);
	}
	e->desc = t;
	return t;
}

/*
 * The columns every registry query starts with; key and owner are the
 * expressions of the column numbers. An 0.1 schema, before ALTER EXTENSION
 * UPDATE, has no column numbers: 0 then means the primary key and the owner
 * by name. (sync_schema_02() tells which, on every call: an update in the
 * middle of a session switches to the 0.2 queries.)
 */
#define REGISTRATION_COLUMNS(key, owner) \
	"t.relid::pg_catalog.oid, t.table_id, t.name, t.key_column::pg_catalog.text, " key "," \
	" t.owner_column::pg_catalog.text, " owner "," \
	" t.conflict_policy," \
	" coalesce((t.options OPERATOR(pg_catalog.->>) 'pull_only')::pg_catalog.bool, false)," \
	" t.options::pg_catalog.text"
#define REGISTRATION_COLUMNS_02 \
	REGISTRATION_COLUMNS("t.key_attnum", "coalesce(t.owner_attnum, 0::pg_catalog.int2)")
#define REGISTRATION_COLUMNS_01 \
	REGISTRATION_COLUMNS("0::pg_catalog.int2", "0::pg_catalog.int2")

/* Reads a registration from the first columns of a registry query's row. */
static void
read_registration(HeapTuple tup, TupleDesc td, SyncRegistration *reg)
{
	bool		isnull;

	reg->relid = DatumGetObjectId(SPI_getbinval(tup, td, 1, &isnull));
	reg->table_id = DatumGetInt32(SPI_getbinval(tup, td, 2, &isnull));
	reg->name = SPI_getvalue(tup, td, 3);
	reg->key_column = SPI_getvalue(tup, td, 4);
	reg->key_attnum = DatumGetInt16(SPI_getbinval(tup, td, 5, &isnull));
	reg->owner_column = SPI_getvalue(tup, td, 6);
	reg->owner_attnum = DatumGetInt16(SPI_getbinval(tup, td, 7, &isnull));
	reg->policy = SPI_getvalue(tup, td, 8);
	reg->pull_only = DatumGetBool(SPI_getbinval(tup, td, 9, &isnull));
	reg->options = SPI_getvalue(tup, td, 10);
}

/* A registration row, as sync_registry_load() reads it, before the table is locked. */
typedef struct RegistryRow
{
	SyncRegistration reg;
	bool		newer;			/* registered after the token */
	bool		replaced;		/* sync_require_replacement() after the token */
	uint64		registered_xid;
	Oid			seen_filenode;	/* the table's storage in the caller's snapshot */
} RegistryRow;

/*
 * Whether xid8 column att of a registration row is set and not visible in
 * token prev (or there is no token).
 */
static bool
after_token(HeapTuple tup, TupleDesc td, AttrNumber att, SyncToken *prev, uint64 *xid)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, att, td, &isnull);
	uint64		x = isnull ? 0 : U64FromFullTransactionId(DatumGetFullTransactionId(d));

	if (xid)
		*xid = x;
	if (isnull)
		return false;
	return prev == NULL || prev->id == 0 || !sync_snap_visible(&prev->parsed, x);
}

/* Text of a column (name or text) of a registration row, or NULL. */
static char *
row_text(HeapTuple tup, TupleDesc td, AttrNumber att)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, att, td, &isnull);

	if (isnull)
		return NULL;
	if (TupleDescAttr(td, att - 1)->atttypid == NAMEOID)
		return pstrdup(NameStr(*DatumGetName(d)));
	return TextDatumGetCString(d);
}

/* coalesce((options ->> 'pull_only')::bool, false) of a registration's options. */
static bool
options_pull_only(Jsonb *options)
{
	JsonbValue	k;
	JsonbValue *v;
	char	   *text;

	k.type = jbvString;
	k.val.string.val = "pull_only";
	k.val.string.len = strlen("pull_only");
	if (!JB_ROOT_IS_OBJECT(options) ||
		(v = findJsonbValueFromContainer(&options->root, JB_FOBJECT, &k)) == NULL ||
		v->type == jbvNull)
		return false;
	if (v->type == jbvBool)
		return v->val.boolean;
	if (v->type == jbvString)
		text = pnstrdup(v->val.string.val, v->val.string.len);
	else if (v->type == jbvNumeric)
		text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("option \"pull_only\" of a registration is not a boolean")));
	return DatumGetBool(DirectFunctionCall1(boolin, CStringGetDatum(text)));
}

static int
registry_row_cmp(const void *a, const void *b)
{
	int32		x = ((const RegistryRow *) a)->reg.table_id;
	int32		y = ((const RegistryRow *) b)->reg.table_id;

	return (x > y) - (x < y);
}

/*
 * Reads the registrations the active snapshot (the one a read-only query of
 * the call reads in) sees, in table_id order, without SQL: the rows of
 * _pg_sync.tables (through its unique index on table_id), and for each the
 * table's relfilenode in pg_class as the same snapshot sees it. On the 0.1 schema (before ALTER EXTENSION pg_sync
 * UPDATE) the key and owner column numbers read as 0 (found by name) and no
 * replacement is required.
 */
static RegistryRow *
read_registry(SyncToken *prev, int *n)
{
	Snapshot	snap = GetActiveSnapshot();
	Relation	rel = sync_internal_open("tables");
	Relation	classrel = table_open(RelationRelationId, AccessShareLock);
	TupleDesc	td = RelationGetDescr(rel);
	AttrNumber	a_relid = sync_internal_attnum(rel, "relid", false),
				a_table_id = sync_internal_attnum(rel, "table_id", false),
				a_name = sync_internal_attnum(rel, "name", false),
				a_key = sync_internal_attnum(rel, "key_column", false),
				a_key_attnum = sync_internal_attnum(rel, "key_attnum", true),
				a_owner = sync_internal_attnum(rel, "owner_column", false),
				a_owner_attnum = sync_internal_attnum(rel, "owner_attnum", true),
				a_policy = sync_internal_attnum(rel, "conflict_policy", false),
				a_options = sync_internal_attnum(rel, "options", false),
				a_registered = sync_internal_attnum(rel, "registered_xid", false),
				a_replaced = sync_internal_attnum(rel, "replaced_xid", true);
	Relation	irel = sync_internal_index(rel, "tables_table_id_key", true);
	SysScanDesc scan = irel ? systable_beginscan_ordered(rel, irel, snap, 0, NULL)
		: systable_beginscan(rel, InvalidOid, false, snap, 0, NULL);
	HeapTuple	tup;
	int			cap = 8;
	RegistryRow *rows = palloc(cap * sizeof(RegistryRow));
	int			i;

	*n = 0;
	while ((tup = irel ? systable_getnext_ordered(scan, ForwardScanDirection) : systable_getnext(scan)) != NULL)
	{
		RegistryRow *r;
		bool		isnull;
		Datum		d;
		Jsonb	   *options;

		if (*n == cap)
			rows = repalloc(rows, (cap *= 2) * sizeof(RegistryRow));
		r = &rows[(*n)++];
		memset(r, 0, sizeof(*r));
		r->reg.relid = DatumGetObjectId(heap_getattr(tup, a_relid, td, &isnull));
		r->reg.table_id = DatumGetInt32(heap_getattr(tup, a_table_id, td, &isnull));
		r->reg.name = row_text(tup, td, a_name);
		r->reg.key_column = row_text(tup, td, a_key);
		if (a_key_attnum != InvalidAttrNumber)
			r->reg.key_attnum = DatumGetInt16(heap_getattr(tup, a_key_attnum, td, &isnull));
		r->reg.owner_column = row_text(tup, td, a_owner);
		if (a_owner_attnum != InvalidAttrNumber)
		{
			d = heap_getattr(tup, a_owner_attnum, td, &isnull);
			r->reg.owner_attnum = isnull ? 0 : DatumGetInt16(d);
		}
		r->reg.policy = row_text(tup, td, a_policy);
		options = DatumGetJsonbP(heap_getattr(tup, a_options, td, &isnull));
		r->reg.pull_only = options_pull_only(options);
		r->reg.options = JsonbToCString(NULL, &options->root, VARSIZE(options));
		r->newer = after_token(tup, td, a_registered, prev, &r->registered_xid);
		r->replaced = a_replaced != InvalidAttrNumber && prev != NULL && prev->id != 0 &&
			after_token(tup, td, a_replaced, prev, NULL);
	}
	if (irel)
	{
		systable_endscan_ordered(scan);
		index_close(irel, NoLock);
	}
	else
		systable_endscan(scan);

	for (i = 0; i < *n; i++)
	{
		ScanKeyData key;
		SysScanDesc cscan;
		HeapTuple	ctup;

		ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ,
					ObjectIdGetDatum(rows[i].reg.relid));
		cscan = systable_beginscan(classrel, ClassOidIndexId, true, snap, 1, &key);
		if ((ctup = systable_getnext(cscan)) != NULL)
			rows[i].seen_filenode = ((Form_pg_class) GETSTRUCT(ctup))->relfilenode;
		systable_endscan(cscan);
	}
	table_close(classrel, NoLock);
	table_close(rel, NoLock);
	if (irel == NULL && *n > 1)
		qsort(rows, *n, sizeof(RegistryRow), registry_row_cmp);
	return rows;
}

/*
 * Lists the registered tables (SyncTableRef) as the caller's snapshot sees
 * them, with whether each was registered after the token prev (NULL: first
 * pull). The tables named in names (NIL: all) are locked with lockmode, in
 * registration order, and only then described: a cached descriptor is
 * trusted only under a lock that keeps DDL out, after the invalidations
 * that came before the lock were processed. A table dropped meanwhile comes
 * back with vanished set and no descriptor; one rewritten (ALTER ... TYPE,
 * TRUNCATE, CLUSTER) after the caller's snapshot was taken, whose rows that
 * snapshot can no longer read, fails the call with a retryable error.
 * Must run inside SPI (a descriptor not cached is built by queries, run as
 * the extension owner).
 */
List *
sync_registry_load(SyncToken *prev, LOCKMODE lockmode, List *names)
{
	int			i;
	int			n;
	List	   *out = NIL;
	RegistryRow *rows = read_registry(prev, &n);

	for (i = 0; i < n; i++)
	{
		RegistryRow *r = &rows[i];
		SyncTableRef *ref = palloc0(sizeof(SyncTableRef));
		HeapTuple	ctup;

		ref->relid = r->reg.relid;
		ref->name = r->reg.name;
		ref->new_since_token = r->newer;
		ref->replaced = r->replaced;
		ref->registered_xid = r->registered_xid;
		out = lappend(out, ref);
		if (names != NIL && !sync_name_listed(names, ref->name))
			continue;

		LockRelationOid(r->reg.relid, lockmode);
		ctup = SearchSysCache1(RELOID, ObjectIdGetDatum(r->reg.relid));
		if (!HeapTupleIsValid(ctup))
		{
			/* dropped since the snapshot was taken: gone for this call */
			UnlockRelationOid(r->reg.relid, lockmode);
			ref->vanished = true;
			continue;
		}
		if (((Form_pg_class) GETSTRUCT(ctup))->relfilenode != r->seen_filenode)
		{
			ReleaseSysCache(ctup);
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("synced table \"%s\" was rewritten while this call waited for it", ref->name),
					 errdetail("An ALTER TABLE, TRUNCATE or CLUSTER committed after this transaction's snapshot was taken."),
					 errhint("Retry in a new transaction.")));
		}
		ReleaseSysCache(ctup);
		ref->desc = get_desc(&r->reg);
	}
	return out;
}

/*
 * Returns the descriptor of a registered table, from the cache when it is
 * current, else from the registration row. Must run inside SPI as the
 * extension owner when the cache may miss.
 */
SyncTable *
sync_registry_lookup(Oid relid, bool missing_ok)
{
	RegistryEntry *e = hash_search(registry, &relid, HASH_FIND, NULL);
	Datum		args[1];
	int			rc;
	int			v02;
	SyncRegistration reg;

	if (e && e->desc && e->desc->valid)
		return e->desc;
	v02 = sync_schema_02() ? 1 : 0;
	if (lookup_plans[v02] == NULL)
	{
		Oid			types[1] = {OIDOID};

		lookup_plans[v02] = sync_prepare_generic(psprintf(
			"SELECT %s FROM _pg_sync.tables t WHERE t.relid OPERATOR(pg_catalog.=) $1",
			v02 ? REGISTRATION_COLUMNS_02 : REGISTRATION_COLUMNS_01), 1, types);
	}
	args[0] = ObjectIdGetDatum(relid);
	rc = SPI_execute_plan(lookup_plans[v02], args, NULL, false, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading a registration");
	if (SPI_processed == 0)
	{
		if (missing_ok)
			return NULL;
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("table \"%s\" is not registered with pg_sync", get_rel_name(relid))));
	}
	read_registration(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &reg);
	return get_desc(&reg);
}

/*
 * The cached descriptor of a table when it is current, else NULL; runs no
 * SQL. For callers whose table is locked already (its invalidations are in).
 */
SyncTable *
sync_registry_cached(Oid relid)
{
	RegistryEntry *e;

	if (registry == NULL)
		return NULL;
	e = hash_search(registry, &relid, HASH_FIND, NULL);
	return e && e->desc && e->desc->valid ? e->desc : NULL;
}

/* SQL: marks a table's cached descriptor stale in every backend. */
Datum
sync_invalidate(PG_FUNCTION_ARGS)
{
	CacheInvalidateRelcacheByRelid(PG_GETARG_OID(0));
	PG_RETURN_VOID();
}
