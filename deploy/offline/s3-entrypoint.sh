#!/bin/sh
# SeaweedFS in place of MinIO: S3 on port 9000 with MinIO's root credentials as its one identity,
# data under /data.
set -eu
mkdir -p /data /tmp/weed
cd /tmp/weed
cat > s3.json <<JSON
{"identities": [{"name": "vidgate", "credentials": [{"accessKey": "$MINIO_ROOT_USER", "secretKey": "$MINIO_ROOT_PASSWORD"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
printf '[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n' > master.toml
exec weed mini -dir=/data -ip=127.0.0.1 -ip.bind=0.0.0.0 -s3.port=9000 -s3.config=/tmp/weed/s3.json \
  -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false \
  -master.volumeSizeLimitMB=64 -volume.max=0
