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
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* The user id in the JWT claims, or NULL when there is none. */
static char *
claims_user_id(void)
{
	const char *claims = GetConfigOption("request.jwt.claims", true, false);
	Jsonb	   *jb;
	JsonbValue	key;
	JsonbValue *v;

	if (claims == NULL || claims[0] == '\0')
		return NULL;
	jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(claims)));
	if (!JB_ROOT_IS_OBJECT(jb))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("request.jwt.claims must be a JSON object")));
	key.type = jbvString;
	key.val.string.val = sync_user_claim;
	key.val.string.len = strlen(sync_user_claim);
	v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &key);
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return v->val.string.len > 0 ? pnstrdup(v->val.string.val, v->val.string.len) : NULL;
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("claim \"%s\" in request.jwt.claims must be a string", sync_user_claim)));
	return NULL;
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
