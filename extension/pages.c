/*
 * pages.c — paged pulls: an answer of more than page_size records is sent
 * in pages, each answered by its own call.
 *
 * A paged pull is up to one snapshot, base: the one its first page was read
 * in. The tables go one after another (in registration order), each in key
 * order -- whole tables by their key, changed ones by the id of their change
 * records -- and a page token (an id of the checkpoint sequence, stored in
 * _pg_sync.pages, never a checkpoint) says where the next page starts. A
 * page reads the rows as they are when it is asked, but leaves out every row
 * changed after base: such a row comes with the next pull, which starts from
 * the last page's token, a checkpoint of base. So across the pages of one
 * pull an id comes at most once, and every change base saw is sent by a
 * page or, when the row changed again while the device paged, by the next
 * pull in its newer state.
 *
 * Asked again, a page token gets the same page: the first answer stores
 * where the page ended and the token it handed out. Page tokens increase
 * (each is taken from the sequence after the one before), and the last
 * page's token is a new checkpoint, above them all.
 *
 * Pages are written down, so a paged pull needs a read-write transaction on
 * the primary; in a read-only one (a standby) an answer that fits in one
 * page is sent as usual, a longer one and every later page fail with SY004
 * (retry on the primary).
 */
#include "pg_sync.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/xid8.h"

static SPIPlanPtr find_plan = NULL;
static SPIPlanPtr find_lock_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr answered_plan = NULL;
static SPIPlanPtr meta_page_plan = NULL;

/* One walk over the tables of a paged pull: from where a page starts. */
typedef struct Walk
{
	StringInfo	out;
	PullCall   *call;
	PullTable  *pts;
	int			ntables;
	SyncToken  *prev;			/* the pull's token (id 0: a first pull) */
	SyncToken  *base;			/* the snapshot the pull is up to */
	long		budget;			/* records left in the page; -1: no limit */
	int			pos;			/* where the page starts */
	char	   *after;
	bool		bounded;		/* a page asked again: up to where it ended */
	int			end_pos;
	char	   *end_after;
	/* where it stopped, when the page is full */
	bool		stopped;
	int			stop_pos;
	char	   *stop_after;
} Walk;

/* --- page rows --- */

/* Reads the page a token names (NULL: none), locking it when asked. As the owner. */
SyncPage *
sync_page_find(int64 token, bool lock)
{
	Datum		args[1];
	int			rc;
	bool		isnull;
	HeapTuple	tup;
	TupleDesc	td;
	SyncPage   *p;
	SPIPlanPtr *slot = lock ? &find_lock_plan : &find_plan;

	if (token <= 0 || token > SYNC_MAX_TOKEN || !sync_schema_02())
		return NULL;
	if (*slot == NULL)
	{
		Oid			types[1] = {INT8OID};

		*slot = sync_prepare(psprintf(
			"SELECT user_id, client_id, prev_id, prev_snap, prev_snap::pg_catalog.text,"
			"       base_snap, base_snap::pg_catalog.text, tables::pg_catalog.text, page_size,"
			"       pos, after, end_pos, end_after, next_id"
			"  FROM _pg_sync.pages WHERE id OPERATOR(pg_catalog.=) $1%s",
			lock ? " FOR UPDATE" : ""), 1, types);
	}
	args[0] = Int64GetDatum(token);
	rc = SPI_execute_plan(*slot, args, NULL, !lock, 1);
	sync_check_spi(rc, SPI_OK_SELECT, "reading a page");
	if (SPI_processed != 1)
		return NULL;
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	p = palloc0(sizeof(SyncPage));
	p->id = token;
	p->user_id = SPI_getvalue(tup, td, 1);
	p->client_id = SPI_getvalue(tup, td, 2);
	p->prev_id = DatumGetInt64(SPI_getbinval(tup, td, 3, &isnull));
	if (p->prev_id != 0)
	{
		p->prev_snap = datumCopy(SPI_getbinval(tup, td, 4, &isnull), false, -1);
		p->prev_text = SPI_getvalue(tup, td, 5);
	}
	p->base_snap = datumCopy(SPI_getbinval(tup, td, 6, &isnull), false, -1);
	p->base_text = SPI_getvalue(tup, td, 7);
	p->tables = SPI_getvalue(tup, td, 8);
	p->page_size = DatumGetInt32(SPI_getbinval(tup, td, 9, &isnull));
	p->pos = DatumGetInt32(SPI_getbinval(tup, td, 10, &isnull));
	p->after = SPI_getvalue(tup, td, 11);
	p->end_pos = DatumGetInt32(SPI_getbinval(tup, td, 12, &isnull));
	p->answered = !isnull;
	p->end_after = SPI_getvalue(tup, td, 13);
	p->next_id = p->answered ? DatumGetInt64(SPI_getbinval(tup, td, 14, &isnull)) : 0;
	return p;
}

/* The tables of a pull as a page row keeps them. */
static char *
tables_json(PullTable *pts, int ntables)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '[');
	for (i = 0; i < ntables; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, "{\"name\":");
		escape_json(&buf, pts[i].ref->desc->name);
		appendStringInfo(&buf, ",\"mode\":\"%s\"}", pts[i].mode == PM_FULL ? "full" : "changes");
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* Writes down the page that starts where a walk stopped; returns its token. */
static int64
new_page(PullCall *call, Walk *w, const char *tables)
{
	Datum		args[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;
	SyncOwnerCtx owner_ctx;
	int64		id;

	sync_owner_enter(&owner_ctx);
	sync_token_check_timeline();
	if (insert_plan == NULL)
	{
		Oid			types[10] = {TEXTOID, TEXTOID, INT8OID, PG_SNAPSHOTOID, PG_SNAPSHOTOID,
		JSONBOID, INT4OID, INT4OID, TEXTOID, INT8OID};

		insert_plan = sync_prepare(
			"INSERT INTO _pg_sync.pages (id, user_id, client_id, prev_id, prev_snap, base_snap,"
			"                            tables, page_size, pos, after)"
			" VALUES ($10, $1, $2, $3, $4, $5, $6, $7, $8, $9)", 10, types);
	}
	id = sync_token_next_id();
	args[0] = CStringGetTextDatum(call->user ? call->user : "");
	if (call->client_id)
		args[1] = CStringGetTextDatum(call->client_id);
	else
		nulls[1] = 'n';
	args[2] = Int64GetDatum(w->prev->id);
	if (w->prev->id != 0)
		args[3] = w->prev->snap;
	else
		nulls[3] = 'n';
	args[4] = w->base->snap;
	args[5] = DirectFunctionCall1(jsonb_in, CStringGetDatum(tables));
	args[6] = Int32GetDatum(call->page_size);
	args[7] = Int32GetDatum(w->stop_pos);
	if (w->stop_after)
		args[8] = CStringGetTextDatum(w->stop_after);
	else
		nulls[8] = 'n';
	args[9] = Int64GetDatum(id);
	rc = SPI_execute_plan(insert_plan, args, nulls, false, 0);
	sync_check_spi(rc, SPI_OK_INSERT, "writing down a page");
	sync_owner_leave(&owner_ctx);
	return id;
}

/* Writes down where a page ended and what it answered. */
static void
page_answered(int64 page, int end_pos, const char *end_after, int64 next)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;
	SyncOwnerCtx owner_ctx;

	sync_owner_enter(&owner_ctx);
	if (answered_plan == NULL)
	{
		Oid			types[4] = {INT8OID, INT4OID, TEXTOID, INT8OID};

		answered_plan = sync_prepare(
			"UPDATE _pg_sync.pages SET end_pos = $2, end_after = $3, next_id = $4"
			" WHERE id OPERATOR(pg_catalog.=) $1", 4, types);
	}
	args[0] = Int64GetDatum(page);
	args[1] = Int32GetDatum(end_pos);
	if (end_after)
		args[2] = CStringGetTextDatum(end_after);
	else
		nulls[2] = 'n';
	args[3] = Int64GetDatum(next);
	rc = SPI_execute_plan(answered_plan, args, nulls, false, 0);
	sync_check_spi(rc, SPI_OK_UPDATE, "writing down a page");
	sync_owner_leave(&owner_ctx);
}

/* --- walking the tables --- */

/* A whole table: its live rows in key order, from after, up to the budget. */
static void
walk_full(Walk *w, PullTable *pt, const char *after, const char *upto_id, SyncPullSink *sink)
{
	SyncTable  *t = pt->ref->desc;
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			n = 3;

	pt->pending = sync_pull_read_pending(pt, w->base);
	if (after)
		args[0] = sync_id_to_datum(t, after);
	else
		nulls[0] = 'n';
	if (upto_id)
		args[1] = sync_id_to_datum(t, upto_id);
	else
		nulls[1] = 'n';
	if (w->budget >= 0)
		args[2] = Int64GetDatum(w->budget + 1);
	else
		nulls[2] = 'n';
	if (t->owner >= 0)
	{
		SyncColumn *oc = &t->cols[t->owner];

		args[n++] = InputFunctionCall(&oc->infn, (char *) pt->owner, oc->ioparam, oc->typmod);
	}
	sink->skip = pt->pending;
	sink->limit = w->budget >= 0 ? (int) w->budget : 0;
	sink->nread = 0;
	sink->last_id = NULL;
	sync_pull_read_rows(pt, w->call, t->page_plan, args, nulls, sink);
}

/*
 * A table of changes: its change records between the pull's token and base
 * in id order, from after, up to the budget; then those rows.
 */
static void
walk_changes(Walk *w, PullTable *pt, const char *after, const char *upto_id, SyncPullSink *sink,
			 long *taken, char **last)
{
	Datum		args[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;
	uint64		i,
				n;
	SyncOwnerCtx owner_ctx;

	sync_owner_enter(&owner_ctx);
	if (meta_page_plan == NULL)
	{
		Oid			types[8] = {INT4OID, TEXTOID, TEXTOID, TEXTOID, PG_SNAPSHOTOID, PG_SNAPSHOTOID,
		TEXTOID, INT8OID};

		meta_page_plan = sync_prepare(
			"SELECT id, deleted,"
			"       CASE WHEN origin OPERATOR(pg_catalog.=) $7 THEN origin_hash END,"
			"       CASE WHEN origin OPERATOR(pg_catalog.=) $7 THEN origin_cols END"
			"  FROM _pg_sync.row_meta"
			" WHERE table_id OPERATOR(pg_catalog.=) $1 AND owner OPERATOR(pg_catalog.=) $2"
			"   AND ($3 IS NULL OR id OPERATOR(pg_catalog.>) $3)"
			"   AND ($4 IS NULL OR id OPERATOR(pg_catalog.<=) $4)"
			"   AND NOT pg_catalog.pg_visible_in_snapshot(xid, $5)"
			"   AND pg_catalog.pg_visible_in_snapshot(xid, $6)"
			" ORDER BY id LIMIT $8", 8, types);
	}
	args[0] = Int32GetDatum(pt->ref->desc->table_id);
	args[1] = CStringGetTextDatum(pt->owner);
	if (after)
		args[2] = CStringGetTextDatum(after);
	else
		nulls[2] = 'n';
	if (upto_id)
		args[3] = CStringGetTextDatum(upto_id);
	else
		nulls[3] = 'n';
	args[4] = w->prev->snap;
	args[5] = w->base->snap;
	if (w->call->origin)
		args[6] = CStringGetTextDatum(w->call->origin);
	else
		nulls[6] = 'n';
	if (w->budget >= 0)
		args[7] = Int64GetDatum(w->budget + 1);
	else
		nulls[7] = 'n';
	rc = SPI_execute_plan(meta_page_plan, args, nulls, true, 0);
	sync_check_spi(rc, SPI_OK_SELECT, "reading a page of changes");
	sync_owner_leave(&owner_ctx);

	n = SPI_processed;
	*taken = (long) n;
	if (w->budget >= 0 && n > (uint64) w->budget)
		n = w->budget;
	*last = NULL;
	for (i = 0; i < n; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *id = SPI_getvalue(tup, td, 1);
		Datum		h;

		*last = id;
		if (DatumGetBool(SPI_getbinval(tup, td, 2, &isnull)))
		{
			sync_pull_append_deleted(pt, id);
			continue;
		}
		pt->live = lappend(pt->live, id);
		h = SPI_getbinval(tup, td, 3, &isnull);
		if (!isnull)
		{
			if (pt->echo == NULL)
				pt->echo = sync_echo_create();
			sync_echo_add(pt->echo, id, DatumGetInt64(h), SPI_getvalue(tup, td, 4));
		}
	}
	sync_pull_send_live(w->out, pt, w->call, sink);
}

/*
 * Walks the tables from where the page starts, writing the changes object
 * (every table of the pull, empty where the page does not reach) into
 * w->out. Stops when the budget is spent with records left.
 */
static void
walk(Walk *w)
{
	int			i;
	bool		done = false;

	appendStringInfoString(w->out, "{\"changes\":{");
	for (i = 0; i < w->ntables; i++)
	{
		PullTable  *pt = &w->pts[i];
		SyncPullSink sink;
		const char *after = i == w->pos ? w->after : NULL;
		const char *upto_id = NULL;
		bool		reached = !done && i >= w->pos;

		if (pt->ref == NULL)
			continue;			/* unregistered or dropped meanwhile */
		if (i > 0 && w->out->data[w->out->len - 1] != '{')
			appendStringInfoChar(w->out, ',');
		escape_json(w->out, pt->ref->desc->name);
		appendStringInfoString(w->out, ":{\"created\":[],\"updated\":[");
		if (reached && w->bounded)
		{
			if (i > w->end_pos || (i == w->end_pos && w->end_after == NULL))
				reached = false;
			else if (i == w->end_pos)
				upto_id = w->end_after;
		}
		if (reached && w->budget == 0)
		{
			/* the page is full: the next one starts with this table */
			w->stopped = true;
			w->stop_pos = i;
			w->stop_after = NULL;
			done = true;
			reached = false;
		}
		if (reached)
		{
			long		taken;
			char	   *last;

			memset(&sink, 0, sizeof(sink));
			sink.updated = w->out;
			sync_pull_prepare_rows(pt->ref->desc);
			if (pt->mode == PM_FULL)
			{
				walk_full(w, pt, after, upto_id, &sink);
				taken = sink.nread;
				last = sink.last_id;
			}
			else
				walk_changes(w, pt, after, upto_id, &sink, &taken, &last);
			if (w->budget >= 0 && taken > w->budget)
			{
				/* more of this table than the page holds */
				w->stopped = true;
				w->stop_pos = i;
				w->stop_after = last;
				w->budget = 0;
				done = true;
			}
			else if (w->budget >= 0)
				w->budget -= taken;
		}
		appendStringInfoString(w->out, "],\"deleted\":[");
		appendBinaryStringInfo(w->out, pt->deleted.data, pt->deleted.len);
		appendStringInfoString(w->out, "]}");
	}
}

/* The token of the last page: a checkpoint of the pull's snapshot. */
static int64
last_token(PullCall *call, SyncToken *base)
{
	SyncOwnerCtx owner_ctx;

	if (!call->can_record)
		return base->id;		/* read-only: the checkpoint it was up to */
	sync_owner_enter(&owner_ctx);
	base->id = 0;
	sync_token_record(base);
	sync_owner_leave(&owner_ctx);
	return base->id;
}

/* Refuses to go on with a paged pull in a read-only transaction. */
static void
needs_primary(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_SYNC_TOKEN_NOT_YET_VISIBLE),
			 errmsg("a paged pull goes on in a read-write transaction on the primary"),
			 errdetail("Its pages are written down."),
			 errhint("Retry the pull on the primary.")));
}

/* Ends the answer: the token, and whether more pages follow. */
static void
finish(StringInfo out, int64 answer, bool more)
{
	appendStringInfo(out, "},\"timestamp\":" INT64_FORMAT, answer);
	if (more)
		appendStringInfoString(out, ",\"hasMore\":true");
	appendStringInfoChar(out, '}');
}

/*
 * The first page of a paged pull (the tables and their modes decided, base
 * the snapshot the pull is up to). Returns the token answered; *more tells
 * whether pages follow.
 */
int64
sync_pull_paged(StringInfo out, PullCall *call, PullTable *pts, int ntables,
				SyncToken *base, bool *more)
{
	Walk		w;
	int64		answer;

	memset(&w, 0, sizeof(w));
	w.out = out;
	w.call = call;
	w.pts = pts;
	w.ntables = ntables;
	w.prev = &call->prev;
	w.base = base;
	w.budget = call->page_size;
	walk(&w);
	*more = w.stopped;
	if (!w.stopped)
		answer = last_token(call, base);
	else
	{
		if (!call->can_record)
			needs_primary();
		answer = new_page(call, &w, tables_json(pts, ntables));
	}
	finish(out, answer, *more);
	return answer;
}

/*
 * A page after the first: the caller's token is a page token
 * (call->prev.page). Asked again, the same page and the same token.
 */
int64
sync_pull_next_page(StringInfo out, PullCall *call, bool *more)
{
	SyncPage   *page;
	SyncOwnerCtx owner_ctx;
	SyncToken	prev,
				base;
	Jsonb	   *tables;
	List	   *names = NIL;
	List	   *refs;
	PullTable  *pts;
	int			ntables,
				i;
	Walk		w;
	int64		answer;

	if (!call->can_record)
		needs_primary();
	/* the page, locked: the same page asked twice at once is answered once */
	sync_owner_enter(&owner_ctx);
	page = sync_page_find(call->prev.id, true);
	sync_owner_leave(&owner_ctx);
	if (page == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYNC_TOKEN_EXPIRED),
				 errmsg("sync token " INT64_FORMAT " has expired", call->prev.id),
				 errhint("Reset the client: pull with last_pulled_at = null.")));
	if (strcmp(page->user_id, call->user ? call->user : "") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("sync token " INT64_FORMAT " is a page of another user's pull", page->id)));
	call->page_size = page->page_size;

	memset(&prev, 0, sizeof(prev));
	prev.id = page->prev_id;
	if (page->prev_id != 0)
	{
		prev.snap = page->prev_snap;
		prev.snap_text = page->prev_text;
		sync_snap_parse(prev.snap_text, &prev.parsed);
	}
	memset(&base, 0, sizeof(base));
	base.snap = page->base_snap;
	base.snap_text = page->base_text;
	sync_snap_parse(base.snap_text, &base.parsed);

	/* the pull's tables, in its order; those gone (or registered anew) since are left out */
	tables = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(page->tables)));
	ntables = JsonContainerSize(&tables->root);
	pts = palloc0(sizeof(PullTable) * (ntables + 1));
	for (i = 0; i < ntables; i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(&tables->root, i);
		JsonbValue	k,
				   *v;

		k.type = jbvString;
		k.val.string.val = "name";
		k.val.string.len = 4;
		v = findJsonbValueFromContainer(e->val.binary.data, JB_FOBJECT, &k);
		names = lappend(names, pnstrdup(v->val.string.val, v->val.string.len));
		k.val.string.val = "mode";
		v = findJsonbValueFromContainer(e->val.binary.data, JB_FOBJECT, &k);
		pts[i].mode = strncmp(v->val.string.val, "full", 4) == 0 ? PM_FULL : PM_CHANGES;
		initStringInfo(&pts[i].deleted);
	}
	sync_owner_enter(&owner_ctx);
	refs = sync_registry_load(NULL, AccessShareLock, names);
	sync_owner_leave(&owner_ctx);
	for (i = 0; i < ntables; i++)
	{
		ListCell   *lc;

		foreach(lc, refs)
		{
			SyncTableRef *ref = lfirst(lc);

			if (strcmp(ref->name, list_nth(names, i)) == 0 && !ref->vanished && ref->desc &&
				sync_snap_visible(&base.parsed, ref->registered_xid))
				pts[i].ref = ref;
		}
		if (pts[i].ref)
			pts[i].owner = pts[i].ref->desc->owner >= 0 ?
				sync_owner_text(pts[i].ref->desc, page->user_id) : "";
	}

	memset(&w, 0, sizeof(w));
	w.out = out;
	w.call = call;
	w.pts = pts;
	w.ntables = ntables;
	w.prev = &prev;
	w.base = &base;
	w.pos = page->pos;
	w.after = page->after;
	if (page->answered)
	{
		/* asked before: the same range of ids, the same token */
		w.budget = -1;
		w.bounded = true;
		w.end_pos = page->end_pos;
		w.end_after = page->end_after;
		walk(&w);
		answer = page->next_id;
		sync_owner_enter(&owner_ctx);
		*more = sync_page_find(answer, true) != NULL;	/* (a fresh look: it may have just committed) */
		sync_owner_leave(&owner_ctx);
	}
	else
	{
		w.budget = page->page_size;
		walk(&w);
		*more = w.stopped;
		if (w.stopped)
		{
			answer = new_page(call, &w, page->tables);
			page_answered(page->id, w.stop_pos, w.stop_after, answer);
		}
		else
		{
			answer = last_token(call, &base);
			page_answered(page->id, ntables, NULL, answer);
		}
	}
	finish(out, answer, *more);
	return answer;
}
