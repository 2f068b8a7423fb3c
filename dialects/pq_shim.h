/*
 * pq_shim.h - libpq, loaded when the first PostgreSQL connection is made.
 *
 * libpq drags in Kerberos, LDAP and TLS libraries whose start-up costs
 * every command tens of milliseconds, SQLite runs included.  The
 * PostgreSQL dialect's files include this header after libpq-fe.h: each PQ
 * function they call goes through a pointer filled by lm_pq_load().  A
 * function missing from LM_PQ_FUNCTIONS fails to link, never silently.
 */
#ifndef LM_PQ_SHIM_H
#define LM_PQ_SHIM_H

#include <libpq-fe.h>

#include "util.h"

#define LM_PQ_FUNCTIONS(X)                                                    \
  X(PQbackendPID) X(PQcancel) X(PQclear) X(PQcmdStatus) X(PQcmdTuples)        \
  X(PQconnectdbParams) X(PQconsumeInput) X(PQdescribePrepared)                \
  X(PQerrorMessage) X(PQescapeByteaConn) X(PQescapeIdentifier)                \
  X(PQescapeLiteral) X(PQexec) X(PQexecParams) X(PQexecPrepared) X(PQfinish)  \
  X(PQflush) X(PQfname) X(PQfformat) X(PQfreeCancel) X(PQfreemem) X(PQftype)  \
  X(PQgetCancel) X(PQgetCopyData) X(PQgetResult) X(PQgetisnull)               \
  X(PQgetlength) X(PQgetvalue) X(PQisBusy) X(PQnfields) X(PQnparams)          \
  X(PQntuples) X(PQparameterStatus) X(PQparamtype) X(PQpass) X(PQprepare)     \
  X(PQputCopyData) X(PQputCopyEnd) X(PQresStatus) X(PQresultErrorField)       \
  X(PQresultErrorMessage) X(PQresultStatus) X(PQsendPrepare) X(PQsendQuery)   \
  X(PQsendQueryParams) X(PQsendQueryPrepared) X(PQserverVersion)              \
  X(PQsetNoticeReceiver) X(PQsetSingleRowMode) X(PQsocket) X(PQstatus)        \
  X(PQtransactionStatus) X(PQunescapeBytea)

/* The loaded functions, one pointer each, of the libpq-fe.h type. */
typedef struct lm_pq_api {
#define LM_PQ_MEMBER(name) __typeof__(name) *name;
  LM_PQ_FUNCTIONS(LM_PQ_MEMBER)
#undef LM_PQ_MEMBER
} lm_pq_api;

extern lm_pq_api lm_pq;

/* Load libpq once; LM_ERROR with a message naming the library when it is
 * not installed. */
int lm_pq_load(lm_err *err);

/* From here on, PQxxx(...) in the dialect's files calls through lm_pq
 * (pq_shim.c itself, which fills lm_pq, asks not to). */
#ifndef LM_PQ_NO_REDIRECT
#define PQbackendPID (lm_pq.PQbackendPID)
#define PQcancel (lm_pq.PQcancel)
#define PQclear (lm_pq.PQclear)
#define PQcmdStatus (lm_pq.PQcmdStatus)
#define PQcmdTuples (lm_pq.PQcmdTuples)
#define PQconnectdbParams (lm_pq.PQconnectdbParams)
#define PQconsumeInput (lm_pq.PQconsumeInput)
#define PQdescribePrepared (lm_pq.PQdescribePrepared)
#define PQerrorMessage (lm_pq.PQerrorMessage)
#define PQescapeByteaConn (lm_pq.PQescapeByteaConn)
#define PQescapeIdentifier (lm_pq.PQescapeIdentifier)
#define PQescapeLiteral (lm_pq.PQescapeLiteral)
#define PQexec (lm_pq.PQexec)
#define PQexecParams (lm_pq.PQexecParams)
#define PQexecPrepared (lm_pq.PQexecPrepared)
#define PQfinish (lm_pq.PQfinish)
#define PQflush (lm_pq.PQflush)
#define PQfname (lm_pq.PQfname)
#define PQfformat (lm_pq.PQfformat)
#define PQfreeCancel (lm_pq.PQfreeCancel)
#define PQfreemem (lm_pq.PQfreemem)
#define PQftype (lm_pq.PQftype)
#define PQgetCancel (lm_pq.PQgetCancel)
#define PQgetCopyData (lm_pq.PQgetCopyData)
#define PQgetResult (lm_pq.PQgetResult)
#define PQgetisnull (lm_pq.PQgetisnull)
#define PQgetlength (lm_pq.PQgetlength)
#define PQgetvalue (lm_pq.PQgetvalue)
#define PQisBusy (lm_pq.PQisBusy)
#define PQnfields (lm_pq.PQnfields)
#define PQnparams (lm_pq.PQnparams)
#define PQntuples (lm_pq.PQntuples)
#define PQparameterStatus (lm_pq.PQparameterStatus)
#define PQparamtype (lm_pq.PQparamtype)
#define PQpass (lm_pq.PQpass)
#define PQprepare (lm_pq.PQprepare)
#define PQputCopyData (lm_pq.PQputCopyData)
#define PQputCopyEnd (lm_pq.PQputCopyEnd)
#define PQresStatus (lm_pq.PQresStatus)
#define PQresultErrorField (lm_pq.PQresultErrorField)
#define PQresultErrorMessage (lm_pq.PQresultErrorMessage)
#define PQresultStatus (lm_pq.PQresultStatus)
#define PQsendPrepare (lm_pq.PQsendPrepare)
#define PQsendQuery (lm_pq.PQsendQuery)
#define PQsendQueryParams (lm_pq.PQsendQueryParams)
#define PQsendQueryPrepared (lm_pq.PQsendQueryPrepared)
#define PQserverVersion (lm_pq.PQserverVersion)
#define PQsetNoticeReceiver (lm_pq.PQsetNoticeReceiver)
#define PQsetSingleRowMode (lm_pq.PQsetSingleRowMode)
#define PQsocket (lm_pq.PQsocket)
#define PQstatus (lm_pq.PQstatus)
#define PQtransactionStatus (lm_pq.PQtransactionStatus)
#define PQunescapeBytea (lm_pq.PQunescapeBytea)
#endif

#endif
