#!/usr/bin/env bash
# deploy.sh: ships a bundle (deploy/bundle.sh) to the S3 bucket an AWS MWAA
# environment reads, and tells MWAA when it must reload.
#
#   deploy/deploy.sh BUNDLE --bucket NAME --environment NAME [--prefix P] [--dry-run]
#
# MWAA picks up dags/ by itself (every ~30 s). logpipe's DAGs live in a
# folder of their own, dags/logpipe/, synced with --delete (a DAG removed from
# the repo leaves the bucket); nothing else under dags/ is touched, so other
# teams' DAGs in a shared bucket survive. logpipe's own files at the top of
# dags/ (where deploys before this layout put them) are removed, so no DAG id
# is defined twice. plugins.zip,
# requirements.txt and startup.sh are read only when update-environment names
# their new S3 object versions (the bucket must have versioning on): each is
# uploaded only when its SHA-256 differs from the one recorded in the current
# object's metadata, and update-environment is called only when one of them
# changed, with the versions S3 returned. Everything goes through the AWS CLI
# with the standard credential chain (in GitHub Actions: the OIDC role of
# aws-actions/configure-aws-credentials). Prints what it changed.
set -euo pipefail

usage() { echo "usage: deploy.sh BUNDLE --bucket NAME --environment NAME [--prefix P] [--dry-run]" >&2; exit 2; }
die() { printf 'deploy: error: %s\n' "$*" >&2; exit 1; }

BUNDLE=${1:-}; [ -n "$BUNDLE" ] && [ "${BUNDLE#-}" = "$BUNDLE" ] || usage
shift
BUCKET='' ENVIRONMENT='' PREFIX='' DRY=0
while [ $# -gt 0 ]; do
  case $1 in
    --bucket) BUCKET=${2:-}; shift 2 ;;
    --environment) ENVIRONMENT=${2:-}; shift 2 ;;
    --prefix) PREFIX=${2:-}; PREFIX=${PREFIX%/}; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    *) usage ;;
  esac
done
[ -n "$BUCKET" ] || die "--bucket is required"
[ -n "$ENVIRONMENT" ] || die "--environment is required"
[ -d "$BUNDLE/dags/logpipe" ] && [ -f "$BUNDLE/plugins.zip" ] && [ -f "$BUNDLE/requirements.txt" ] ||
  die "$BUNDLE is not a bundle (dags/logpipe/, plugins.zip, requirements.txt): run deploy/bundle.sh"
AWS=${AWS:-aws}
key() { printf '%s%s' "${PREFIX:+$PREFIX/}" "$1"; }

versioning=$($AWS s3api get-bucket-versioning --bucket "$BUCKET" --query Status --output text 2>/dev/null) ||
  die "cannot read bucket $BUCKET (does it exist, and may these credentials read it?)"
[ "$versioning" = Enabled ] ||
  die "bucket $BUCKET has versioning '$versioning': MWAA needs it Enabled to load new plugins.zip/requirements.txt"

echo "deploy: dags/logpipe/ -> s3://$BUCKET/$(key dags/logpipe/)"
dry=()
((DRY)) && dry=(--dryrun)
$AWS s3 sync "$BUNDLE/dags/logpipe" "s3://$BUCKET/$(key dags/logpipe)" --delete --exclude '*' --include '*.py' \
  "${dry[@]}" | sed 's/^/deploy:   /'
# The layout before dags/logpipe/: the same files at the top of dags/.
for f in "$BUNDLE"/dags/logpipe/*.py; do
  old=$(key "dags/$(basename "$f")")
  $AWS s3api head-object --bucket "$BUCKET" --key "$old" >/dev/null 2>&1 || continue
  if ((DRY)); then
    echo "deploy:   would delete s3://$BUCKET/$old (now in dags/logpipe/)"
  else
    $AWS s3api delete-object --bucket "$BUCKET" --key "$old" >/dev/null
    echo "deploy:   deleted s3://$BUCKET/$old (now in dags/logpipe/)"
  fi
done

# Uploads FILE when its content changed; prints the S3 version id to use.
ship() {
  local file=$1 name k sum current version
  name=$(basename "$file")
  k=$(key "$name")
  sum=$(sha256sum "$file" | cut -d' ' -f1)
  current=$($AWS s3api head-object --bucket "$BUCKET" --key "$k" --query 'join(`,`, [Metadata.sha256 || ``, VersionId || ``])' \
            --output text 2>/dev/null || echo ",")
  if [ "${current%%,*}" = "$sum" ]; then
    echo "deploy: $name unchanged (version ${current#*,})" >&2
    echo "="
    return
  fi
  if ((DRY)); then
    echo "deploy: $name would be uploaded (sha256 $sum)" >&2
    echo "DRYRUN"
    return
  fi
  version=$($AWS s3api put-object --bucket "$BUCKET" --key "$k" --body "$file" --metadata "sha256=$sum" \
            --query VersionId --output text)
  echo "deploy: $name uploaded as s3://$BUCKET/$k version $version" >&2
  echo "$version"
}

args=()
for f in plugins.zip requirements.txt startup.sh; do
  [ -f "$BUNDLE/$f" ] || continue
  v=$(ship "$BUNDLE/$f")
  [ "$v" = "=" ] && continue
  case $f in
    plugins.zip) args+=(--plugins-s3-path "$(key plugins.zip)" --plugins-s3-object-version "$v") ;;
    requirements.txt) args+=(--requirements-s3-path "$(key requirements.txt)" --requirements-s3-object-version "$v") ;;
    startup.sh) args+=(--startup-script-s3-path "$(key startup.sh)" --startup-script-s3-object-version "$v") ;;
  esac
done

if ((${#args[@]} == 0)); then
  echo "deploy: plugins and requirements unchanged: MWAA environment $ENVIRONMENT not updated"
elif ((DRY)); then
  echo "deploy: would run: aws mwaa update-environment --name $ENVIRONMENT ${args[*]}"
else
  $AWS mwaa update-environment --name "$ENVIRONMENT" "${args[@]}" --query Arn --output text >/dev/null
  echo "deploy: MWAA environment $ENVIRONMENT updating with ${args[*]}"
fi
