#!/usr/bin/env bash
# Write deploy/env/{postgres,minio,vidgate}.env for compose.yaml with fresh random secrets, unless
# they exist (delete them to start over; the database and bucket keep the old credentials).
#
#   deploy/env/generate.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
umask 077
if [ -e postgres.env ] || [ -e minio.env ] || [ -e vidgate.env ]; then
  echo "[env] deploy/env/*.env exist; kept as they are"
  exit 0
fi
secret() { python3 -c "import secrets; print(secrets.token_urlsafe($1))"; }
PG_PASSWORD="$(secret 24)"
S3_USER="vidgate"
S3_PASSWORD="$(secret 24)"
cat > postgres.env <<ENV
POSTGRES_USER=vidgate
POSTGRES_PASSWORD=$PG_PASSWORD
POSTGRES_DB=vidgate
ENV
cat > minio.env <<ENV
MINIO_ROOT_USER=$S3_USER
MINIO_ROOT_PASSWORD=$S3_PASSWORD
ENV
cat > vidgate.env <<ENV
VIDGATE_DATABASE_URL=postgresql://vidgate:$PG_PASSWORD@postgres:5432/vidgate
AWS_ACCESS_KEY_ID=$S3_USER
AWS_SECRET_ACCESS_KEY=$S3_PASSWORD
VIDGATE_SIGNING_SECRET=$(secret 32)
VIDGATE_SECRETS_KEY=$(secret 32)
VIDGATE_ADMIN_KEY=vg_admin_$(secret 24)
ENV
echo "[env] wrote deploy/env/postgres.env, minio.env, vidgate.env"
