/*
 * auth.c — who is calling. HTTP layers follow PostgREST's convention and put
 * the verified JWT claims of the end user in the transaction-local setting
 * request.jwt.claims; the user id is the claim named by pg_sync.user_claim.
 * Trusted server code (superusers and members of pg_sync.trusted_role) may
 * name the user instead with the user_id argument.
 */
#include "pg_sync.h"

#include "catalog/pg_authid.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

/* What claims_user_id looks for in request.jwt.claims. */
typedef struct ClaimScan
{
	int			depth;
	bool		in_claim;		/* the next value is the user claim's */
	int			found;			/* how often the claim appeared */
	char	   *value;
	JsonTokenType type;
	bool		compound;		/* its value was an object or array */
} ClaimScan;

static SYNC_JSON_ACTION
claim_nest_start(void *state)
{
	ClaimScan  *cs = state;

	if (cs->in_claim && cs->depth == 1)
		cs->compound = true;
	cs->in_claim = false;
	cs->depth++;
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
claim_nest_end(void *state)
{
	((ClaimScan *) state)->depth--;
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
claim_field(void *state, char *fname, bool isnull)
{
	ClaimScan  *cs = state;

	cs->in_claim = cs->depth == 1 && strcmp(fname, sync_user_claim) == 0;
	if (cs->in_claim)
		cs->found++;
	SYNC_JSON_DONE;
}

static SYNC_JSON_ACTION
claim_scalar(void *state, char *token, JsonTokenType type)
{
	ClaimScan  *cs = state;

	if (cs->in_claim)
	{
		cs->value = token;
		cs->type = type;
	}
	cs->in_claim = false;
	SYNC_JSON_DONE;
}

/*
 * The user id in the JWT claims, or NULL when there is none. Claims naming
 * the user twice are refused (a JSON object with a repeated key means
 * whatever the reader decides it means).
 */
static char *
claims_user_id(void)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	JsonLexContext *lex;
	JsonSemAction sem;
	JsonParseErrorType err;
	ClaimScan	cs;
	char	   *id;
#if PG_VERSION_NUM >= 170000
	JsonLexContext lexbuf;
#endif

	if (claims == NULL || claims[0] == '\0')
		return NULL;
#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(&lexbuf, claims, strlen(claims), GetDatabaseEncoding(), true);
#else
	lex = makeJsonLexContextCstringLen((char *) claims, strlen(claims), GetDatabaseEncoding(), true);
#endif
	memset(&cs, 0, sizeof(cs));
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &cs;
	sem.object_start = claim_nest_start;
	sem.array_start = claim_nest_start;
	sem.object_end = claim_nest_end;
	sem.array_end = claim_nest_end;
	sem.object_field_start = claim_field;
	sem.scalar = claim_scalar;
	if (claims[strspn(claims, " \t\r\n")] != '{')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("request.jwt.claims must be a JSON object")));
	err = pg_parse_json(lex, &sem);
	if (err != JSON_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("request.jwt.claims is not valid JSON: %s", json_errdetail(err, lex))));
	if (cs.found > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("claim \"%s\" appears more than once in request.jwt.claims", sync_user_claim)));
	if (cs.found == 0 || (!cs.compound && (cs.value == NULL || cs.type == JSON_TOKEN_NULL)))
		return NULL;
	if (cs.compound || (cs.type != JSON_TOKEN_STRING && cs.type != JSON_TOKEN_NUMBER))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("claim \"%s\" in request.jwt.claims must be a string", sync_user_claim)));
	id = cs.value;
	if (id[0] == '\0')
		return NULL;
	if (strlen(id) > SYNC_MAX_ID_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("the user id in claim \"%s\" is longer than %d bytes", sync_user_claim, SYNC_MAX_ID_LEN)));
	return id;
}

/* Whether the current role may name the user explicitly. */
static bool
is_trusted(void)
{
	Oid			role;

	if (superuser())
		return true;
	if (sync_trusted_role == NULL || sync_trusted_role[0] == '\0')
		return false;
	role = get_role_oid(sync_trusted_role, true);
	return OidIsValid(role) && has_privs_of_role(GetUserId(), role);
}

/*
 * The calling user's id: the explicit user_id argument (trusted roles only),
 * else the claim, else NULL.
 */
char *
sync_current_user_id(const char *explicit_user)
{
	if (explicit_user != NULL)
	{
		if (!is_trusted())
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to name the user of a sync call"),
					 errdetail("Only superusers and members of role \"%s\" may pass user_id.",
							   sync_trusted_role ? sync_trusted_role : ""),
					 errhint("End users are identified by the claim \"%s\" of request.jwt.claims.",
							 sync_user_claim)));
		if (explicit_user[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("user_id must not be empty")));
		if (strlen(explicit_user) > SYNC_MAX_ID_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("user_id is longer than %d bytes", SYNC_MAX_ID_LEN)));
		return pstrdup(explicit_user);
	}
	return claims_user_id();
}

/* Raises the error for a per-user table and no user id (SQLSTATE 28000). */
void
sync_no_user(const char *table)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("table \"%s\" is synced per user, but no user id was given", table),
			 errdetail("Claim \"%s\" of request.jwt.claims is missing.", sync_user_claim)));
}

/*
 * The caller's user id as the owner column of table t holds it: read
 * through the column's type and written back, so that it compares equal to
 * what the change records and the rows hold (a uuid in upper case is the
 * same uuid). A user id the column cannot hold is one error naming the
 * table (SQLSTATE 28000: the identity does not fit the table).
 */
char *
sync_owner_text(SyncTable *t, const char *user)
{
	SyncColumn *oc = &t->cols[t->owner];
	MemoryContext cxt = CurrentMemoryContext;
	Datum		value = (Datum) 0;

	PG_TRY();
	{
		value = InputFunctionCall(&oc->infn, (char *) user, oc->ioparam, oc->typmod);
	}
	PG_CATCH();
	{
		ErrorData  *ed;

		MemoryContextSwitchTo(cxt);
		ed = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(ed->sqlerrcode) != ERRCODE_DATA_EXCEPTION &&
			ERRCODE_TO_CATEGORY(ed->sqlerrcode) != ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("user id \"%s\" cannot own rows of table \"%s\"", user, t->name),
				 errdetail("Its owner column \"%s\" is of type %s: %s",
						   oc->name, format_type_be(oc->typid), ed->message)));
	}
	PG_END_TRY();
	return OutputFunctionCall(&oc->outfn, value);
}