/*
 * auth.c — who is calling. HTTP layers follow PostgREST's convention and put
 * the verified JWT claims of the end user in the transaction-local setting
 * request.jwt.claims; the user id is the claim named by pg_sync.user_claim.
 */
#include "pg_sync.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

/* The calling user's id from the JWT claims, or NULL when there is none. */
char *
sync_current_user_id(void)
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

/* The calling user's id, or an error (SQLSTATE 28000) when there is none. */
char *
sync_require_user_id(const char *table)
{
	char	   *user = sync_current_user_id();

	if (user == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("table \"%s\" is synced per user, but no user id was given", table),
				 errdetail("Claim \"%s\" of request.jwt.claims is missing.", sync_user_claim)));
	return user;
}
