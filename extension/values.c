/*
 * values.c — the value mapping, both ways, in one place (README "Value
 * mapping"): a column value to its WatermelonDB JSON (pull), and a pushed
 * JSON value to a value of the column's type (push). Dates travel as epoch
 * milliseconds, numbers natively and exactly, JSON documents as strings,
 * everything else as the type's text.
 */
#include "pg_sync.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* milliseconds between 1970-01-01 and 2000-01-01 */
#define EPOCH_SHIFT_MS	INT64CONST(946684800000)

/* Floor division of a by b (b > 0). */
static inline int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	return (a % b != 0 && a < 0) ? q - 1 : q;
}

#define BYTES_OF(c)	(UINT64CONST(0x0101010101010101) * (uint64) (c))
#define HIGH_BITS	BYTES_OF(0x80)

/*
 * Whether any of the 8 bytes of w is below ' ', '"' or '\\': the bytes JSON
 * escapes. Exact as a yes/no (the classic "has a zero byte" / "has a byte less
 * than n" tests, n <= 128).
 */
static inline bool
word_needs_escape(uint64 w)
{
	uint64		quote = w ^ BYTES_OF('"');
	uint64		backslash = w ^ BYTES_OF('\\');

	return (((w - BYTES_OF(' ')) & ~w) |
			((quote - BYTES_OF(1)) & ~quote) |
			((backslash - BYTES_OF(1)) & ~backslash)) & HIGH_BITS;
}

/*
 * Appends a string as a JSON string, escaped exactly as escape_json()
 * escapes it, but copying the runs that need no escaping whole (most text),
 * found 8 bytes at a time.
 */
void
sync_escape_json(StringInfo buf, const char *s, int len)
{
	const char *end = s + len;
	const char *run = s;

	enlargeStringInfo(buf, len + 2);
	appendStringInfoCharMacro(buf, '"');
	for (; s < end; s++)
	{
		unsigned char c;
		const char *esc;

		while (end - s >= 8)
		{
			uint64		w;

			memcpy(&w, s, 8);
			if (word_needs_escape(w))
				break;
			s += 8;
		}
		if (s == end)
			break;
		c = (unsigned char) *s;
		if (c >= ' ' && c != '"' && c != '\\')
			continue;
		if (s > run)
			appendBinaryStringInfo(buf, run, s - run);
		run = s + 1;
		switch (c)
		{
			case '\b':
				esc = "\\b";
				break;
			case '\f':
				esc = "\\f";
				break;
			case '\n':
				esc = "\\n";
				break;
			case '\r':
				esc = "\\r";
				break;
			case '\t':
				esc = "\\t";
				break;
			case '"':
				esc = "\\\"";
				break;
			case '\\':
				esc = "\\\\";
				break;
			default:
				appendStringInfo(buf, "\\u%04x", (int) c);
				continue;
		}
		appendBinaryStringInfo(buf, esc, 2);
	}
	if (s > run)
		appendBinaryStringInfo(buf, run, s - run);
	appendStringInfoCharMacro(buf, '"');
}

/* Appends one column value in the documented JSON mapping. */
void
sync_encode_value(StringInfo buf, SyncColumn *col, Datum value, bool isnull)
{
	char		tmp[64];
	char	   *s;

	if (isnull)
	{
		appendBinaryStringInfo(buf, "null", 4);
		return;
	}
	switch (col->kind)
	{
		case SK_INT:
			if (col->basetypid == INT8OID)
				pg_lltoa(DatumGetInt64(value), tmp);
			else if (col->basetypid == INT4OID)
				pg_ltoa(DatumGetInt32(value), tmp);
			else
				pg_ltoa((int32) DatumGetInt16(value), tmp);
			appendStringInfoString(buf, tmp);
			break;
		case SK_FLOAT:
			{
				double		d = col->basetypid == FLOAT8OID ? DatumGetFloat8(value)
					: (double) DatumGetFloat4(value);

				if (isnan(d) || isinf(d))
					appendBinaryStringInfo(buf, "null", 4);
				else if (col->basetypid == FLOAT8OID)
				{
					int			n = double_to_shortest_decimal_buf(d, tmp);

					appendBinaryStringInfo(buf, tmp, n);
				}
				else
				{
					int			n = float_to_shortest_decimal_buf(DatumGetFloat4(value), tmp);

					appendBinaryStringInfo(buf, tmp, n);
				}
			}
			break;
		case SK_NUMERIC:
			s = OutputFunctionCall(&col->outfn, value);
			if (s[0] == 'N' || s[0] == 'I' || (s[0] == '-' && s[1] == 'I'))
				appendBinaryStringInfo(buf, "null", 4);
			else
				appendStringInfoString(buf, s);
			break;
		case SK_BOOL:
			if (DatumGetBool(value))
				appendBinaryStringInfo(buf, "true", 4);
			else
				appendBinaryStringInfo(buf, "false", 5);
			break;
		case SK_TIMESTAMP:
			{
				Timestamp	ts = DatumGetTimestamp(value);

				if (TIMESTAMP_NOT_FINITE(ts))
					appendBinaryStringInfo(buf, "null", 4);
				else
				{
					pg_lltoa(floor_div(ts, 1000) + EPOCH_SHIFT_MS, tmp);
					appendStringInfoString(buf, tmp);
				}
			}
			break;
		case SK_DATE:
			{
				DateADT		d = DatumGetDateADT(value);

				if (DATE_NOT_FINITE(d))
					appendBinaryStringInfo(buf, "null", 4);
				else
				{
					pg_lltoa((int64) d * INT64CONST(86400000) + EPOCH_SHIFT_MS, tmp);
					appendStringInfoString(buf, tmp);
				}
			}
			break;
		case SK_JSON:
		case SK_TEXT:
			if (col->basetypid == TEXTOID || col->basetypid == VARCHAROID)
			{
				text	   *t = DatumGetTextPP(value);

				sync_escape_json(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
			}
			else
			{
				s = OutputFunctionCall(&col->outfn, value);
				sync_escape_json(buf, s, strlen(s));
			}
			break;
	}
}

/* --- JSON to column values (push) --- */

/* Calls a column's input function (errors get the record's context). */
static inline Datum
call_input(SyncColumn *col, const char *str)
{
	return InputFunctionCall(&col->infn, (char *) str, col->ioparam, col->typmod);
}

/* Raises a type mismatch between a JSON value and a column. */
static void
mismatch(const char *expected, SyncValue *v)
{
	static const char *names[] = {"null", "a string", "a number", "a boolean", "an object or array"};

	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("expected %s, got %s", expected, names[v->type])));
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
integer_text(const char *num)
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
				 errmsg("expected an integer, got %s", num)));
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(whole)));
}

/* Raises the error for a number of milliseconds outside the column's range. */
static void
millis_out_of_range(const char *num)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("%s milliseconds is out of range", num)));
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

/* The conversion of one value, as an error's context names it. */
typedef struct ValueContext
{
	SyncTable  *t;
	SyncColumn *col;
	const char *id;
} ValueContext;

static void
value_context(void *arg)
{
	ValueContext *vc = arg;

	if (vc->col == &vc->t->cols[vc->t->key])
		errcontext("record \"%s\" of table \"%s\": its id", vc->id, vc->t->name);
	else
		errcontext("record \"%s\" of table \"%s\", column \"%s\"", vc->id, vc->t->name, vc->col->name);
}

static Datum value_to_datum(SyncColumn *col, SyncValue *v, bool *isnull);

/*
 * Converts a pushed JSON value to a value of the column's type, following
 * the documented mapping (numbers reach the column exactly as written). An
 * error names the record, table and column in its context.
 */
Datum
sync_value_to_datum(SyncTable *t, SyncColumn *col, const char *id, SyncValue *v, bool *isnull)
{
	ValueContext vc = {t, col, id};
	ErrorContextCallback cb;
	Datum		result;

	cb.callback = value_context;
	cb.arg = &vc;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	result = value_to_datum(col, v, isnull);
	error_context_stack = cb.previous;
	return result;
}

static Datum
value_to_datum(SyncColumn *col, SyncValue *v, bool *isnull)
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
				mismatch("a string", v);
			return call_input(col, v->str);
		case SK_JSON:
			if (v->type != SV_STRING && v->type != SV_COMPOUND)
				mismatch("a string holding a JSON document", v);
			return call_input(col, v->str);
		case SK_INT:
			if (v->type != SV_NUMBER)
				mismatch("a number", v);
			return call_input(col, integer_text(v->str));
		case SK_FLOAT:
		case SK_NUMERIC:
			/* float input refuses values out of range, also non-zero ones that underflow */
			if (v->type != SV_NUMBER)
				mismatch("a number", v);
			return call_input(col, v->str);
		case SK_BOOL:
			if (v->type == SV_BOOL)
				return BoolGetDatum(v->bval);
			if (v->type == SV_NUMBER && (strcmp(v->str, "0") == 0 || strcmp(v->str, "1") == 0))
				return BoolGetDatum(v->str[0] == '1');
			mismatch("a boolean", v);
			break;
		case SK_TIMESTAMP:
			if (v->type == SV_STRING)
				return call_input(col, v->str);
			if (v->type != SV_NUMBER)
				mismatch("a number of milliseconds", v);
			{
				int64		us;
				Timestamp	ts;

				if (!millis_in(v->str, 1000, &us))
					millis_out_of_range(v->str);
				ts = us - EPOCH_SHIFT_MS * 1000;
				if (!IS_VALID_TIMESTAMP(ts))
					millis_out_of_range(v->str);
				/* a precision of the column's (timestamptz(0)) rounds, as a cast would */
				if (col->typmod >= 0 && col->typid == col->basetypid)
					ts = DatumGetTimestamp(DirectFunctionCall2(col->basetypid == TIMESTAMPOID ?
															   timestamp_scale : timestamptz_scale,
															   TimestampGetDatum(ts),
															   Int32GetDatum(col->typmod)));
				if (col->typid != col->basetypid)
					return call_input(col,
									  DatumGetCString(DirectFunctionCall1(col->basetypid == TIMESTAMPOID ? timestamp_out : timestamptz_out,
																		  TimestampGetDatum(ts))));
				return TimestampGetDatum(ts);
			}
		case SK_DATE:
			if (v->type == SV_STRING)
				return call_input(col, v->str);
			if (v->type != SV_NUMBER)
				mismatch("a number of milliseconds", v);
			{
				int64		days;
				DateADT		d;

				if (!millis_in(v->str, INT64CONST(86400000) * 1000, &days) ||
					days - 10957 < PG_INT32_MIN || days - 10957 > PG_INT32_MAX)
					millis_out_of_range(v->str);
				d = (DateADT) (days - 10957);
				if (!IS_VALID_DATE(d))
					millis_out_of_range(v->str);
				if (col->typid != col->basetypid)
					return call_input(col,
									  DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d))));
				return DateADTGetDatum(d);
			}
	}
	return (Datum) 0;
}

/* The key value of a record id (ids travel as strings, whatever the key's type). */
Datum
sync_id_to_datum(SyncTable *t, const char *id)
{
	ValueContext vc = {t, &t->cols[t->key], id};
	ErrorContextCallback cb;
	Datum		result;

	cb.callback = value_context;
	cb.arg = &vc;
	cb.previous = error_context_stack;
	error_context_stack = &cb;
	result = call_input(&t->cols[t->key], id);
	error_context_stack = cb.previous;
	return result;
}


/*
 * Whether a record field is WatermelonDB's bookkeeping, never a column
 * value: _status and _changed (the record's id travels as "id").
 */
bool
sync_reserved_field(const char *name)
{
	return strcmp(name, "_status") == 0 || strcmp(name, "_changed") == 0;
}
