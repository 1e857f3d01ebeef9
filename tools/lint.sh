#!/usr/bin/env bash
# lint.sh: the deploy checks of `make lint`, all offline, on template.yaml:
#
#   sam validate          AWS SAM CLI's validation: the SAM transform, offline
#   sam validate --lint   cfn-lint through SAM CLI
#   guided-deploy auth    SAM CLI's own check before `sam deploy --guided` (tools/samauth.py):
#                         a function route without authentication fails the lint
#   deploy configuration  samconfig.toml as `sam deploy` reads it, against the template
#                         (tools/samdeploy.py): region, tags, capabilities, parameter overrides
#                         the template declares and accepts, a default for every parameter
#   sam build             the linux/arm64 artifacts (BuildMethod: makefile, no Docker), each
#                         function's zipped size reported
#   checkov               on the SAM-transformed template (tools/samtransform.py --output), with
#                         --skip-download; a finding not fixed must be suppressed on its resource
#                         (Metadata: checkov: skip, with a comment), or the lint fails
#
# Usage: tools/lint.sh install | check | validate TEMPLATE
#
#   install  install aws-sam-cli and checkov, pinned by tools/requirements-sam.txt and
#            tools/requirements-checkov.txt, into git-ignored venvs tools/.venv/sam and
#            tools/.venv/checkov (skipped when the pins have not changed). Two venvs: they pin
#            different boto3 versions, as moto does a third (localstack/.venv).
#   check    install, then run the checks above on template.yaml
#   validate the two sam validate runs alone, on TEMPLATE
#
# Nothing reaches AWS or any other host: no credentials or AWS config files, the region set, every
# AWS endpoint and any HTTP(S) proxy pointed at a closed local port (SAM's version check and any SDK
# call fail at once), telemetry and update checks off, and Go builds with GOPROXY=off (the modules
# are downloaded before, by `go mod download`, outside these checks).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
venvs=$here/.venv
out=$root/.aws-sam

die() { echo "lint: $*" >&2; exit 1; }
say() { echo "lint: $*" >&2; }

stamp() { cat "$@" | cksum | cut -d' ' -f1; }

# install_venv NAME: tools/.venv/NAME from tools/requirements-NAME.txt, unless already done.
install_venv() {
	local name=$1 venv=$venvs/$1 req=$here/requirements-$1.txt s
	s=$(stamp "$req")
	if [ "$(cat "$venv/.eventfold-stamp" 2>/dev/null)" = "$s" ]; then
		return
	fi
	command -v python3 >/dev/null 2>&1 || die "missing prerequisite: Python 3.9 or newer (python3)"
	say "installing $name into tools/.venv/$name (pinned by tools/requirements-$name.txt)"
	rm -rf "$venv"
	python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
	"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2 ||
		die "pip install failed in tools/.venv/$name"
	echo "$s" >"$venv/.eventfold-stamp"
}

# install installs both venvs side by side (most of the time is download and unpacking).
install() {
	local sam checkov failed=0
	install_venv sam &
	sam=$!
	install_venv checkov &
	checkov=$!
	wait "$sam" || failed=1
	wait "$checkov" || failed=1
	[ "$failed" = 0 ] || die "install failed (above)"
}

# offline COMMAND...: runs COMMAND with no way to AWS or the network.
offline() {
	env -u AWS_PROFILE -u AWS_DEFAULT_PROFILE -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY \
		-u AWS_SESSION_TOKEN -u AWS_ROLE_ARN -u AWS_WEB_IDENTITY_TOKEN_FILE -u NO_PROXY -u no_proxy \
		AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
		AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ENDPOINT_URL=http://127.0.0.1:9 \
		HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
		SAM_CLI_TELEMETRY=0 __SAM_CLI_APP_DIR="$venvs/sam-home" CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
		GOPROXY=off \
		"$@"
}

# timed LABEL COMMAND...: runs COMMAND and says how long it took.
timed() {
	local label=$1 start=$SECONDS
	shift
	"$@"
	say "$label: ok ($((SECONDS - start)) s)"
}

# sam_validate TEMPLATE: both runs of sam validate. samconfig.toml sets `lint = true` for
# validate, which makes a plain `sam validate` run cfn-lint instead of the SAM transform; the first
# run reads an empty configuration instead, so that the transform runs.
sam_validate() {
	local none=$out/samconfig-none.toml
	mkdir -p "$out"
	echo "version = 0.1" >"$none"
	offline "$venvs/sam/bin/sam" validate --config-file "$none" --template-file "$1" >/dev/null
	offline "$venvs/sam/bin/sam" validate --lint --template-file "$1" >/dev/null
}

# sam_build builds every function into .aws-sam/build and prints its zipped size.
sam_build() {
	(cd "$root" && go mod download)
	(cd "$root" && offline "$venvs/sam/bin/sam" build --template-file template.yaml --build-dir "$out/build" \
		--build-in-source --no-cached --parallel >"$out/build.log" 2>&1) || {
		cat "$out/build.log" >&2
		die "sam build failed (log above)"
	}
	"$venvs/sam/bin/python" - "$out/build" <<'EOF'
import io, os, sys, zipfile
build = sys.argv[1]
for name in sorted(os.listdir(build)):
    d = os.path.join(build, name)
    if not os.path.isdir(d):
        continue
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for base, _, files in os.walk(d):
            for f in sorted(files):
                p = os.path.join(base, f)
                z.write(p, os.path.relpath(p, d))
    raw = sum(os.path.getsize(os.path.join(b, f)) for b, _, fs in os.walk(d) for f in fs)
    print(f"lint: sam build {name}: {buf.tell() / 1e6:.1f} MB zipped ({raw / 1e6:.1f} MB unzipped, linux/arm64)", file=sys.stderr)
EOF
}

run_checkov() {
	"$root/localstack/.venv/bin/python" "$here/samtransform.py" --output "$out/transformed.json" "$root/template.yaml"
	# --quiet prints only failed checks; skipped ones carry their reasons in the template.
	offline "$venvs/checkov/bin/checkov" --file "$out/transformed.json" --framework cloudformation \
		--skip-download --compact --quiet --output cli >"$out/checkov.txt" 2>&1 || {
		cat "$out/checkov.txt" >&2
		die "checkov: a finding on the transformed template is neither fixed nor suppressed with a reason (above)"
	}
	say "checkov: $(grep -m1 'Passed checks' "$out/checkov.txt" || echo 'no summary')"
}

check() {
	install
	mkdir -p "$out"
	timed "sam validate, sam validate --lint" sam_validate "$root/template.yaml"
	timed "sam deploy --guided's authentication check" offline "$venvs/sam/bin/python" "$here/samauth.py" "$root/template.yaml"
	timed "samconfig.toml's deploy environments" offline "$venvs/sam/bin/python" "$here/samdeploy.py" "$root/template.yaml" "$root/samconfig.toml"
	timed "sam build" sam_build
	timed "checkov" run_checkov
}

case ${1:-} in
install) install ;;
check) check ;;
validate)
	[ $# -eq 2 ] || die "usage: tools/lint.sh validate TEMPLATE"
	[ -x "$venvs/sam/bin/sam" ] || die "aws-sam-cli is not installed: tools/lint.sh install (make lint does)"
	sam_validate "$2"
	;;
*) die "usage: tools/lint.sh install | check" ;;
esac
