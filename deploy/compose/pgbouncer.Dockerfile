# PgBouncer 1.21 or newer, for max_prepared_statements: Alpine 3.21 packages 1.23.
FROM alpine:3.21
RUN apk add --no-cache pgbouncer
USER pgbouncer
ENTRYPOINT ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]
