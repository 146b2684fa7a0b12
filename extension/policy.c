/*
 * policy.c — what a push does with each record, table by table, once its
 * rows are locked: a record without a conflict is applied as pushed; a
 * conflict (a row written or deleted by a transaction the client's token had
 * not seen, or for `version` a stale version) is settled by the table's
 * policy. One function per policy decides; sync_push_resolve() maps their
 * outcome to the record's action and the push result's entry.
 *
 * Crossings (README "Conflict policies"): a record updating a row the
 * server deleted, and a delete of a row the server changed, are conflicts
 * like any other; without a timestamp or a version on the deleted side,
 * last_write_wins, merge and version's server_wins keep what the server has.
 */
#include "pg_sync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/regproc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

/* Whether the policy needs the server's row to decide. */
bool
sync_policy_reads_rows(SyncTable *t)
{
	return t->policy == SP_LAST_WRITE_WINS || t->policy == SP_VERSION ||
		t->policy == SP_MERGE || t->policy == SP_CUSTOM || t->policy == SP_MANUAL ||
		t->policy == SP_INSERT_ONLY;
}

/* --- records as JSON (the pull's value mapping) --- */

/* A pushed record as a JSON object: its id and the values as sent. */
char *
sync_record_json(SyncTable *t, const char *id, SyncRecord *rec)
{
	StringInfoData buf;
	int			f;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"id\":");
	escape_json(&buf, id);
	for (f = 0; f < rec->nfields; f++)
	{
		SyncValue  *v = &rec->fields[f].value;

		appendStringInfoChar(&buf, ',');
		escape_json(&buf, rec->fields[f].key);
		appendStringInfoChar(&buf, ':');
		switch (v->type)
		{
			case SV_NULL:
				appendStringInfoString(&buf, "null");
				break;
			case SV_STRING:
				escape_json(&buf, v->str);
				break;
			case SV_BOOL:
				appendStringInfoString(&buf, v->bval ? "true" : "false");
				break;
			case SV_NUMBER:
			case SV_COMPOUND:
				appendStringInfoString(&buf, v->str);
				break;
		}
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* A server row as a pull sends it. */
char *
sync_row_json(SyncTable *t, const char *id, Datum *vals, bool *nulls)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"id\":");
	escape_json(&buf, id);
	for (i = 0; i < t->ncols; i++)
	{
		if (!t->cols[i].synced || i == t->key)
			continue;
		appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, t->cols[i].json_key);
		sync_encode_value(&buf, &t->cols[i], vals[i], nulls[i]);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* --- comparing values --- */

/* Compares two non-null values of a column with its type's default ordering. */
static int
compare_values(SyncColumn *col, Datum a, Datum b)
{
	TypeCacheEntry *tc = lookup_type_cache(col->basetypid, TYPECACHE_CMP_PROC_FINFO);

	if (!OidIsValid(tc->cmp_proc_finfo.fn_oid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("type %s of column \"%s\" has no ordering", format_type_be(col->typid), col->name)));
	return DatumGetInt32(FunctionCall2Coll(&tc->cmp_proc_finfo, InvalidOid, a, b));
}

/* Whether two values of a column are the same (NULL equals NULL). */
static bool
same_value(SyncColumn *col, Datum a, bool anull, Datum b, bool bnull)
{
	if (anull || bnull)
		return anull && bnull;
	return datum_image_eq(a, b, col->typbyval, col->typlen);
}

/* Milliseconds since 1970 of a timestamp-like column value (timestamp, or a number of ms). */
static double
value_millis(SyncColumn *col, Datum v)
{
	switch (col->basetypid)
	{
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return (double) DatumGetTimestamp(v) / 1000.0 + 946684800000.0;
		case INT8OID:
			return (double) DatumGetInt64(v);
		case INT4OID:
			return (double) DatumGetInt32(v);
		case FLOAT8OID:
			return DatumGetFloat8(v);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, v));
	}
}

/* The column value of now (timestamp, or a number of ms), for clamping. */
static Datum
now_value(SyncColumn *col, TimestampTz now)
{
	int64		ms = (int64) (now / 1000) + INT64CONST(946684800000);

	switch (col->basetypid)
	{
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return TimestampGetDatum(now);
		case INT8OID:
			return Int64GetDatum(ms);
		case INT4OID:
			return Int32GetDatum((int32) Min(ms, PG_INT32_MAX));
		case FLOAT8OID:
			return Float8GetDatum((double) ms);
		default:
			return DirectFunctionCall1(int8_numeric, Int64GetDatum(ms));
	}
}

/*
 * last_write_wins and merge's "latest": a pushed timestamp later than the
 * server's clock plus pg_sync.max_clock_skew is brought back to now, before
 * it is compared or stored.
 */
static void
clamp_timestamp(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	SyncColumn *c;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (t->ts_col < 0 || r->rec == NULL || !r->set[t->ts_col] || r->nulls[t->ts_col])
		return;
	c = &t->cols[t->ts_col];
	if (value_millis(c, r->vals[t->ts_col]) >
		value_millis(c, now_value(c, now)) + (double) sync_max_clock_skew_ms)
	{
		r->vals[t->ts_col] = now_value(c, now);
		r->clamped = true;
	}
}

/* Whether the pushed record's timestamp is later than the server row's (a tie: no). */
static bool
client_is_newer(PushTable *pt, PushRecord *r)
{
	int			c = pt->t->ts_col;

	if (!r->set[c] || r->nulls[c])
		return false;
	if (r->server_nulls[c])
		return true;
	return value_millis(&pt->t->cols[c], r->vals[c]) > value_millis(&pt->t->cols[c], r->server[c]);
}

/* --- merge rules --- */

/* The elements of a JSON array value as jsonb values, or NULL when it is not an array. */
static JsonbContainer *
json_array_of(SyncColumn *col, Datum v)
{
	Jsonb	   *jb;

	if (col->basetypid == JSONBOID)
		jb = DatumGetJsonbP(v);
	else
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(OutputFunctionCall(&col->outfn, v))));
	if (!JB_ROOT_IS_ARRAY(jb) || JB_ROOT_IS_SCALAR(jb))
		return NULL;
	return &jb->root;
}

/* Appends one array element to a JSON text being built. */
static void
append_element(StringInfo buf, JsonbValue *v)
{
	if (buf->len > 1)
		appendStringInfoChar(buf, ',');
	if (v->type == jbvBinary)
		JsonbToCString(buf, v->val.binary.data, v->val.binary.len);
	else
		JsonbToCString(buf, &JsonbValueToJsonb(v)->root, 0);
}

/* Whether two jsonb values are equal. */
static bool
jsonb_values_equal(JsonbValue *a, JsonbValue *b)
{
	Jsonb	   *ja = JsonbValueToJsonb(a);
	Jsonb	   *jbb = JsonbValueToJsonb(b);

	return compareJsonbContainers(&ja->root, &jbb->root) == 0;
}

/* The "id" of an object element of a JSON array, as JSON text, or NULL. */
static char *
element_id(JsonbValue *v)
{
	JsonbValue	k,
			   *id;
	StringInfoData buf;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		return NULL;
	k.type = jbvString;
	k.val.string.val = "id";
	k.val.string.len = 2;
	id = findJsonbValueFromContainer(v->val.binary.data, JB_FOBJECT, &k);
	if (id == NULL)
		return NULL;
	initStringInfo(&buf);
	append_element(&buf, id);
	return buf.data;
}

/* The elements of an array container, in order. */
static JsonbValue *
elements_of(JsonbContainer *arr, int *n)
{
	int			count = JsonContainerSize(arr);
	JsonbValue *out = palloc(sizeof(JsonbValue) * (count + 1));
	int			i;

	for (i = 0; i < count; i++)
		out[i] = *getIthJsonbValueFromContainer(arr, i);
	*n = count;
	return out;
}

/*
 * union or append_by_id of two JSON arrays: the server's elements in their
 * order, then the client's new ones; append_by_id replaces a server element
 * by the client's of the same id. Returns the column value, or false when
 * one side is not an array (the client's value is kept).
 */
static bool
merge_json_arrays(SyncColumn *col, Datum server, Datum client, bool by_id, Datum *out)
{
	JsonbContainer *sa = json_array_of(col, server);
	JsonbContainer *ca = json_array_of(col, client);
	JsonbValue *se,
			   *ce;
	int			ns,
				nc,
				i,
				j;
	bool	   *taken;
	StringInfoData buf;

	if (sa == NULL || ca == NULL)
		return false;
	se = elements_of(sa, &ns);
	ce = elements_of(ca, &nc);
	taken = palloc0(sizeof(bool) * (nc + 1));
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (i = 0; i < ns; i++)
	{
		JsonbValue *keep = &se[i];
		char	   *sid = by_id ? element_id(&se[i]) : NULL;

		for (j = 0; j < nc; j++)
		{
			char	   *cid;

			if (taken[j])
				continue;
			if (by_id && sid != NULL)
			{
				cid = element_id(&ce[j]);
				if (cid != NULL && strcmp(cid, sid) == 0)
				{
					keep = &ce[j];	/* the client's version of that id */
					taken[j] = true;
					break;
				}
			}
			else if (!by_id && jsonb_values_equal(&se[i], &ce[j]))
			{
				taken[j] = true;
				break;
			}
		}
		append_element(&buf, keep);
	}
	for (j = 0; j < nc; j++)
		if (!taken[j])
			append_element(&buf, &ce[j]);
	appendStringInfoChar(&buf, ']');
	*out = InputFunctionCall(&col->infn, buf.data, col->ioparam, col->typmod);
	return true;
}

/* union of two SQL arrays: the server's elements, then the client's new ones. */
static Datum
merge_sql_arrays(SyncColumn *col, Datum server, Datum client)
{
	ArrayType  *sa = DatumGetArrayTypeP(server);
	ArrayType  *ca = DatumGetArrayTypeP(client);
	Oid			elem = ARR_ELEMTYPE(sa);
	int16		elen;
	bool		ebyval;
	char		ealign;
	Datum	   *sv,
			   *cv,
			   *out;
	bool	   *sn,
			   *cn,
			   *on;
	int			ns,
				nc,
				n,
				i,
				j;

	get_typlenbyvalalign(elem, &elen, &ebyval, &ealign);
	deconstruct_array(sa, elem, elen, ebyval, ealign, &sv, &sn, &ns);
	deconstruct_array(ca, elem, elen, ebyval, ealign, &cv, &cn, &nc);
	out = palloc(sizeof(Datum) * (ns + nc + 1));
	on = palloc(sizeof(bool) * (ns + nc + 1));
	memcpy(out, sv, sizeof(Datum) * ns);
	memcpy(on, sn, sizeof(bool) * ns);
	n = ns;
	for (j = 0; j < nc; j++)
	{
		bool		found = false;

		for (i = 0; i < n && !found; i++)
			found = (on[i] && cn[j]) ||
				(!on[i] && !cn[j] && datum_image_eq(out[i], cv[j], ebyval, elen));
		if (!found)
		{
			out[n] = cv[j];
			on[n++] = cn[j];
		}
	}
	{
		int			dims[1] = {n};
		int			lbs[1] = {1};

		return PointerGetDatum(construct_md_array(out, on, 1, dims, lbs, elem, elen, ebyval, ealign));
	}
}

/*
 * merge: the record becomes the server row with, column by column, what the
 * rule keeps. Returns whether anything of the client's remains.
 */
static bool
merge_record(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	int			i;
	bool		any = false;
	bool		newer = t->ts_col >= 0 && client_is_newer(pt, r);

	for (i = 0; i < t->ncols; i++)
	{
		SyncColumn *c = &t->cols[i];
		bool		client = true;

		if (!r->set[i] || i == t->key || i == t->owner || !c->writable)
			continue;
		switch (t->rules[i])
		{
			case MR_CLIENT:
				break;
			case MR_SERVER:
				client = false;
				break;
			case MR_LATEST:
				client = newer;
				break;
			case MR_MAX:
			case MR_MIN:
				if (r->nulls[i])
					client = r->server_nulls[i];
				else if (!r->server_nulls[i])
				{
					int			cmp = compare_values(c, r->vals[i], r->server[i]);

					client = t->rules[i] == MR_MAX ? cmp > 0 : cmp < 0;
				}
				break;
			case MR_UNION:
			case MR_APPEND_BY_ID:
				if (!r->nulls[i] && !r->server_nulls[i])
				{
					Datum		merged;

					if (c->kind == SK_JSON)
					{
						if (merge_json_arrays(c, r->server[i], r->vals[i], t->rules[i] == MR_APPEND_BY_ID, &merged))
							r->vals[i] = merged;
					}
					else
						r->vals[i] = merge_sql_arrays(c, r->server[i], r->vals[i]);
				}
				else if (r->nulls[i])
					client = false;	/* null adds nothing */
				break;
		}
		if (!client || same_value(c, r->vals[i], r->nulls[i], r->server[i], r->server_nulls[i]))
		{
			/*
			 * The server's value stays. It is written back rather than left
			 * out, so that merged records keep the columns their device sent
			 * and are written together (one statement per set of columns).
			 */
			r->vals[i] = r->server[i];
			r->nulls[i] = r->server_nulls[i];
		}
		else
			any = true;
	}
	return any;
}

/* --- custom --- */

/* A JSON object (jsonb) as a pushed record. */
static SyncRecord *
record_from_jsonb(Jsonb *jb, char **id)
{
	SyncRecord *rec = palloc0(sizeof(SyncRecord));
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;
	int			cap = 16;

	*id = NULL;
	rec->fields = palloc(sizeof(SyncField) * cap);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		SyncValue	sv;

		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE)
			continue;
		memset(&sv, 0, sizeof(sv));
		switch (v.type)
		{
			case jbvNull:
				sv.type = SV_NULL;
				break;
			case jbvString:
				sv.type = SV_STRING;
				sv.str = pnstrdup(v.val.string.val, v.val.string.len);
				break;
			case jbvNumeric:
				sv.type = SV_NUMBER;
				sv.str = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v.val.numeric)));
				break;
			case jbvBool:
				sv.type = SV_BOOL;
				sv.bval = v.val.boolean;
				break;
			default:
				sv.type = SV_COMPOUND;
				sv.str = JsonbToCString(NULL, v.val.binary.data, v.val.binary.len);
				break;
		}
		if (strcmp(key, "id") == 0)
		{
			*id = sv.type == SV_STRING ? sv.str : NULL;
			continue;
		}
		if (sync_reserved_field(key))
			continue;
		if (rec->nfields == cap)
		{
			cap *= 2;
			rec->fields = repalloc(rec->fields, sizeof(SyncField) * cap);
		}
		rec->fields[rec->nfields].key = key;
		rec->fields[rec->nfields++].value = sv;
	}
	return rec;
}

/*
 * custom: the table's function gets (table name, server row, client record),
 * both as pulls send them (null for a side that deleted), with the caller's
 * rights, and returns the row to store, or NULL to keep the server's.
 */
static bool
custom_record(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;
	char	   *id;
	SyncRecord *row;
	int			f,
				i;

	/* one lookup per push and table: a SQL function keeps its plan across records */
	if (pt->custom_finfo == NULL)
	{
		pt->custom_finfo = palloc0(sizeof(FmgrInfo));
		fmgr_info(t->custom_fn, pt->custom_finfo);
	}
	InitFunctionCallInfoData(*fcinfo, pt->custom_finfo, 3, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(t->name);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].isnull = !r->exists;
	if (r->exists)
		fcinfo->args[1].value = DirectFunctionCall1(jsonb_in,
													CStringGetDatum(sync_row_json(t, r->id, r->server, r->server_nulls)));
	fcinfo->args[2].isnull = r->rec == NULL;
	if (r->rec)
		fcinfo->args[2].value = DirectFunctionCall1(jsonb_in,
													CStringGetDatum(sync_record_json(t, r->id, r->rec)));
	if (pt->custom_finfo->fn_strict && (fcinfo->args[1].isnull || fcinfo->args[2].isnull))
		return false;
	result = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
		return false;
	row = record_from_jsonb(DatumGetJsonbP(result), &id);
	if (!JB_ROOT_IS_OBJECT(DatumGetJsonbP(result)) || (id != NULL && strcmp(id, r->id) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("conflict function %s returned no row of record \"%s\" of table \"%s\"",
						format_procedure(t->custom_fn), r->id, t->name),
				 errdetail("It must return a JSON object (with the same \"id\", or none), or NULL.")));
	/* the row to store: what it names; the server's value for the rest */
	for (i = 0; i < t->ncols; i++)
		r->set[i] = i == t->key || i == t->owner;
	for (f = 0; f < row->nfields; f++)
	{
		for (i = 0; i < t->ncols; i++)
			if (t->cols[i].writable && i != t->key && i != t->owner &&
				strcmp(t->cols[i].name, row->fields[f].key) == 0)
			{
				r->vals[i] = sync_value_to_datum(t, &t->cols[i], r->id, &row->fields[f].value, &r->nulls[i]);
				r->set[i] = true;
			}
	}
	if (r->rec == NULL)
		r->rec = row;			/* (a delete the function turned into a row) */
	return true;
}

/* --- the policies --- */

/* The outcome of settling one conflict. */
static void
settle(PushRecord *r, SyncAction action, const char *resolution)
{
	r->action = action;
	r->resolution = resolution;
}

/* server_wins, client_wins, and version's on_conflict of the same names. */
static void
resolve_plain(PushTable *pt, PushRecord *r, SyncPolicy policy)
{
	if (policy == SP_CLIENT_WINS)
		settle(r, r->rec ? SA_WRITE : SA_DELETE, "client");
	else if (policy == SP_MANUAL)
		settle(r, SA_QUEUE, "manual");
	else
		settle(r, SA_SKIP, "server");
}

/* last_write_wins: the newer timestamp wins; a tie, or a deleted side, keeps the server's. */
static void
resolve_lww(PushTable *pt, PushRecord *r)
{
	if (r->rec != NULL && r->exists && client_is_newer(pt, r))
		settle(r, SA_WRITE, "client");
	else
		settle(r, SA_SKIP, "server");
}

/* merge: the rules, column by column; a deleted side keeps the server's. */
static void
resolve_merge(PushTable *pt, PushRecord *r)
{
	if (r->rec == NULL || !r->exists)
		settle(r, SA_SKIP, "server");
	else if (merge_record(pt, r))
		settle(r, SA_WRITE, "merged");
	else
		settle(r, SA_SKIP, "server");
}

/* Whether a record to write changes anything of the server's row. */
static bool
changes_server_row(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	int			i;

	if (!r->exists)
		return true;
	for (i = 0; i < t->ncols; i++)
		if (r->set[i] && i != t->key && i != t->owner && t->cols[i].writable &&
			!same_value(&t->cols[i], r->vals[i], r->nulls[i], r->server[i], r->server_nulls[i]))
			return true;
	return false;
}

/* custom: the function's row ("merged"), or the server's when it keeps that (NULL or the same row). */
static void
resolve_custom(PushTable *pt, PushRecord *r)
{
	if (custom_record(pt, r) && changes_server_row(pt, r))
		settle(r, SA_WRITE, "merged");
	else
		settle(r, SA_SKIP, "server");
}

/*
 * insert_only: a record is created once; sent again with the same values it
 * is a no-op, with others, or as an update or a delete, it is rejected.
 */
static void
resolve_insert_only(PushTable *pt, PushRecord *r)
{
	SyncTable  *t = pt->t;
	int			i;

	if (r->rec == NULL)
	{
		r->action = SA_REJECT;
		r->resolution = r->conflict ? "rejected" : NULL;
		r->error = "records of this table cannot be deleted by clients";
		return;
	}
	if (!r->exists)
	{
		if (r->conflict)		/* created, then deleted on the server */
		{
			r->action = SA_REJECT;
			r->resolution = "rejected";
			r->error = "this record was deleted on the server";
		}
		else
			r->action = SA_WRITE;
		return;
	}
	for (i = 0; i < t->ncols; i++)
		if (r->set[i] && i != t->owner && t->cols[i].writable &&
			!same_value(&t->cols[i], r->vals[i], r->nulls[i], r->server[i], r->server_nulls[i]))
		{
			r->action = SA_REJECT;
			/* listed with the conflicts only when the server's row is news to the client */
			r->resolution = r->conflict ? "rejected" : NULL;
			r->error = "records of this table cannot be changed once created";
			return;
		}
	r->action = SA_SKIP;		/* the same record again */
}

/* Decides what happens to one record; abort notes the smallest conflicting id in *first. */
static void
resolve_record(PushTable *pt, PushRecord *r, const char **first)
{
	SyncTable  *t = pt->t;

	if (r->action == SA_REJECT)
		return;					/* rejected already: another owner's row, a bad value */
	if (t->policy == SP_LAST_WRITE_WINS || (t->policy == SP_MERGE && t->ts_col >= 0))
		clamp_timestamp(pt, r);
	if (t->policy == SP_INSERT_ONLY && !pt->force)
	{
		resolve_insert_only(pt, r);
		return;
	}
	if (!r->conflict || pt->force)
	{
		r->action = r->rec ? SA_WRITE : SA_DELETE;
		if (r->clamped)
			r->resolution = "client";
		return;
	}
	switch (t->policy == SP_VERSION ? t->on_conflict : t->policy)
	{
		case SP_ABORT:
			if (*first == NULL || strcmp(r->id, *first) < 0)
				*first = r->id;
			break;
		case SP_LAST_WRITE_WINS:
			resolve_lww(pt, r);
			break;
		case SP_MERGE:
			resolve_merge(pt, r);
			break;
		case SP_CUSTOM:
			resolve_custom(pt, r);
			break;
		default:
			resolve_plain(pt, r, t->policy == SP_VERSION ? t->on_conflict : t->policy);
			break;
	}
	if (r->resolution && strcmp(r->resolution, "rejected") != 0)
		pt->conflicts++;
}

/*
 * Decides what happens to every record of a table whose rows are locked,
 * after sync_push_lock() found the conflicts. abort fails the push on the
 * first conflict (SY001, naming the smallest id).
 */
void
sync_push_resolve(PushTable *pt)
{
	const char *first = NULL;
	int			i;

	for (i = 0; i < pt->nrecs; i++)
		resolve_record(pt, &pt->recs[i], &first);
	if (first != NULL)
		sync_conflict_error(pt->t, first);
}

/*
 * A record whose row appeared between the push's locks and its insert (a
 * plain SQL insert committed meanwhile, now locked and read): a conflict
 * like any other, settled by the table's policy.
 */
void
sync_push_resolve_late(PushTable *pt, PushRecord *r)
{
	const char *first = NULL;

	r->action = SA_WRITE;
	if (pt->t->policy == SP_VERSION)
		r->conflict = true;		/* (its version cannot be the new row's) */
	resolve_record(pt, r, &first);
	if (first != NULL)
		sync_conflict_error(pt->t, first);
}
