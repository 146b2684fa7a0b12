/*
 * apply.c — the write half of a push, per table: JSON values to column
 * values, row locks, the exact conflict test against the client's token, the
 * conflict policy, and set-based deletes, inserts and updates through plans
 * prepared once per column set.
 */
#include "pg_sync.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#define EPOCH_SHIFT_MS	INT64CONST(946684800000)

static SPIPlanPtr conflict_plan = NULL;
static SPIPlanPtr resend_plan = NULL;

/*
 * Whether an error of a set-based write comes from the data of a record (a
 * value, a constraint, a row-level security check), so that replaying the
 * records one by one can name the one it comes from. Anything else (a
 * cancel, a statement or lock timeout, a deadlock, a shutdown, out of memory)
 * is raised again at once, never replayed.
 */
static bool
record_error(int sqlerrcode)
{
	int			category = ERRCODE_TO_CATEGORY(sqlerrcode);

	return category == ERRCODE_DATA_EXCEPTION ||
		category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE ||
		sqlerrcode == ERRCODE_WITH_CHECK_OPTION_VIOLATION;
}

/* Calls a column's input function; errors name table, record and column. */
static Datum
call_input(SyncTable *t, SyncColumn *col, const char *id, const char *str)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum		result = (Datum) 0;

	PG_TRY();
	{
		result = InputFunctionCall(&col->infn, (char *) str, col->ioparam, col->typmod);
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		if (!record_error(ed->sqlerrcode))
			ReThrowError(ed);
		ereport(ERROR,
				(errcode(ed->sqlerrcode),
				 errmsg("invalid value for column \"%s\" of table \"%s\" in record \"%s\": %s",
						col->name, t->name, id, ed->message)));
	}
	PG_END_TRY();
	return result;
}

/* Raises a type mismatch between a JSON value and a column. */
static void
mismatch(SyncTable *t, SyncColumn *col, const char *id, const char *expected, SyncValue *v)
{
	static const char *names[] = {"null", "a string", "a number", "a boolean", "an object or array"};

	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("invalid value for column \"%s\" of table \"%s\" in record \"%s\": expected %s, got %s",
					col->name, t->name, id, expected, names[v->type])));
}

/* A JSON number written as a plain integer that fits int64 with room, and its value. */
static bool
plain_integer(const char *num, int64 *out)
{
	const char *p = num;
	int			digits = 0;

	if (*p == '-')
		p++;
	for (; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		digits++;
	}
	if (digits == 0 || digits > 18)
		return false;
	*out = strtoll(num, NULL, 10);
	return true;
}

/* A JSON number (valid JSON number syntax) as a numeric, exactly. */
static Numeric
number_numeric(const char *num)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(num),
											   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

/*
 * The text an integer column's input function gets for a JSON number: the
 * number itself when written as an integer, else its value when that is
 * integral (1e3, 12.0), else an error.
 */
static char *
integer_text(SyncTable *t, SyncColumn *col, const char *id, const char *num)
{
	int64		i;
	Numeric		n,
				whole;

	if (plain_integer(num, &i) || strpbrk(num, ".eE") == NULL)
		return (char *) num;
	n = number_numeric(num);
	whole = DatumGetNumeric(DirectFunctionCall2(numeric_trunc, NumericGetDatum(n), Int32GetDatum(0)));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n), NumericGetDatum(whole))) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid value for column \"%s\" of table \"%s\" in record \"%s\": expected an integer, got %s",
						col->name, t->name, id, num)));
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(whole)));
}

/* Raises the error for a number of milliseconds outside the column's range. */
static void
millis_out_of_range(SyncTable *t, SyncColumn *col, const char *id, const char *num)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("invalid value for column \"%s\" of table \"%s\" in record \"%s\": %s milliseconds is out of range",
					col->name, t->name, id, num)));
}

/*
 * A JSON number of milliseconds since 1970 divided by unit (1000: in
 * microseconds, rounded; 86400000 * 1000: in days, rounded down), exactly;
 * false when it is far outside any date.
 */
static bool
millis_in(const char *num, int64 unit_us, int64 *out)
{
	int64		ms;
	Numeric		n;
	bool		err = false;

	/* beyond 2^53 ms (about 285,000 years) nothing is a valid date */
	if (plain_integer(num, &ms))
	{
		if (ms > (INT64CONST(1) << 53) || ms < -(INT64CONST(1) << 53))
			return false;
		*out = unit_us == 1000 ? ms * 1000 : ms / (unit_us / 1000) - (ms % (unit_us / 1000) < 0 ? 1 : 0);
		return true;
	}
	n = numeric_mul_opt_error(number_numeric(num), int64_to_numeric(1000), &err);
	if (err)
		return false;
	if (unit_us == 1000)
		n = DatumGetNumeric(DirectFunctionCall2(numeric_round, NumericGetDatum(n), Int32GetDatum(0)));
	else
		n = DatumGetNumeric(DirectFunctionCall1(numeric_floor,
												NumericGetDatum(numeric_div_opt_error(n, int64_to_numeric(unit_us), &err))));
	if (DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(INT64CONST(1) << 62)))) > 0 ||
		DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(n),
										  NumericGetDatum(int64_to_numeric(-(INT64CONST(1) << 62))))) < 0)
		return false;
	*out = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(n)));
	return true;
}

/*
 * Converts a pushed JSON value to a value of the column's type, following
 * the documented mapping. Numbers reach the column exactly as written.
 */
Datum
sync_value_to_datum(SyncTable *t, SyncColumn *col, const char *id, SyncValue *v, bool *isnull)
{
	*isnull = false;
	if (v->type == SV_NULL)
	{
		*isnull = true;
		return (Datum) 0;
	}
	switch (col->kind)
	{
		case SK_TEXT:
			if (v->type != SV_STRING)
				mismatch(t, col, id, "a string", v);
			return call_input(t, col, id, v->str);
		case SK_JSON:
			if (v->type != SV_STRING && v->type != SV_COMPOUND)
				mismatch(t, col, id, "a string holding a JSON document", v);
			return call_input(t, col, id, v->str);
		case SK_INT:
			if (v->type != SV_NUMBER)
				mismatch(t, col, id, "a number", v);
			return call_input(t, col, id, integer_text(t, col, id, v->str));
		case SK_FLOAT:
		case SK_NUMERIC:
			/* float input refuses values out of range, also non-zero ones that underflow */
			if (v->type != SV_NUMBER)
				mismatch(t, col, id, "a number", v);
			return call_input(t, col, id, v->str);
		case SK_BOOL:
			if (v->type == SV_BOOL)
				return BoolGetDatum(v->bval);
			if (v->type == SV_NUMBER && (strcmp(v->str, "0") == 0 || strcmp(v->str, "1") == 0))
				return BoolGetDatum(v->str[0] == '1');
			mismatch(t, col, id, "a boolean", v);
			break;
		case SK_TIMESTAMP:
			if (v->type == SV_STRING)
				return call_input(t, col, id, v->str);
			if (v->type != SV_NUMBER)
				mismatch(t, col, id, "a number of milliseconds", v);
			{
				int64		us;
				Timestamp	ts;

				if (!millis_in(v->str, 1000, &us))
					millis_out_of_range(t, col, id, v->str);
				ts = us - EPOCH_SHIFT_MS * 1000;
				if (!IS_VALID_TIMESTAMP(ts))
					millis_out_of_range(t, col, id, v->str);
				if (col->typid != col->basetypid)
					return call_input(t, col, id,
									  DatumGetCString(DirectFunctionCall1(col->basetypid == TIMESTAMPOID ? timestamp_out : timestamptz_out,
																		  TimestampGetDatum(ts))));
				return TimestampGetDatum(ts);
			}
		case SK_DATE:
			if (v->type == SV_STRING)
				return call_input(t, col, id, v->str);
			if (v->type != SV_NUMBER)
				mismatch(t, col, id, "a number of milliseconds", v);
			{
				int64		days;
				DateADT		d;

				if (!millis_in(v->str, INT64CONST(86400000) * 1000, &days) ||
					days - 10957 < PG_INT32_MIN || days - 10957 > PG_INT32_MAX)
					millis_out_of_range(t, col, id, v->str);
				d = (DateADT) (days - 10957);
				if (!IS_VALID_DATE(d))
					millis_out_of_range(t, col, id, v->str);
				if (col->typid != col->basetypid)
					return call_input(t, col, id,
									  DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d))));
				return DateADTGetDatum(d);
			}
	}
	return (Datum) 0;
}

/* The key value of a record id; errors name the table and id. */
Datum
sync_id_to_datum(SyncTable *t, const char *id)
{
	return call_input(t, &t->cols[t->key], id, id);
}

/* An array of key values, of the key column's array type. */
Datum
sync_ids_array(SyncTable *t, char **ids, int n)
{
	SyncColumn *k = &t->cols[t->key];
	Datum	   *d = palloc(sizeof(Datum) * (n + 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = sync_id_to_datum(t, ids[i]);
	return PointerGetDatum(construct_array(d, n, k->typid, k->typlen, k->typbyval, k->typalign));
}

/* One record being applied. */
typedef struct ApplyRec
{
	SyncRecord *rec;
	char	   *id;				/* canonical id (the key's output text) */
	bool		exists;
	bool		drop;			/* dropped by the server_wins policy */
	char	   *colset;
} ApplyRec;

/* Column index of a record field, or -1 when the table has no such column. */
static int
column_index(SyncTable *t, const char *name)
{
	int			i;

	for (i = 0; i < t->ncols; i++)
		if (t->cols[i].writable && strcmp(t->cols[i].name, name) == 0)
			return i;
	return -1;
}

/*
 * The array type a column's values are passed in: its own array type, or
 * text[] for types without one (arrays themselves), cast back in SQL.
 */
static Oid
param_type(SyncColumn *c)
{
	return c->write_as_text ? TEXTARRAYOID : c->arraytypid;
}

/*
 * Frees the least recently used write plans of a table until at most keep
 * are left. Clients choose the column sets they push, so the plans a backend
 * keeps must be bounded (SYNC_MAX_WRITE_PLANS per registered table).
 */
static void
evict_write_plans(SyncTable *t, int keep)
{
	SyncWritePlan **prevp = &t->write_plans;
	SyncWritePlan *wp;
	int			n = 0;

	while (*prevp != NULL && n < keep)
	{
		prevp = &(*prevp)->next;
		n++;
	}
	while ((wp = *prevp) != NULL)
	{
		*prevp = wp->next;
		if (wp->insert_plan)
			SPI_freeplan(wp->insert_plan);
		if (wp->update_plan)
			SPI_freeplan(wp->update_plan);
		pfree(wp->colset);
		pfree(wp);
		t->nwrite_plans--;
	}
}

/*
 * Returns the insert and update plans for one set of columns, prepared on
 * first use and kept in a small LRU list per table.
 */
static SyncWritePlan *
write_plan(SyncTable *t, const char *colset)
{
	SyncWritePlan *wp;
	StringInfoData cols,
				unnest,
				names,
				exprs,
				sets;
	Oid		   *types = palloc(sizeof(Oid) * t->ncols);
	int			n = 0,
				i,
				keypos = 0;
	bool		overriding = false;
	MemoryContext old;
	SyncWritePlan **prevp;

	/* most recently used first */
	for (prevp = &t->write_plans; (wp = *prevp) != NULL; prevp = &wp->next)
		if (strcmp(wp->colset, colset) == 0)
		{
			*prevp = wp->next;
			wp->next = t->write_plans;
			t->write_plans = wp;
			return wp;
		}
	evict_write_plans(t, SYNC_MAX_WRITE_PLANS - 1);

	initStringInfo(&cols);
	initStringInfo(&unnest);
	initStringInfo(&names);
	initStringInfo(&exprs);
	initStringInfo(&sets);
	for (i = 0; i < t->ncols; i++)
	{
		SyncColumn *c = &t->cols[i];
		char	   *expr;

		if (colset[i] != '1')
			continue;
		expr = !c->write_as_text ? psprintf("v.c%d", n + 1)
			: psprintf("v.c%d::%s", n + 1,
					   format_type_extended(c->typid, c->typmod,
											FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY));
		if (n > 0)
		{
			appendStringInfoString(&cols, ", ");
			appendStringInfoString(&unnest, ", ");
			appendStringInfoString(&names, ", ");
			appendStringInfoString(&exprs, ", ");
		}
		appendStringInfoString(&cols, quote_identifier(c->name));
		appendStringInfo(&unnest, "pg_catalog.unnest($%d)", n + 1);
		appendStringInfo(&names, "c%d", n + 1);
		appendStringInfoString(&exprs, expr);
		if (i == t->key)
			keypos = n + 1;
		else
		{
			if (sets.len > 0)
				appendStringInfoString(&sets, ", ");
			appendStringInfo(&sets, "%s = %s", quote_identifier(c->name), expr);
		}
		if (c->identity_always)
			overriding = true;
		types[n++] = param_type(c);
	}

	old = MemoryContextSwitchTo(GetMemoryChunkContext(t));
	wp = palloc0(sizeof(SyncWritePlan));
	wp->colset = pstrdup(colset);
	MemoryContextSwitchTo(old);
	wp->insert_plan = sync_prepare(
		psprintf("INSERT INTO %s AS t (%s)%s SELECT %s FROM ROWS FROM (%s) AS v(%s)"
				 " ON CONFLICT (%s) DO NOTHING RETURNING %s::pg_catalog.text",
				 t->qualname, cols.data, overriding ? " OVERRIDING SYSTEM VALUE" : "",
				 exprs.data, unnest.data, names.data, quote_identifier(t->cols[t->key].name),
				 quote_identifier(t->cols[t->key].name)),
		n, types);
	if (sets.len > 0)
		wp->update_plan = sync_prepare(
			psprintf("UPDATE ONLY %s AS t SET %s FROM ROWS FROM (%s) AS v(%s)"
					 " WHERE t.%s OPERATOR(pg_catalog.=) v.c%d",
					 t->qualname, sets.data, unnest.data, names.data,
					 quote_identifier(t->cols[t->key].name), keypos),
			n, types);
	wp->next = t->write_plans;
	t->write_plans = wp;
	t->nwrite_plans++;
	return wp;
}

/*
 * Builds the column arrays of one column set for a list of records. On a
 * per-user table the owner column always holds the caller's user id.
 */
static void
build_arrays(SyncTable *t, const char *colset, ApplyRec **recs, int nrecs,
			 const char *user, Datum *arrays)
{
	int			i,
				r,
				n = 0;
	Datum	   *vals = palloc(sizeof(Datum) * (nrecs + 1));
	bool	   *nulls = palloc(sizeof(bool) * (nrecs + 1));
	int			dims[1] = {nrecs};
	int			lbs[1] = {1};

	for (i = 0; i < t->ncols; i++)
	{
		SyncColumn *c = &t->cols[i];

		if (colset[i] != '1')
			continue;
		for (r = 0; r < nrecs; r++)
		{
			SyncRecord *rec = recs[r]->rec;
			int			f;

			vals[r] = (Datum) 0;
			nulls[r] = true;
			if (i == t->key)
			{
				vals[r] = sync_id_to_datum(t, recs[r]->id);
				nulls[r] = false;
			}
			else if (i == t->owner)
			{
				vals[r] = InputFunctionCall(&c->infn, (char *) user, c->ioparam, c->typmod);
				nulls[r] = false;
			}
			else
				for (f = rec->nfields - 1; f >= 0; f--)
					if (strcmp(rec->fields[f].key, c->name) == 0)
					{
						vals[r] = sync_value_to_datum(t, c, recs[r]->id, &rec->fields[f].value, &nulls[r]);
						break;
					}
			/* no array type: passed as text, cast back in SQL */
			if (!nulls[r] && c->write_as_text)
				vals[r] = CStringGetTextDatum(OutputFunctionCall(&c->outfn, vals[r]));
		}
		if (!c->write_as_text)
			arrays[n++] = PointerGetDatum(construct_md_array(vals, nulls, 1, dims, lbs, c->typid,
															 c->typlen, c->typbyval, c->typalign));
		else
			arrays[n++] = PointerGetDatum(construct_md_array(vals, nulls, 1, dims, lbs, TEXTOID,
															 -1, false, TYPALIGN_INT));
	}
}

/* Raises the push conflict error for a record. */
static void
conflict_error(SyncTable *t, const char *id)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNC_CONFLICT),
			 errmsg("push conflict: record \"%s\" of table \"%s\" changed on the server after the client's last pull",
					id, t->name),
			 errdetail("Nothing of this push was applied."),
			 errhint("Pull, then push again.")));
}

/* qsort comparator for C strings */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/* qsort comparator for ApplyRec, by canonical id */
static int
cmp_apply_rec(const void *a, const void *b)
{
	return strcmp(((const ApplyRec *) a)->id, ((const ApplyRec *) b)->id);
}

/* What run_write needs to rebuild the arguments of a single record. */
typedef struct WriteBatch
{
	SyncTable  *t;
	const char *colset;			/* NULL: a delete of ids */
	ApplyRec  **group;
	char	  **ids;
	int			n;
	const char *user;
} WriteBatch;

/* Arguments of the write for record g of a batch alone. */
static void
batch_args(WriteBatch *b, int g, Datum *args)
{
	if (b->colset)
		build_arrays(b->t, b->colset, &b->group[g], 1, b->user, args);
	else
		args[0] = sync_ids_array(b->t, &b->ids[g], 1);
}

/* Id of record g of a batch. */
static const char *
batch_id(WriteBatch *b, int g)
{
	return b->colset ? b->group[g]->id : b->ids[g];
}

/*
 * Runs one set-based write in a subtransaction. If it fails because of a
 * record's data, replays the records one at a time, in order, in a
 * subtransaction that is rolled back, to find the first record the error
 * comes from (a constraint of the table, say, or a clash with an earlier
 * record), and raises the error again naming table and record. Returns
 * the SPI result code; SPI_tuptable holds RETURNING rows.
 */
static int
run_write(WriteBatch *b, SPIPlanPtr plan, Datum *args)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile ed = NULL;
	volatile int rc = 0;
	volatile int culprit = -1;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		rc = SPI_execute_plan(plan, args, NULL, false, 0);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_END_TRY();
	if (ed == NULL)
		return rc;
	/* a cancel, a timeout, a lock or serialization failure...: at once */
	if (!record_error(ed->sqlerrcode))
		ReThrowError(ed);

	if (b->n == 1)
		culprit = 0;
	else
	{
		Datum	   *one = palloc(sizeof(Datum) * (b->t->ncols + 1));
		ErrorData  *volatile other = NULL;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			for (int g = 0; g < b->n; g++)
			{
				culprit = g;
				batch_args(b, g, one);
				SPI_execute_plan(plan, one, NULL, false, 0);
			}
			culprit = -1;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			other = CopyErrorData();
			FlushErrorState();
		}
		PG_END_TRY();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		/* the replay itself was cancelled (or failed otherwise): that goes first */
		if (other != NULL && !record_error(other->sqlerrcode))
			ReThrowError(other);
	}
	if (culprit >= 0)
		ed->message = psprintf("record \"%s\" of table \"%s\": %s",
							   batch_id(b, culprit), b->t->name, ed->message);
	ReThrowError(ed);
	return 0;					/* not reached */
}

/* qsort comparator for uint32 */
static int
cmp_u32(const void *a, const void *b)
{
	uint32		x = *(const uint32 *) a;
	uint32		y = *(const uint32 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Serialises pushes that touch the same records, before any row is locked:
 * an exclusive lock per record id (a hash of it) in ascending order, under a
 * shared lock on the table; a push of more than SYNC_PUSH_KEY_LOCKS distinct
 * ids takes the table's lock exclusively instead. Tables are pushed in
 * registration order, so every push takes these locks in one global order and
 * two pushes never deadlock, whether the rows exist or are being created.
 * The locks live in a space of their own among advisory locks (field 4 of
 * the tag, see README) and go with the transaction.
 */
static void
lock_push_keys(SyncTable *t, char **ids, int n)
{
	uint32	   *h = palloc(sizeof(uint32) * (n + 1));
	int			nh = 0,
				i;
	LOCKTAG		tag;

	for (i = 0; i < n; i++)
		h[i] = hash_bytes((const unsigned char *) ids[i], strlen(ids[i]));
	qsort(h, n, sizeof(uint32), cmp_u32);
	for (i = 0; i < n; i++)
		if (nh == 0 || h[nh - 1] != h[i])
			h[nh++] = h[i];

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) t->table_id, 0, SYNC_LOCKTAG_TABLE);
	(void) LockAcquire(&tag, nh > SYNC_PUSH_KEY_LOCKS ? ExclusiveLock : ShareLock, false, false);
	if (nh > SYNC_PUSH_KEY_LOCKS)
		return;
	for (i = 0; i < nh; i++)
	{
		SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) t->table_id, h[i], SYNC_LOCKTAG_RECORD);
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
	}
}

/* Locks the visible rows among ids; returns their ids, and owners when per-user. */
static void
lock_rows(SyncTable *t, char **ids, int n, HTAB *existing, HTAB *foreign, const char *user)
{
	int			rc;
	uint64		j;
	Datum		arg[1];

	if (t->lock_plan == NULL)
		t->lock_plan = sync_prepare(
			psprintf("SELECT %s::pg_catalog.text, %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)"
					 " ORDER BY 1 FOR UPDATE",
					 quote_identifier(t->cols[t->key].name),
					 t->owner >= 0 ? psprintf("%s::pg_catalog.text", quote_identifier(t->cols[t->owner].name)) : "NULL",
					 t->qualname, quote_identifier(t->cols[t->key].name)),
			1, &t->cols[t->key].arraytypid);
	arg[0] = sync_ids_array(t, ids, n);
	rc = SPI_execute_plan(t->lock_plan, arg, NULL, false, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "locking rows");
	for (j = 0; j < SPI_processed; j++)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1);
		char	   *own = SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 2);

		sync_idset_add(existing, id);
		if (t->owner >= 0 && (own == NULL || strcmp(own, user) != 0))
			sync_idset_add(foreign, id);
	}
}

/*
 * A push to a pull-only table: every record is rejected (listed in
 * experimentalRejectedIds; WatermelonDB keeps it on the device, unsynced),
 * nothing is written, and the rest of the push applies. So that the device
 * can drop its local edit and get the server's state back, each rejected
 * id is marked as changed in the caller's scope: the next pull sends the
 * server's row, or the id in "deleted" when the caller has no such row.
 */
static void
reject_pull_only(SyncTable *t, SyncTableChanges *tc, const char *user, List **rejected)
{
	int			nall = tc->nrecords + tc->ndeleted;
	char	  **ids = palloc(sizeof(char *) * (nall + 1));
	Datum	   *idd = palloc(sizeof(Datum) * (nall + 1));
	Datum	   *gone = palloc(sizeof(Datum) * (nall + 1));
	HTAB	   *seen = sync_idset_create();
	HTAB	   *mine = sync_idset_create();
	const char *scope = t->owner >= 0 ? user : "";
	Datum		args[5];
	Oid			types[5] = {INT4OID, TEXTARRAYOID, TEXTOID, XID8OID, BOOLARRAYOID};
	SyncOwnerCtx owner_ctx;
	int			n = 0,
				i,
				rc;
	uint64		j;

	for (i = 0; i < nall; i++)
	{
		const char *raw = i < tc->nrecords ? tc->records[i].id : tc->deleted[i - tc->nrecords];
		char	   *id = OutputFunctionCall(&t->cols[t->key].outfn, sync_id_to_datum(t, raw));

		if (sync_idset_has(seen, id))
			continue;
		sync_idset_add(seen, id);
		ids[n++] = id;
	}

	/* which of them the caller can see as its own (RLS and GRANTs apply) */
	if (t->exists_plan == NULL)
		t->exists_plan = sync_prepare(
			psprintf("SELECT %s::pg_catalog.text, %s FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)",
					 quote_identifier(t->cols[t->key].name),
					 t->owner >= 0 ? psprintf("%s::pg_catalog.text", quote_identifier(t->cols[t->owner].name)) : "''",
					 t->qualname, quote_identifier(t->cols[t->key].name)),
			1, &t->cols[t->key].arraytypid);
	args[0] = sync_ids_array(t, ids, n);
	rc = SPI_execute_plan(t->exists_plan, args, NULL, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading rows");
	for (j = 0; j < SPI_processed; j++)
	{
		char	   *own = SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 2);

		if (own != NULL && strcmp(own, scope) == 0)
			sync_idset_add(mine, SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1));
	}
	for (i = 0; i < n; i++)
	{
		idd[i] = CStringGetTextDatum(ids[i]);
		gone[i] = BoolGetDatum(!sync_idset_has(mine, ids[i]));
		*rejected = lappend(*rejected, ids[i]);
	}

	sync_owner_enter(&owner_ctx);
	if (resend_plan == NULL)
		resend_plan = sync_prepare(
			"INSERT INTO _pg_sync.row_meta AS m (table_id, id, owner, xid, deleted)"
			" SELECT $1, r.id, $3, $4, r.gone"
			"   FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($5)) AS r(id, gone)"
			" ON CONFLICT (table_id, id, owner) DO UPDATE"
			"   SET xid = excluded.xid, deleted = excluded.deleted", 5, types);
	args[0] = Int32GetDatum(t->table_id);
	args[1] = PointerGetDatum(construct_array(idd, n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = CStringGetTextDatum(scope);
	args[3] = FullTransactionIdGetDatum(GetTopFullTransactionId());
	args[4] = PointerGetDatum(construct_array(gone, n, BOOLOID, 1, true, TYPALIGN_CHAR));
	rc = SPI_execute_plan(resend_plan, args, NULL, false, 0);
	sync_owner_leave(&owner_ctx);
	sync_check_spi(rc, SPI_OK_INSERT, "marking rejected records for the next pull");
}

/*
 * Applies one table's entry of a push. Runs inside SPI as the caller, so
 * GRANTs and row-level security apply; the change records are read as the
 * extension owner. On a per-user table (user != NULL) created records get
 * the caller as owner, and a record whose id belongs to a row the caller may
 * not write (another user's, or hidden by row-level security) is rejected:
 * not applied, its id added to *rejected. Deleting such a row is ignored, as
 * for a missing row.
 */
void
sync_apply_table(SyncTable *t, SyncTableChanges *tc, SyncToken *tok, bool new_since_token,
				 const char *user, int64 *counts, List **rejected)
{
	int			nrec = tc->nrecords;
	int			nall = tc->nrecords + tc->ndeleted;
	ApplyRec   *recs;
	char	  **delids;
	char	  **allids;
	bool	   *deldrop;
	HTAB	   *seen,
			   *existing,
			   *foreign,
			   *conflicts;
	Datum		arg[4];
	char		argnulls[4];
	int			i,
				rc;
	uint64		j;
	SyncOwnerCtx owner_ctx;
	bool		check_all = tok->id == 0 || new_since_token;
	char	  **sorted;
	int			nc = 0;

	if (nall == 0)
		return;
	if (t->owner >= 0)
		user = sync_owner_text(t, user);	/* as the owner column holds it */
	if (t->pull_only)
	{
		reject_pull_only(t, tc, user, rejected);
		return;
	}

	/* canonical ids, each at most once per push */
	seen = sync_idset_create();
	recs = palloc0(sizeof(ApplyRec) * (nrec + 1));
	allids = palloc(sizeof(char *) * (nall + 1));
	delids = palloc(sizeof(char *) * (tc->ndeleted + 1));
	deldrop = palloc0(sizeof(bool) * (tc->ndeleted + 1));
	for (i = 0; i < nall; i++)
	{
		const char *raw = i < nrec ? tc->records[i].id : tc->deleted[i - nrec];
		SyncColumn *k = &t->cols[t->key];
		char	   *id = OutputFunctionCall(&k->outfn, sync_id_to_datum(t, raw));

		if (sync_idset_has(seen, id))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("record \"%s\" of table \"%s\" appears more than once in the push",
							raw, t->name),
					 errdetail("Nothing of this push was applied.")));
		sync_idset_add(seen, id);
		allids[i] = id;
		if (i < nrec)
		{
			recs[i].rec = &tc->records[i];
			recs[i].id = id;
		}
		else
			delids[i - nrec] = id;
	}

	/* lock the visible rows, in key order, waiting for their writers */
	existing = sync_idset_create();
	foreign = sync_idset_create();
	lock_push_keys(t, allids, nall);
	lock_rows(t, allids, nall, existing, foreign, user);

	/* conflicts: rows changed after the token, read with a fresh snapshot */
	conflicts = sync_idset_create();
	sync_owner_enter(&owner_ctx);
	if (conflict_plan == NULL)
	{
		Oid			types[4] = {INT4OID, TEXTARRAYOID, PG_SNAPSHOTOID, TEXTOID};

		conflict_plan = sync_prepare(
			"SELECT DISTINCT id FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) ANY($2)"
			"   AND ($4 IS NULL OR owner OPERATOR(pg_catalog.=) $4)"
			"   AND ($3 IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(xid, $3))", 4, types);
	}
	{
		Datum	   *td = palloc(sizeof(Datum) * (nall + 1));

		for (i = 0; i < nall; i++)
			td[i] = CStringGetTextDatum(allids[i]);
		arg[0] = Int32GetDatum(t->table_id);
		arg[1] = PointerGetDatum(construct_array(td, nall, TEXTOID, -1, false, TYPALIGN_INT));
		arg[2] = tok->id != 0 ? tok->snap : (Datum) 0;
		arg[3] = t->owner >= 0 ? CStringGetTextDatum(user) : (Datum) 0;
		argnulls[0] = argnulls[1] = ' ';
		argnulls[2] = tok->id != 0 ? ' ' : 'n';
		argnulls[3] = t->owner >= 0 ? ' ' : 'n';
	}
	rc = SPI_execute_plan(conflict_plan, arg, argnulls, false, 0);
	sync_owner_leave(&owner_ctx);
	sync_check_spi(rc, SPI_OK_SELECT, "checking conflicts");
	for (j = 0; j < SPI_processed; j++)
		sync_idset_add(conflicts, SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1));
	if (check_all)
		for (i = 0; i < nall; i++)
			if (sync_idset_has(existing, allids[i]) && !sync_idset_has(foreign, allids[i]))
				sync_idset_add(conflicts, allids[i]);

	sorted = palloc(sizeof(char *) * (nall + 1));
	for (i = 0; i < nall; i++)
		if (sync_idset_has(conflicts, allids[i]))
			sorted[nc++] = allids[i];
	if (nc > 0 && t->policy == SP_ABORT)
	{
		/* name the smallest conflicting id, so the error is stable */
		qsort(sorted, nc, sizeof(char *), cmp_str);
		conflict_error(t, sorted[0]);
	}
	counts[3] += nc;			/* settled by the policy */
	for (i = 0; i < nrec; i++)
	{
		recs[i].exists = sync_idset_has(existing, recs[i].id);
		recs[i].drop = t->policy == SP_SERVER_WINS && sync_idset_has(conflicts, recs[i].id);
		if (sync_idset_has(foreign, recs[i].id))
		{
			recs[i].drop = true;
			*rejected = lappend(*rejected, recs[i].id);
		}
	}
	for (i = 0; i < tc->ndeleted; i++)
		deldrop[i] = (t->policy == SP_SERVER_WINS && sync_idset_has(conflicts, delids[i])) ||
			sync_idset_has(foreign, delids[i]);

	/* deletes */
	{
		int			nd = 0;

		/*
		 * Only rows locked above: a row missing then is already what the
		 * client wants, and one created since is not the client's to delete.
		 */
		for (i = 0; i < tc->ndeleted; i++)
			if (!deldrop[i] && sync_idset_has(existing, delids[i]))
				delids[nd++] = delids[i];
		if (nd > 0)
		{
			WriteBatch	b = {t, NULL, NULL, delids, nd, user};

			if (t->delete_plan == NULL)
				t->delete_plan = sync_prepare(
					psprintf("DELETE FROM ONLY %s WHERE %s OPERATOR(pg_catalog.=) ANY($1)", t->qualname,
							 quote_identifier(t->cols[t->key].name)),
					1, &t->cols[t->key].arraytypid);
			arg[0] = sync_ids_array(t, delids, nd);
			rc = run_write(&b, t->delete_plan, arg);
			sync_check_spi(rc, SPI_OK_DELETE, "deleting rows");
			counts[2] += SPI_processed;
		}
	}

	/*
	 * Records in id order: concurrent pushes of the same new ids then insert
	 * them in the same order and wait for each other instead of deadlocking.
	 */
	qsort(recs, nrec, sizeof(ApplyRec), cmp_apply_rec);

	/* column set of every record; the owner column is always written */
	for (i = 0; i < nrec; i++)
	{
		char	   *cs = palloc(t->ncols + 1);
		int			f;

		memset(cs, '0', t->ncols);
		cs[t->ncols] = '\0';
		cs[t->key] = '1';
		if (t->owner >= 0)
			cs[t->owner] = '1';
		for (f = 0; f < recs[i].rec->nfields; f++)
		{
			int			c = column_index(t, recs[i].rec->fields[f].key);

			if (c >= 0)
				cs[c] = '1';
		}
		recs[i].colset = cs;
	}

	/* inserts, then updates, one statement per column set */
	for (int pass = 0; pass < 2; pass++)
	{
		bool	   *done = palloc0(sizeof(bool) * (nrec + 1));

		for (i = 0; i < nrec; i++)
		{
			ApplyRec  **group;
			int			ng = 0,
						g;
			SyncWritePlan *wp;
			Datum	   *arrays;
			WriteBatch	batch;

			if (done[i] || recs[i].drop || recs[i].exists != (pass == 1))
				continue;
			/*
			 * One statement per run of records (in id order) sharing a column
			 * set, so rows are always written in id order.
			 */
			group = palloc(sizeof(ApplyRec *) * nrec);
			for (g = i; g < nrec; g++)
			{
				if (done[g] || recs[g].drop || recs[g].exists != (pass == 1))
					continue;
				if (strcmp(recs[g].colset, recs[i].colset) != 0)
					break;
				group[ng++] = &recs[g];
				done[g] = true;
			}
			wp = write_plan(t, recs[i].colset);
			arrays = palloc(sizeof(Datum) * t->ncols);
			build_arrays(t, recs[i].colset, group, ng, user, arrays);
			batch.t = t;
			batch.colset = recs[i].colset;
			batch.group = group;
			batch.ids = NULL;
			batch.n = ng;
			batch.user = user;
			if (pass == 0)
			{
				HTAB	   *inserted = sync_idset_create();
				char	  **missing = palloc(sizeof(char *) * ng);
				int			nm = 0;

				rc = run_write(&batch, wp->insert_plan, arrays);
				sync_check_spi(rc, SPI_OK_INSERT_RETURNING, "inserting rows");
				counts[0] += SPI_processed;
				for (j = 0; j < SPI_processed; j++)
					sync_idset_add(inserted, SPI_getvalue(SPI_tuptable->vals[j], SPI_tuptable->tupdesc, 1));
				for (g = 0; g < ng; g++)
					if (!sync_idset_has(inserted, group[g]->id))
						missing[nm++] = group[g]->id;
				if (nm > 0)
				{
					/*
					 * The id exists, yet was not visible when the rows were
					 * locked: created by someone else since (visible now: a
					 * conflict), or a row the caller may not see or write
					 * (rejected, like another user's).
					 */
					HTAB	   *now = sync_idset_create();
					HTAB	   *now_foreign = sync_idset_create();

					lock_rows(t, missing, nm, now, now_foreign, user);
					for (g = 0; g < ng; g++)
					{
						if (sync_idset_has(inserted, group[g]->id))
							continue;
						if (!sync_idset_has(now, group[g]->id) || sync_idset_has(now_foreign, group[g]->id))
						{
							group[g]->drop = true;
							*rejected = lappend(*rejected, group[g]->id);
						}
						else if (t->policy == SP_ABORT)
							conflict_error(t, group[g]->id);
						else
						{
							counts[3]++;
							if (t->policy == SP_CLIENT_WINS)
								group[g]->exists = true;	/* updated in the next pass */
							else
								group[g]->drop = true;
						}
					}
				}
			}
			else if (wp->update_plan)
			{
				rc = run_write(&batch, wp->update_plan, arrays);
				sync_check_spi(rc, SPI_OK_UPDATE, "updating rows");
				counts[1] += SPI_processed;
			}
			else
				counts[1] += ng;
		}
	}
}
