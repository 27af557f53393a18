#!/usr/bin/env bash
# Runs the web server, a Celery worker, the outbox relay and Celery beat together; Ctrl-C
# stops them all.
set -uo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8000}
HOST=${HOST:-127.0.0.1}
mkdir -p .local

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "Stopping GeoMarket..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  echo "Stopped."
}
trap stop_all INT TERM EXIT

# Beat runs a task every second or so: at INFO its worker's lines would scroll the URL
# printed below out of sight within seconds. CELERY_LOG_LEVEL=INFO shows them.
CELERY_LOG_LEVEL=${CELERY_LOG_LEVEL:-WARNING}

HOST="$HOST" PORT="$PORT" scripts/serve &
pids+=($!)
.venv/bin/celery -A geomarket worker --loglevel "$CELERY_LOG_LEVEL" --concurrency "${CELERY_CONCURRENCY:-2}" &
pids+=($!)
# Webhook deliveries wait on receivers: threads, on their own queue, so that a slow
# receiver holds up no other task.
.venv/bin/celery -A geomarket worker --loglevel "$CELERY_LOG_LEVEL" --queues webhooks --hostname webhooks@%h \
  --pool threads --concurrency "${WEBHOOK_CONCURRENCY:-8}" &
pids+=($!)
.venv/bin/python manage.py relay_outbox &
pids+=($!)
.venv/bin/celery -A geomarket beat --loglevel "$CELERY_LOG_LEVEL" --schedule .local/celerybeat-schedule &
pids+=($!)

for _ in $(seq 1 100); do
  curl -fsS "http://$HOST:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
echo
echo "GeoMarket is up at http://$HOST:$PORT/ (links to the API docs, the console, the admin"
echo "  and the health check)"
echo "  API docs: http://$HOST:$PORT/api/docs/    admin: http://$HOST:$PORT/admin/"
echo "  Press Ctrl-C to stop the web server, the worker, the outbox relay and beat."
echo

# Any one of them exiting brings the others down rather than leaving a half-up stack.
wait -n "${pids[@]}"
