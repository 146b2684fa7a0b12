/*
 * pg_sync.h — shared types and entry points of the pg_sync extension.
 *
 * A registered table is described by a SyncTable (registry.c); tokens are
 * checkpoint ids resolved by token.c; pull.c and push.c orchestrate; encode.c
 * writes JSON, decode.c reads it.
 */
#ifndef PG_SYNC_H
#define PG_SYNC_H

#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "storage/lockdefs.h"

/*
 * Marks a function that does not return. PostgreSQL 18 replaced
 * pg_attribute_noreturn(), written after a declaration, with pg_noreturn,
 * written before it; this one goes before.
 */
#if PG_VERSION_NUM >= 180000
#define SYNC_NORETURN pg_noreturn
#else
#define SYNC_NORETURN pg_attribute_noreturn()
#endif

/* SQLSTATEs of our own (class SY) */
#define ERRCODE_SYNC_CONFLICT		MAKE_SQLSTATE('S','Y','0','0','1')
#define ERRCODE_SYNC_TOKEN_EXPIRED	MAKE_SQLSTATE('S','Y','0','0','2')
#define ERRCODE_SYNC_TOKEN_UNKNOWN	MAKE_SQLSTATE('S','Y','0','0','3')
#define ERRCODE_SYNC_TOKEN_NOT_YET_VISIBLE	MAKE_SQLSTATE('S','Y','0','0','4')
#define ERRCODE_SYNC_DEVICE_INACTIVE	MAKE_SQLSTATE('S','Y','0','0','5')
#define ERRCODE_SYNC_PUSH_ID_REUSED	MAKE_SQLSTATE('S','Y','0','0','6')
#define ERRCODE_SYNC_CONFLICT_RESOLVED	MAKE_SQLSTATE('S','Y','0','0','7')

/* how far past the newest visible checkpoint a token may be and still be
 * taken for one not replayed or not visible yet */
#define SYNC_TOKEN_LOOKAHEAD	INT64CONST(1000000)

/* how far checkpoint ids move on a new WAL timeline (token.c) */
#define SYNC_TIMELINE_JUMP	(INT64CONST(1) << 30)

/* largest token a JavaScript client can hold exactly */
#define SYNC_MAX_TOKEN	((int64) 9007199254740991)	/* 2^53 - 1 */

/*
 * Advisory lock tags of pushes (field 4; pg_advisory_lock() uses 1 and 2):
 * a table, and one record id of a table (see apply.c, lock_push_keys).
 */
#define SYNC_LOCKTAG_TABLE	0x5350
#define SYNC_LOCKTAG_RECORD	0x5352

/* most column-set write plans a backend keeps per registered table */
#define SYNC_MAX_WRITE_PLANS	32

/* most record locks one push takes per table before locking the whole table */
#define SYNC_PUSH_KEY_LOCKS	64

/* callbacks of PostgreSQL's JSON parser return a result from 16 on */
#if PG_VERSION_NUM >= 160000
#define SYNC_JSON_ACTION JsonParseErrorType
#define SYNC_JSON_DONE return JSON_SUCCESS
#else
#define SYNC_JSON_ACTION void
#define SYNC_JSON_DONE return
#endif

/*
 * Calls whose arguments PostgreSQL 18 extended: an index scan's statistics
 * (none here), whether a deferrable primary key counts (it does not, as
 * before 18), the updated row's tid for an exclusion check (none: inserts).
 */
#if PG_VERSION_NUM >= 180000
#define sync_index_beginscan(heap, index, snap, nkeys) \
	index_beginscan((heap), (index), (snap), NULL, (nkeys), 0)
#define sync_primary_key_index(rel) RelationGetPrimaryKeyIndex((rel), false)
#define sync_check_index_constraints(rri, slot, estate, conflict, arbiters) \
	ExecCheckIndexConstraints((rri), (slot), (estate), (conflict), NULL, (arbiters))
#else
#define sync_index_beginscan(heap, index, snap, nkeys) \
	index_beginscan((heap), (index), (snap), (nkeys), 0)
#define sync_primary_key_index(rel) RelationGetPrimaryKeyIndex(rel)
#define sync_check_index_constraints(rri, slot, estate, conflict, arbiters) \
	ExecCheckIndexConstraints((rri), (slot), (estate), (conflict), (arbiters))
#endif

/* longest record id (and user id) accepted, in bytes */
#define SYNC_MAX_ID_LEN	255

/* How a column's values travel as JSON. */
typedef enum SyncKind
{
	SK_TEXT,					/* JSON string, through the type's I/O functions */
	SK_INT,						/* int2/int4/int8: JSON number */
	SK_FLOAT,					/* float4/float8: JSON number, NaN/Infinity -> null */
	SK_NUMERIC,					/* numeric: JSON number, NaN/Infinity -> null */
	SK_BOOL,					/* JSON boolean */
	SK_TIMESTAMP,				/* timestamp/timestamptz: epoch milliseconds */
	SK_DATE,					/* date: epoch milliseconds of midnight UTC */
	SK_JSON						/* json/jsonb: a JSON string holding the document */
} SyncKind;

typedef struct SyncColumn
{
	char	   *name;
	char	   *json_key;		/* "name": already escaped, with colon */
	AttrNumber	attnum;
	Oid			typid;			/* the column's declared type */
	Oid			basetypid;		/* domain base type */
	int32		typmod;
	SyncKind	kind;
	Oid			arraytypid;		/* array of typid, for set-based writes */
	bool		write_as_text;	/* written through text[] and a cast: no array
								 * type, or one that unnest() would expand
								 * (composites) */
	int16		typlen;
	bool		typbyval;
	char		typalign;
	FmgrInfo	outfn;
	FmgrInfo	infn;
	Oid			ioparam;
	bool		synced;			/* travels to/from clients (not _status etc.) */
	bool		writable;		/* may be written by push (not generated) */
	bool		identity_always;	/* GENERATED ALWAYS AS IDENTITY */
} SyncColumn;

/* Conflict policies (README "Conflict policies") */
typedef enum SyncPolicy
{
	SP_ABORT,					/* the whole push fails (SY001) */
	SP_CLIENT_WINS,				/* the pushed record is applied anyway */
	SP_SERVER_WINS,				/* the pushed record is dropped */
	SP_LAST_WRITE_WINS,			/* the newer timestamp wins, a tie the server */
	SP_VERSION,					/* a stale version is a conflict, settled by on_conflict */
	SP_MERGE,					/* per-column rules */
	SP_CUSTOM,					/* a SQL function decides */
	SP_MANUAL,					/* the server row stays, the conflict waits in an inbox */
	SP_INSERT_ONLY				/* created once, never changed by clients */
} SyncPolicy;

/* Merge rules of the merge policy, per column */
typedef enum SyncMergeRule
{
	MR_CLIENT,
	MR_SERVER,
	MR_LATEST,					/* by the timestamp column */
	MR_MAX,
	MR_MIN,
	MR_UNION,					/* arrays (SQL or JSON): server's, then new client's */
	MR_APPEND_BY_ID				/* JSON arrays of objects with "id" */
} SyncMergeRule;

/* A cached plan for writing one set of columns. */
typedef struct SyncWritePlan
{
	struct SyncWritePlan *next;
	char	   *colset;			/* '1'/'0' per column */
	SPIPlanPtr	insert_plan;
	SPIPlanPtr	update_plan;	/* NULL when only the key is present */
} SyncWritePlan;

/* Per-backend descriptor of one registered table (registry.c). */
typedef struct SyncTable
{
	Oid			relid;
	int32		table_id;
	char	   *name;			/* key in the changes document */
	char	   *qualname;		/* quoted schema.table */
	SyncPolicy	policy;
	bool		pull_only;
	bool		per_record;		/* push_mode per_record: a bad record is rejected, the rest applies */
	char	   *options;		/* the registration's options, as text (to tell when they change) */
	int			ts_col;			/* last_write_wins / merge "latest": index into cols, or -1 */
	int			version_col;	/* version: index into cols, or -1 */
	SyncPolicy	on_conflict;	/* version: how a stale version is settled */
	SyncMergeRule *rules;		/* merge: per column */
	Oid			custom_fn;		/* custom: (text, jsonb, jsonb) returns jsonb */
	Oid			rowtype;		/* the table's row type: writes pass rows of it */
	int			ncols;
	SyncColumn *cols;
	int			key;			/* index into cols */
	int			owner;			/* index into cols, or -1 */
	bool		key_leads_pk;	/* the key column is the primary key's first column */
	bool		valid;
	/* plans, prepared on first use and kept */
	SPIPlanPtr	full_plan;		/* all rows */
	SPIPlanPtr	full_owner_plan;	/* rows of one owner */
	SPIPlanPtr	byid_plan;		/* rows whose key is in an array */
	SPIPlanPtr	byid_few_plan;	/* the same for a few keys, of one owner: one plan, by key */
	SPIPlanPtr	page_plan;		/* a page of rows in key order (paged pulls) */
	SPIPlanPtr	lock_plan;		/* lock rows whose key is in an array (and read them) */
	SPIPlanPtr	delete_plan;	/* delete rows whose key is in an array */
	SPIPlanPtr	exists_plan;	/* keys and owners of rows whose key is in an array */
	SyncWritePlan *write_plans;	/* most recently used first */
	int			nwrite_plans;
	SPIPlanPtr	capture_plans[6];	/* recording an INSERT, UPDATE, DELETE (0.1 schema, 0.2) */
	/* recording one-row statements without SQL (capture.c), set on first use */
	int8		direct;			/* 0: not looked at yet, 1: possible, -1: not */
	int8		key_conv;		/* how the key becomes text, as ::text does */
	int8		owner_conv;
	FmgrInfo	key_fn;
	FmgrInfo	owner_fn;
} SyncTable;

/* A registration row of _pg_sync.tables. */
typedef struct SyncRegistration
{
	Oid			relid;
	int32		table_id;
	char	   *name;
	char	   *key_column;		/* names as last known (for messages) */
	AttrNumber	key_attnum;		/* the columns themselves (0: not known) */
	char	   *owner_column;	/* NULL: not per user */
	AttrNumber	owner_attnum;
	char	   *policy;
	bool		pull_only;
	char	   *options;		/* jsonb as text */
} SyncRegistration;

/* One registered table as seen by the current call. */
typedef struct SyncTableRef
{
	const char *name;			/* key in the changes document */
	Oid			relid;
	SyncTable  *desc;			/* NULL unless the call locked and opened it */
	bool		vanished;		/* dropped after the call's snapshot was taken */
	bool		new_since_token;	/* registered after the caller's token */
	bool		replaced;		/* sync_require_replacement() after the caller's token */
	uint64		registered_xid;	/* the transaction that registered it */
} SyncTableRef;

/* A parsed pg_snapshot: xmin, xmax and the in-progress xids, ascending. */
typedef struct SyncSnap
{
	uint64		xmin;
	uint64		xmax;
	int			nxip;
	uint64	   *xip;
} SyncSnap;

/*
 * A page of a paged pull (pages.c): the row of _pg_sync.pages a page token
 * names.
 */
typedef struct SyncPage
{
	int64		id;
	char	   *user_id;		/* '' without a user id */
	char	   *client_id;		/* NULL: none */
	int64		prev_id;		/* the caller's token (0: a first pull) */
	Datum		prev_snap;		/* its snapshot, when prev_id != 0 */
	char	   *prev_text;
	Datum		base_snap;		/* the snapshot the whole pull is up to */
	char	   *base_text;
	char	   *tables;			/* jsonb text: [{"name", "mode"}] */
	int			page_size;
	int			pos;			/* where the page starts: a table */
	char	   *after;			/* and the last id sent in it (NULL: its start) */
	bool		answered;		/* asked before: where it ended, what it answered */
	int			end_pos;
	char	   *end_after;
	int64		next_id;
} SyncPage;

/* A token: a checkpoint (id 0: not recorded, or nothing seen) and its snapshot. */
typedef struct SyncToken
{
	int64		id;
	Datum		snap;			/* pg_snapshot, when set */
	char	   *snap_text;
	SyncSnap	parsed;
	bool		stale;			/* recorded longer than pg_sync.token_refresh ago */
	SyncPage   *page;			/* a page token: the page (snap is the pull's prev) */
	bool		sees_nothing;	/* a page token of a first pull: nothing counts as seen */
} SyncToken;

/* --- decoded push documents (decode.c) --- */
typedef enum SyncValueType
{
	SV_NULL,
	SV_STRING,
	SV_NUMBER,					/* str holds the number exactly as sent */
	SV_BOOL,
	SV_COMPOUND					/* object or array; str holds its text as sent */
} SyncValueType;

typedef struct SyncValue
{
	SyncValueType type;
	char	   *str;			/* SV_STRING, SV_NUMBER, SV_COMPOUND */
	bool		bval;			/* SV_BOOL */
} SyncValue;

typedef struct SyncField
{
	char	   *key;
	SyncValue	value;
} SyncField;

typedef struct SyncRecord
{
	char	   *id;
	int			nfields;
	SyncField  *fields;
} SyncRecord;

typedef struct SyncTableChanges
{
	char	   *name;
	int			nrecords;		/* created followed by updated */
	int			ncreated;
	SyncRecord *records;
	int			ndeleted;
	char	  **deleted;
} SyncTableChanges;

typedef struct SyncChanges
{
	int			ntables;
	SyncTableChanges *tables;
} SyncChanges;

/* module.c */
extern int	sync_checkpoint_interval_ms;
extern int	sync_token_refresh_ms;
extern int	sync_max_clock_skew_ms;
extern int	sync_max_records;
extern char *sync_user_claim;
extern char *sync_trusted_role;
extern int	sync_max_push_bytes;
extern bool sync_direct_capture;
extern bool sync_durable_checkpoints;
/* The caller's identity and search_path while pg_sync runs as the owner. */
typedef struct SyncOwnerCtx
{
	Oid			save_user;
	int			save_sec;
	int			gucnest;
} SyncOwnerCtx;
extern void sync_owner_enter(SyncOwnerCtx *ctx);
extern void sync_owner_leave(SyncOwnerCtx *ctx);
extern SPIPlanPtr sync_prepare(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr sync_prepare_custom(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr sync_prepare_generic(const char *sql, int nargs, Oid *argtypes);
extern void sync_check_spi(int rc, int expected, const char *what);
extern bool sync_name_listed(List *names, const char *name);
extern bool sync_schema_02(void);
extern Oid	sync_internal_relid(const char *name);
SYNC_NORETURN extern void sync_not_installed(void);
extern Relation sync_internal_open(const char *name);
extern Relation sync_internal_index(Relation heap, const char *name, bool missing_ok);
extern AttrNumber sync_internal_attnum(Relation rel, const char *name, bool missing_ok);

/* registry.c */
extern List *sync_registry_load(SyncToken *prev, LOCKMODE lockmode, List *names);
extern SyncTable *sync_registry_lookup(Oid relid, bool missing_ok);
extern SyncTable *sync_registry_cached(Oid relid);
extern void sync_registry_init(void);

/* token.c */
extern void sync_snap_parse(const char *text, SyncSnap *si);
extern bool sync_snap_visible(const SyncSnap *si, uint64 xid);
extern bool sync_snap_contains(const SyncSnap *b, const SyncSnap *a);
extern bool sync_token_find(int64 token, SyncToken *out);
extern void sync_token_resolve(int64 token, SyncToken *out, bool *expired);
extern bool sync_token_current(SyncToken *out);
extern bool sync_token_newest(SyncToken *out);
extern bool sync_token_can_record(void);
extern void sync_token_record(SyncToken *tok);
extern void sync_token_check_timeline(void);
extern int64 sync_token_next_id(void);

/* devices.c: a device named by a call (client_id), as it was when the call began */
typedef struct SyncDevice
{
	const char *user;			/* '' for callers without a user id */
	const char *client_id;		/* NULL: the call names no device */
	bool		exists;
	bool		active;
	int64		last_token;
	bool		pull_stale;		/* its last pull was recorded over a minute ago */
} SyncDevice;
extern void sync_check_device_id(const char *what, const char *id);
extern void sync_device_open(SyncDevice *dev, const char *user, const char *client_id, bool for_push);
extern void sync_device_pulled(SyncDevice *dev, int64 token);
extern void sync_device_pushed(SyncDevice *dev, int64 records, int64 conflicts, int64 rejected,
							   const char *per_table);
extern char *sync_ledger_claim(SyncDevice *dev, const char *push_id, text *doc);
extern void sync_ledger_store(SyncDevice *dev, const char *push_id, const char *result);

/* auth.c */
extern char *sync_current_user_id(const char *explicit_user);
SYNC_NORETURN extern void sync_no_user(const char *table);
extern char *sync_owner_text(SyncTable *t, const char *user);

/* encode.c */
extern void sync_escape_json(StringInfo buf, const char *s, int len);
extern void sync_encode_value(StringInfo buf, SyncColumn *col, Datum value, bool isnull);
typedef struct SyncPullSink
{
	StringInfo	updated;
	int			nupdated;
	struct HTAB *skip;			/* ids to leave out, or NULL */
	struct HTAB *seen;			/* ids read (written or echoes), or NULL */
	struct HTAB *echo;			/* rows the device has (SyncEcho), or NULL */
	int			nechoed;		/* rows left out for that */
	int			limit;			/* > 0: rows after the first limit are not written */
	int			nread;			/* rows the query returned */
	char	   *last_id;		/* the id of the last row within the limit */
} SyncPullSink;
/* A row a device pushed and has as stored. */
typedef struct SyncEcho
{
	char	   *id;
	int64		hash;
	char	   *cols;
} SyncEcho;
extern struct HTAB *sync_echo_create(void);
extern void sync_echo_add(struct HTAB *map, const char *id, int64 hash, const char *cols);
extern int64 sync_row_hash(SyncTable *t, const char *id, Datum *vals, bool *nulls, const char *cols);
extern int64 sync_pushed_hash(SyncTable *t, const char *id, SyncRecord *rec, const char *cols);
extern struct HTAB *sync_idset_create(void);
extern void sync_idset_add(struct HTAB *set, const char *id);
extern bool sync_idset_has(struct HTAB *set, const char *id);
extern void sync_encode_query(SyncTable *t, SPIPlanPtr plan, Datum *values,
							  const char *nulls, SyncPullSink *sink);

/* --- a pull, table by table (pull.c, pages.c) --- */

/* How a pull sends a table. */
typedef enum PullMode
{
	PM_CHANGES,					/* the changes since the caller's token */
	PM_FULL,					/* every live row */
	PM_COLUMNS					/* the changes, and every row a migration's new column is set in */
} PullMode;

typedef struct PullTable
{
	SyncTableRef *ref;			/* NULL: gone since a paged pull began */
	PullMode	mode;
	bool		replace;		/* sent by replacement (the device drops what is not sent) */
	bool		hidden;			/* the caller may not read it: replaced by nothing */
	bool	   *new_cols;		/* PM_COLUMNS: per column, whether the migration added it */
	const char *owner;			/* the scope: the caller's id, or '' for a shared table */
	List	   *live;			/* ids to read */
	StringInfoData deleted;		/* ids for "deleted", comma-separated JSON strings */
	int			ndeleted;
	struct HTAB *pending;		/* ids whose last change the answer does not include */
	struct HTAB *echo;			/* rows the asking device has as they are (SyncEcho) */
	struct HTAB *unsure;		/* ids of live found in the change index alone */
	SyncToken  *unsure_lo;		/* ... between these snapshots: one not read is */
	SyncToken  *unsure_hi;		/* deleted only if its record says so */
} PullTable;

/* What a pull knows about its caller and the snapshots involved. */
typedef struct PullCall
{
	const char *user;			/* NULL: none */
	const char *client_id;		/* NULL: none */
	const char *origin;			/* the device as row_meta.origin names it, or NULL */
	SyncToken	prev;			/* the caller's token */
	bool		can_record;		/* a read-write transaction on the primary */
	int			page_size;		/* 0: not paged */
	int			nechoed;		/* rows left out: the device has them */
} PullCall;

/* pull.c */
extern void sync_pull_prepare_rows(SyncTable *t);
extern void sync_pull_append_deleted(PullTable *pt, const char *id);
extern struct HTAB *sync_pull_read_pending(PullTable *pt, SyncToken *upto);
extern void sync_pull_read_rows(PullTable *pt, PullCall *call, SPIPlanPtr plan, Datum *args,
								const char *nulls, SyncPullSink *sink);
extern void sync_pull_send_live(StringInfo out, PullTable *pt, PullCall *call, SyncPullSink *sink);

/* pages.c */
extern SyncPage *sync_page_find(int64 token, bool lock);
extern int64 sync_pull_paged(StringInfo out, PullCall *call, PullTable *pts, int ntables,
							 SyncToken *base, bool *more);
extern int64 sync_pull_next_page(StringInfo out, PullCall *call, bool *more);

/* decode.c */
extern SyncChanges *sync_decode_changes(const char *json, size_t len);

/* --- a push, table by table, through its stages (push.c, apply.c, policy.c) --- */

/* What a push does with one record. */
typedef enum SyncAction
{
	SA_WRITE,					/* insert or update it */
	SA_DELETE,					/* delete the row */
	SA_SKIP,					/* leave the server's row as it is */
	SA_REJECT,					/* not applied; listed in experimentalRejectedIds and errors */
	SA_QUEUE					/* leave the server's row; the conflict waits in the inbox */
} SyncAction;

typedef struct PushRecord
{
	char	   *id;				/* canonical (the key's output text) */
	SyncRecord *rec;			/* the pushed record; NULL for a delete */
	Datum	   *vals;			/* by column: the values to write */
	bool	   *nulls;
	bool	   *set;			/* whether the write sets the column */
	/* found under the row locks */
	bool		exists;			/* a row with this key the caller may write */
	bool		foreign;		/* a row the caller may not write (another owner's, hidden) */
	bool		conflict;		/* changed on the server after the client's token */
	Datum	   *server;			/* the row's values, for policies that read it (else NULL) */
	bool	   *server_nulls;
	/* decided by the policy */
	SyncAction	action;
	const char *resolution;		/* of a conflict: server, client, merged, manual, rejected */
	bool		clamped;		/* a future timestamp was brought back to now */
	int64		conflict_id;	/* manual: the inbox entry */
	char	   *error;			/* rejected: why */
} PushRecord;

typedef struct PushTable
{
	SyncTable  *t;
	SyncTableChanges *tc;
	bool		new_since_token;	/* registered after the client's token */
	const char *owner;			/* the caller as the owner column holds it; NULL: shared */
	const char *user;			/* the caller's user id, or NULL */
	const char *origin;			/* the pushing device as row_meta.origin names it, or NULL */
	int			nrecs;
	PushRecord *recs;			/* created and updated records, then deletes */
	int64		created,
				updated,
				deleted,
				conflicts,		/* settled or queued by the policy */
				rejected;
	bool		force;			/* write whatever the server has (resolving a conflict) */
	FmgrInfo   *custom_finfo;	/* custom: the function, looked up once */
} PushTable;

/* push.c */
extern void sync_push_check(PushTable *pt);

/*
 * capture.c: what a push naming its device tells the capture while it
 * writes rows. For each record the push expects to write as the device sent
 * it, the hash and columns of what the device then has: the capture writes
 * them into the change record it writes anyway (origin, origin_hash,
 * origin_cols) and marks the note taken, so that the push does not update
 * that record a second time. Set only around the push's row writes.
 */
typedef struct SyncOriginNote
{
	const char *id;
	int64		hash;
	char	   *cols;
	bool		taken;			/* written into the record by the capture */
} SyncOriginNote;

typedef struct SyncPushOrigins
{
	int32		table_id;
	const char *owner;			/* as row_meta.owner holds it ("" for a shared table) */
	const char *origin;			/* the device, as row_meta.origin names it */
	int			n;
	SyncOriginNote *notes;		/* sorted by id (strcmp) */
} SyncPushOrigins;

extern SyncPushOrigins *sync_push_origins;
extern void sync_origin_sort(SyncPushOrigins *po);
extern SyncOriginNote *sync_origin_note(SyncPushOrigins *po, const char *id);

/* apply.c */
extern Datum sync_ids_array(SyncTable *t, char **ids, int n);
extern void sync_push_lock(PushTable *pt, SyncToken *tok);
extern void sync_push_write(PushTable *pt);
extern void sync_push_reject_all(PushTable *pt);
extern void sync_mark_changed(SyncTable *t, const char *scope, char **ids, bool *gone, int n);
SYNC_NORETURN extern void sync_conflict_error(SyncTable *t, const char *id);

/* policy.c */
extern bool sync_policy_reads_rows(SyncTable *t);
extern void sync_push_resolve(PushTable *pt);
extern void sync_push_resolve_late(PushTable *pt, PushRecord *r);
extern char *sync_record_json(SyncTable *t, const char *id, SyncRecord *rec);
extern char *sync_row_json(SyncTable *t, const char *id, Datum *vals, bool *nulls);

/* conflicts.c */
extern void sync_queue_conflicts(PushTable *pt);

/* values.c */
extern Datum sync_value_to_datum(SyncTable *t, SyncColumn *col, const char *id,
								 SyncValue *v, bool *isnull);
extern Datum sync_id_to_datum(SyncTable *t, const char *id);
extern bool sync_reserved_field(const char *name);

#endif
