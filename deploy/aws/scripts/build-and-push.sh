#!/usr/bin/env bash
# Builds the facilitator image (deploy/container/Dockerfile) and pushes it to ECR as TAG.
#   build-and-push.sh [--dry-run] TAG
# Settings: X402_ECR_REPOSITORY (the repository's name), AWS_REGION. A tag already in the
# repository is refused: a release tag names one image, and the services run tags.
set -euo pipefail
# shellcheck source=deploy/aws/scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dry_run=""
tag=""
for arg in "$@"; do
  case "$arg" in
    --dry-run) dry_run=yes ;;
    -h | --help)
      print_header 5
      exit 0
      ;;
    -*) die "unknown option $arg" ;;
    *)
      [ -z "$tag" ] || die "one TAG only"
      tag="$arg"
      ;;
  esac
done
[ -n "$tag" ] || die "usage: build-and-push.sh [--dry-run] TAG"
# Docker's tag grammar; "latest" is refused so that a service never runs a moving tag.
[[ "$tag" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] ||
  die "TAG '$tag' is not a valid image tag (letters, digits, '_', '.', '-'; at most 128; not starting with '.' or '-')"
[ "$tag" != latest ] || die "TAG 'latest' is refused: give the release a tag of its own"
repository="${X402_ECR_REPOSITORY:-}"
[ -n "$repository" ] || die "X402_ECR_REPOSITORY is not set (the ECR repository's name)"
command -v aws >/dev/null 2>&1 || die "the AWS CLI (aws) is not installed"

if ! uri="$(aws ecr describe-repositories --repository-names "$repository" \
  --query 'repositories[0].repositoryUri' --output text 2>/dev/null)"; then
  die "ECR repository '$repository' not found (or not readable with these credentials)"
fi
if aws ecr describe-images --repository-name "$repository" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
  die "tag '$tag' is already in $repository; give this build a new tag"
fi
registry="${uri%%/*}"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
build=(docker build -f "$root/deploy/container/Dockerfile" -t "$uri:$tag" "$root")
push=(docker push "$uri:$tag")
if [ "$dry_run" = yes ]; then
  echo "dry run: would run:"
  echo "  ${build[*]}"
  echo "  aws ecr get-login-password | docker login --username AWS --password-stdin $registry"
  echo "  ${push[*]}"
  exit 0
fi
command -v docker >/dev/null 2>&1 || die "docker is not installed"
"${build[@]}"
aws ecr get-login-password | docker login --username AWS --password-stdin "$registry"
"${push[@]}"
echo "pushed $uri:$tag"
