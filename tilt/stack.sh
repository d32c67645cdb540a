#!/usr/bin/env bash
# tilt/stack.sh: runs Sextant's distributed stack on this machine without
# Docker: Apache Kafka (KRaft, one node: broker + controller), Apache Cassandra
# (standing in for ScyllaDB) and Redis, all on 127.0.0.1.
#
# Kafka's and Cassandra's jars come from Maven Central (tilt/pom.xml, fetched
# with mvn into the default local repository, so later fetches are cached);
# Redis comes from Debian (apt-get install redis-server). Everything the stack
# writes lives under tilt/.stack/ (git-ignored) unless SEXTANT_STACK_DIR says
# otherwise.
#
# Usage: tilt/stack.sh COMMAND [ARGS]
#   up [SERVER...]          fetch/install what is missing, start the servers
#                           (all by default) and return once each is ready;
#                           returns at once for servers already running and ready
#   down [--wipe] [SERVER...]
#                           stop the servers (SIGTERM, then SIGKILL after a grace
#                           period); --wipe also deletes their data and logs
#   status                  one line per server; exit 0 only if all are ready
#   env                     the environment of `sextant serve` for this stack
#   start|stop|restart|kill SERVER
#                           one server; kill is SIGKILL (a crash, for recovery tests)
#   restart-cassandra, stop-redis, start-redis, ... (COMMAND-SERVER works too)
#   check SERVER            exit 0 if SERVER is running and ready (readiness probes)
#   logs SERVER             follow a server's log
#   fetch                   only fetch the jars
#   kafka-topics ARGS...    run Kafka's TopicCommand against this broker
#                           (e.g. kafka-topics --list)
# SERVER is kafka, cassandra or redis.
#
# Settings (environment; defaults in brackets):
#   SEXTANT_STACK_DIR [tilt/.stack]      jars, configs, data, logs, pid files
#   SEXTANT_STACK_KAFKA_PORT [9092]      SEXTANT_STACK_KAFKA_CONTROLLER_PORT [9093]
#   SEXTANT_STACK_CQL_PORT [9042]        SEXTANT_STACK_CASSANDRA_STORAGE_PORT [7000]
#   SEXTANT_STACK_REDIS_PORT [6379]      SEXTANT_STACK_CQL_KEYSPACE [sextant] (for env)
#   SEXTANT_STACK_KAFKA_HEAP ["-Xms256m -Xmx512m"]
#   SEXTANT_STACK_CASSANDRA_HEAP ["-Xms2g -Xmx2g"]
#   SEXTANT_STACK_CASSANDRA_COMMITLOG_SYNC [batch]: batch (fsync before each
#     acknowledgement: acknowledged writes survive a SIGKILL), group (fsync
#     every 15ms, writes wait for it) or periodic (fsync every 10s, ScyllaDB's
#     default: a SIGKILL can lose the last seconds of acknowledged writes)
#   SEXTANT_STACK_KAFKA_TIMEOUT [120]    SEXTANT_STACK_CASSANDRA_TIMEOUT [180]
#   SEXTANT_STACK_REDIS_TIMEOUT [20]     seconds to wait for readiness
#   JAVA_HOME                            a JDK >= 17 (default: java on PATH); Cassandra
#                                        5.0 needs 17: if that java is another version,
#                                        a JDK 17 under /usr/lib/jvm is used for it
set -euo pipefail

TILT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
STACK_DIR=${SEXTANT_STACK_DIR:-$TILT_DIR/.stack}
case $STACK_DIR in /*) ;; *) STACK_DIR=$PWD/$STACK_DIR ;; esac

HOST=127.0.0.1
KAFKA_PORT=${SEXTANT_STACK_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${SEXTANT_STACK_KAFKA_CONTROLLER_PORT:-9093}
CQL_PORT=${SEXTANT_STACK_CQL_PORT:-9042}
CASSANDRA_STORAGE_PORT=${SEXTANT_STACK_CASSANDRA_STORAGE_PORT:-7000}
REDIS_PORT=${SEXTANT_STACK_REDIS_PORT:-6379}
CQL_KEYSPACE=${SEXTANT_STACK_CQL_KEYSPACE:-sextant}
KAFKA_HEAP=${SEXTANT_STACK_KAFKA_HEAP:--Xms256m -Xmx512m}
CASSANDRA_HEAP=${SEXTANT_STACK_CASSANDRA_HEAP:--Xms2g -Xmx2g}
CASSANDRA_COMMITLOG_SYNC=${SEXTANT_STACK_CASSANDRA_COMMITLOG_SYNC:-batch}
KAFKA_TIMEOUT=${SEXTANT_STACK_KAFKA_TIMEOUT:-120}
CASSANDRA_TIMEOUT=${SEXTANT_STACK_CASSANDRA_TIMEOUT:-180}
REDIS_TIMEOUT=${SEXTANT_STACK_REDIS_TIMEOUT:-20}

LIB=$STACK_DIR/lib
CONF=$STACK_DIR/conf
DATA=$STACK_DIR/data
LOGS=$STACK_DIR/logs
RUN=$STACK_DIR/run
TMP=$STACK_DIR/tmp

SERVERS=(kafka cassandra redis)

# ---------------------------------------------------------------- helpers

say() { printf 'stack: %s\n' "$*" >&2; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '/^# Usage:/,/^# SERVER is/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

valid_server() {
  case ${1:-} in kafka | cassandra | redis) return 0 ;; *) return 1 ;; esac
}

need_server() {
  valid_server "${1:-}" || die "unknown server '${1:-}' (kafka, cassandra or redis)"
}

for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$CQL_PORT" "$CASSANDRA_STORAGE_PORT" "$REDIS_PORT"; do
  [[ $p =~ ^[0-9]+$ ]] || die "port '$p' is not a number"
done

# port_open PORT: true if something accepts TCP connections on HOST:PORT.
port_open() {
  # shellcheck disable=SC2016 # $0 and $1 are the inner bash's arguments
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

now() { date +%s; }

# Locks: one per server, so that Tilt, tests and people can run this script
# at the same time (`up kafka` and `up cassandra` run in parallel, two `up
# kafka` do not), and one around mvn. A lock is a file descriptor: 5 (fetch),
# 6 (kafka), 7 (cassandra), 8 (redis); every server we start has them closed.
# Server locks are always taken in the order kafka, cassandra, redis, and
# before the fetch lock, so two invocations cannot deadlock.
HELD_LOCKS=" "
lock_fd() {
  case $1 in fetch) echo 5 ;; kafka) echo 6 ;; cassandra) echo 7 ;; redis) echo 8 ;; esac
}
take_lock() { # NAME...
  local name fd
  mkdir -p "$RUN"
  for name in "$@"; do
    [[ $HELD_LOCKS == *" $name "* ]] && continue
    fd=$(lock_fd "$name")
    eval "exec $fd>\"\$RUN/\$name.lock\""
    if ! flock -n "$fd"; then
      say "waiting for another tilt/stack.sh to finish with $name..."
      flock -w 900 "$fd" || die "another tilt/stack.sh holds $RUN/$name.lock for too long"
    fi
    HELD_LOCKS+="$name "
  done
}
release_lock() { # NAME
  local fd
  fd=$(lock_fd "$1")
  eval "exec $fd>&-"
  HELD_LOCKS=${HELD_LOCKS/ $1 / }
}
# in_order SERVER...: the servers named, in lock order, without repeats.
in_order() {
  local s a
  for s in "${SERVERS[@]}"; do
    for a in "$@"; do
      if [[ $a == "$s" ]]; then
        echo "$s"
        break
      fi
    done
  done
}

java_major() { # JAVA -> major version (8, 11, 17, 21...)
  local v major
  v=$("$1" -version 2>&1 | sed -n '1s/.* version "\([^"]*\)".*/\1/p')
  major=${v%%.*}
  [[ $major == 1 ]] && major=$(echo "$v" | cut -d. -f2)
  [[ $major =~ ^[0-9]+$ ]] && echo "$major" || echo 0
}

# java_bin [cassandra]: the java to run. Kafka 4 needs Java >= 17; Cassandra
# 5.0 runs on Java 11 and 17 only, so for it a JDK 17 is looked for when the
# default java is another version.
java_bin() {
  local j major
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    j=$JAVA_HOME/bin/java
  else
    j=$(command -v java) || die "java not found: install a JDK 17 (apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
  fi
  major=$(java_major "$j")
  ((major >= 17)) || die "$j is Java $major: Kafka 4 and Cassandra 5 need Java 17 (set JAVA_HOME)"
  if [[ ${1:-} == cassandra && $major != 17 ]]; then
    local c
    for c in /usr/lib/jvm/*17*/bin/java; do
      if [[ -x $c && $(java_major "$c") == 17 ]]; then
        echo "$c"
        return 0
      fi
    done
    say "warning: Cassandra 5.0 supports Java 11 and 17, and $j is Java $major: it may fail to start (set JAVA_HOME to a JDK 17)"
  fi
  echo "$j"
}

log_file() { echo "$LOGS/$1.log"; }
pid_file() { echo "$RUN/$1.pid"; }

# ours SERVER CMDLINE: the command line is that of our own process of that
# server, so a recycled pid is never taken for ours.
ours() {
  local cl=$2
  case $1 in
    kafka) [[ $cl == *"$CONF/kafka/server.properties"* ]] ;;
    cassandra) [[ $cl == *"$CONF/cassandra/cassandra.yaml"* ]] ;;
    # redis-server starts with its config file on its command line, then
    # rewrites its title to "redis-server 127.0.0.1:PORT" (the file gone):
    # either is ours.
    redis) [[ $cl == *"$CONF/redis/redis.conf"* || ($cl == *redis-server* && $cl == *":$REDIS_PORT"*) ]] ;;
  esac
}

# alive PID: the process exists and is not a zombie. A JVM's main thread can
# be a zombie while its other threads still run (and hold its sockets), so
# every thread is looked at: the process is dead once all of them are.
alive() {
  local pid=$1 st state
  [[ -d /proc/$pid/task ]] || return 1
  for st in /proc/"$pid"/task/*/stat; do
    state=$(sed 's/^.*) //' "$st" 2>/dev/null | cut -d' ' -f1) || continue
    [[ -n $state && $state != Z && $state != X ]] && return 0
  done
  return 1
}

# server_pid SERVER: prints the pid of our running server, or fails.
server_pid() {
  local pid cl
  pid=$(launched_pid "$1") || return 1
  alive "$pid" || return 1
  cl=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  ours "$1" "$cl" || return 1
  echo "$pid"
}

# launched_pid SERVER: prints the pid recorded by the last start, or fails.
launched_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

server_ports() {
  case $1 in
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
    cassandra) echo "$CQL_PORT $CASSANDRA_STORAGE_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
  esac
}

redis_ping() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
  else
    # shellcheck disable=SC2016
    timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"; printf "PING\r\n" >&3; IFS= read -r l <&3; [[ $l == "+PONG"* ]]' "$HOST" "$REDIS_PORT" 2>/dev/null
  fi
}

# ready SERVER: our process runs and answers.
ready() {
  local log
  server_pid "$1" >/dev/null || return 1
  log=$(log_file "$1")
  case $1 in
    kafka) grep -q 'Kafka Server started' "$log" 2>/dev/null && port_open "$KAFKA_PORT" ;;
    cassandra) grep -q 'Starting listening for CQL clients' "$log" 2>/dev/null && port_open "$CQL_PORT" ;;
    redis) redis_ping ;;
  esac
}

show_log_tail() {
  local log
  log=$(log_file "$1")
  if [[ -s $log ]]; then
    printf '\n----- last lines of %s -----\n' "$log" >&2
    tail -n "${2:-40}" "$log" >&2
    printf -- '----- end of %s -----\n\n' "$log" >&2
  else
    say "$log is empty or missing"
  fi
}

rss_of() { # PID -> "123 MiB"
  local kb
  kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true)
  [[ -n $kb ]] && echo "$((kb / 1024)) MiB" || echo "?"
}

# ---------------------------------------------------------------- jars

pom_stamp() { sha256sum "$TILT_DIR/pom.xml" | cut -c1-16; }

# fetch_jars kafka|cassandra: copies the profile's runtime jars into lib/NAME.
fetch_jars() {
  local what=$1 dir=$LIB/$1 stamp
  stamp=$(pom_stamp)
  if [[ -f $dir/.fetched && $(<"$dir/.fetched") == "$stamp" ]]; then
    return 0
  fi
  take_lock fetch
  if [[ -f $dir/.fetched && $(<"$dir/.fetched") == "$stamp" ]]; then
    release_lock fetch # another invocation fetched them meanwhile
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (apt-get install -y maven)"
  say "fetching $what jars from Maven Central into $dir (the first fetch takes a few minutes)..."
  local t0 partial=$dir.partial
  t0=$(now)
  rm -rf "$partial"
  mkdir -p "$LIB" "$LOGS"
  # mvn's output goes to a file: Debian's Maven 3.8 prints stray colour codes
  # even in batch mode, and -q leaves nothing else worth showing on success.
  local mlog=$LOGS/mvn-$what.log
  if ! mvn -B -q -f "$TILT_DIR/pom.xml" -P "$what" \
    dependency:copy-dependencies -DoutputDirectory="$partial" </dev/null >"$mlog" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$mlog" | tail -n 40 >&2
    rm -rf "$partial"
    die "mvn could not fetch the $what jars (log: $mlog)"
  fi
  ls "$partial"/*.jar >/dev/null 2>&1 || die "mvn fetched no $what jars into $partial"
  echo "$stamp" >"$partial/.fetched"
  rm -rf "$dir"
  mv "$partial" "$dir"
  release_lock fetch
  say "$what jars: $(find "$dir" -name '*.jar' | wc -l) files, $(du -sh "$dir" | cut -f1), in $(($(now) - t0))s"
}

# ---------------------------------------------------------------- Redis install

ensure_redis_installed() {
  command -v redis-server >/dev/null 2>&1 && return 0
  local sudo=()
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "redis-server is missing and I am not root: run 'apt-get install -y redis-server' as root"
    sudo=(sudo -n)
  fi
  mkdir -p "$LOGS"
  local apt_log=$LOGS/apt-redis.log
  say "installing redis-server with apt-get (log: $apt_log)..."
  if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >"$apt_log" 2>&1; then
    say "apt-get install failed; running apt-get update and trying again..."
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get update -q >>"$apt_log" 2>&1 || true
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q redis-server >>"$apt_log" 2>&1; then
      tail -n 20 "$apt_log" >&2
      die "could not install redis-server with apt-get"
    fi
  fi
  command -v redis-server >/dev/null 2>&1 || die "apt-get installed redis-server but it is not on PATH"
  # Debian's package may start its own system-wide redis (persistent, port
  # 6379). Stop that one: this stack runs its own, without persistence.
  if pgrep -x redis-server >/dev/null 2>&1; then
    say "stopping the redis-server that the Debian package started"
    "${sudo[@]}" service redis-server stop >/dev/null 2>&1 ||
      "${sudo[@]}" /etc/init.d/redis-server stop >/dev/null 2>&1 || true
  fi
}

# ---------------------------------------------------------------- configs

write_kafka_config() {
  mkdir -p "$CONF/kafka" "$DATA/kafka" "$TMP/kafka"
  cat >"$CONF/kafka/server.properties" <<EOF
# Written by tilt/stack.sh: edits are overwritten at each start.
# One Kafka node in KRaft mode, broker and controller at once, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA/kafka

# A single node: every internal topic has one replica.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true

# Small machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.retention.hours=168
log.segment.bytes=134217728
EOF
  cat >"$CONF/kafka/log4j2.properties" <<'EOF'
# Written by tilt/stack.sh. Everything goes to stdout, which stack.sh sends to
# logs/kafka.log. (A .properties file, not YAML: log4j's YAML support would
# need jackson-dataformat-yaml on the classpath.)
status = warn
name = sextant-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.netclient.name = org.apache.kafka.clients.NetworkClient
logger.netclient.level = warn
EOF
}

commitlog_sync_yaml() {
  case $CASSANDRA_COMMITLOG_SYNC in
    periodic) printf 'commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n' ;;
    group) printf 'commitlog_sync: group\ncommitlog_sync_group_window: 15ms\n' ;;
    batch) printf 'commitlog_sync: batch\n' ;;
    *) die "SEXTANT_STACK_CASSANDRA_COMMITLOG_SYNC must be periodic, group or batch, not '$CASSANDRA_COMMITLOG_SYNC'" ;;
  esac
}

write_cassandra_config() {
  local d=$DATA/cassandra
  commitlog_sync_yaml >/dev/null # validates the setting (dies here, not in the heredoc)
  mkdir -p "$CONF/cassandra" "$d" "$TMP/cassandra" "$LOGS/cassandra"
  cat >"$CONF/cassandra/cassandra.yaml" <<EOF
# Written by tilt/stack.sh: edits are overwritten at each start.
# One Cassandra node on loopback, sized for a small machine. Unknown keys make
# Cassandra refuse to start: keep to the keys of the running version.
cluster_name: sextant-local
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$HOST:$CASSANDRA_STORAGE_PORT"
listen_address: $HOST
rpc_address: $HOST
storage_port: $CASSANDRA_STORAGE_PORT
native_transport_port: $CQL_PORT
start_native_transport: true

data_file_directories:
  - $d/data
commitlog_directory: $d/commitlog
saved_caches_directory: $d/saved_caches
hints_directory: $d/hints
cdc_raw_directory: $d/cdc_raw

$(commitlog_sync_yaml)
commitlog_segment_size: 8MiB

authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer

# Small machine.
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 8
concurrent_compactors: 1
memtable_heap_space: 128MiB
memtable_offheap_space: 128MiB
file_cache_size: 64MiB
auto_snapshot: false
storage_compatibility_mode: NONE
EOF
  cat >"$CONF/cassandra/logback.xml" <<'EOF'
<!-- Written by tilt/stack.sh. Everything goes to stdout, which stack.sh sends
     to logs/cassandra.log. -->
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder>
      <pattern>%-5level [%thread] %date{ISO8601} %logger{1} - %msg%n</pattern>
    </encoder>
  </appender>
  <root level="INFO">
    <appender-ref ref="STDOUT"/>
  </root>
</configuration>
EOF
}

write_redis_config() {
  mkdir -p "$CONF/redis" "$DATA/redis"
  cat >"$CONF/redis/redis.conf" <<EOF
# Written by tilt/stack.sh: edits are overwritten at each start.
# Loopback only, no persistence (no RDB snapshots, no AOF).
bind $HOST
port $REDIS_PORT
protected-mode yes
daemonize no
supervised no
logfile ""
loglevel notice
dir $DATA/redis
save ""
appendonly no
EOF
}

# ---------------------------------------------------------------- commands per server

kafka_java_opts() {
  # shellcheck disable=SC2206 # the heap setting is a list of flags
  local heap=($KAFKA_HEAP)
  printf '%s\n' "${heap[@]}" \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    "-Djava.io.tmpdir=$TMP/kafka" \
    "-Dkafka.logs.dir=$LOGS" \
    "-Dlog4j2.configurationFile=$CONF/kafka/log4j2.properties"
}

kafka_command() { # prints the command, one word a line
  local java
  java=$(java_bin)
  printf '%s\n' "$java"
  kafka_java_opts
  printf '%s\n' -cp "$LIB/kafka/*" kafka.Kafka "$CONF/kafka/server.properties"
}

# Kafka's storage must be formatted once, with a cluster id, before the first start.
format_kafka() {
  [[ -f $DATA/kafka/meta.properties ]] && return 0
  local id java flog=$LOGS/kafka-format.log
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  java=$(java_bin)
  mkdir -p "$LOGS"
  say "formatting Kafka's storage (cluster id $id)"
  local opts
  mapfile -t opts < <(kafka_java_opts)
  if ! "$java" "${opts[@]}" -cp "$LIB/kafka/*" kafka.tools.StorageTool \
    format -t "$id" -c "$CONF/kafka/server.properties" --ignore-formatted >"$flog" 2>&1; then
    tail -n 30 "$flog" >&2
    die "could not format Kafka's storage (log: $flog)"
  fi
}

cassandra_command() {
  local java jamm
  java=$(java_bin cassandra 2>/dev/null)
  # shellcheck disable=SC2206
  local heap=($CASSANDRA_HEAP)
  printf '%s\n' "$java" "${heap[@]}" \
    -XX:+UseG1GC -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError -Xss256k \
    -Djava.net.preferIPv4Stack=true -Djava.awt.headless=true \
    "-Dcassandra.config=file://$CONF/cassandra/cassandra.yaml" \
    "-Dcassandra.storagedir=$DATA/cassandra" \
    "-Dcassandra.logdir=$LOGS/cassandra" \
    "-Dlogback.configurationFile=$CONF/cassandra/logback.xml" \
    -Dcassandra-foreground=yes \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 \
    "-Djava.io.tmpdir=$TMP/cassandra" "-Djna.tmpdir=$TMP/cassandra" \
    -Djdk.attach.allowAttachSelf=true \
    -Dio.netty.tryReflectionSetAccessible=true \
    --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED \
    --add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED \
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED \
    --add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED \
    --add-exports=java.sql/java.sql=ALL-UNNAMED \
    --add-exports=java.base/java.lang.ref=ALL-UNNAMED \
    --add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED \
    --add-opens=java.base/java.lang.module=ALL-UNNAMED \
    --add-opens=java.base/jdk.internal.loader=ALL-UNNAMED \
    --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED \
    --add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED \
    --add-opens=java.base/jdk.internal.math=ALL-UNNAMED \
    --add-opens=java.base/jdk.internal.module=ALL-UNNAMED \
    --add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED \
    --add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED \
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED \
    --add-opens=java.base/java.io=ALL-UNNAMED \
    --add-opens=java.base/java.lang.reflect=ALL-UNNAMED \
    --add-opens=java.base/java.lang=ALL-UNNAMED \
    --add-opens=java.base/java.util=ALL-UNNAMED \
    --add-opens=java.base/java.nio=ALL-UNNAMED
  jamm=$(find "$LIB/cassandra" -maxdepth 1 -name 'jamm-*.jar' | head -n 1)
  [[ -n $jamm ]] && printf '%s\n' "-javaagent:$jamm"
  printf '%s\n' -cp "$LIB/cassandra/*" org.apache.cassandra.service.CassandraDaemon
}

redis_command() {
  printf '%s\n' "$(command -v redis-server)" "$CONF/redis/redis.conf"
}

# launch SERVER: starts it detached (own session, stdin closed, output to its
# log, lock fd closed) and records its pid.
launch() {
  local server=$1 log pidf cmd
  log=$(log_file "$server")
  pidf=$(pid_file "$server")
  mkdir -p "$LOGS" "$RUN"
  [[ -f $log ]] && mv -f "$log" "$log.1"
  rm -f "$pidf"
  mapfile -t cmd < <("${server}_command")
  {
    printf '# %s started by tilt/stack.sh at %s\n# ' "$server" "$(date -Is)"
    printf '%q ' "${cmd[@]}"
    printf '\n'
  } >"$log"
  # The child writes its own pid, then execs the server (same pid).
  # shellcheck disable=SC2016
  (cd "$STACK_DIR" && setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "${cmd[@]}" \
    </dev/null >>"$log" 2>&1 5>&- 6>&- 7>&- 8>&-)
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $pidf ]] && return 0
    sleep 0.1
  done
  die "$server did not start (no pid file $pidf)"
}

check_ports_free() {
  local server=$1 p
  for p in $(server_ports "$server"); do
    if port_open "$p"; then
      die "$server: port $HOST:$p is already taken by another process (not this stack's $server: see 'ss -ltnp sport = :$p'); stop it or choose another port (see tilt/stack.sh header)"
    fi
  done
}

# start_server SERVER: starts it unless it already runs; does not wait.
start_server() {
  local server=$1
  if server_pid "$server" >/dev/null; then
    return 0
  fi
  rm -f "$(pid_file "$server")"
  check_ports_free "$server"
  case $server in
    kafka | cassandra) java_bin "$server" >/dev/null ;; # fails here, with its message, if Java is unfit
  esac
  case $server in
    kafka)
      fetch_jars kafka
      write_kafka_config
      format_kafka
      ;;
    cassandra)
      fetch_jars cassandra
      write_cassandra_config
      ;;
    redis)
      ensure_redis_installed
      write_redis_config
      ;;
  esac
  say "starting $server (log: $(log_file "$server"))"
  launch "$server"
}

timeout_of() {
  case $1 in
    kafka) echo "$KAFKA_TIMEOUT" ;;
    cassandra) echo "$CASSANDRA_TIMEOUT" ;;
    redis) echo "$REDIS_TIMEOUT" ;;
  esac
}

endpoint_of() {
  case $1 in
    kafka) echo "$HOST:$KAFKA_PORT" ;;
    cassandra) echo "$HOST:$CQL_PORT" ;;
    redis) echo "$HOST:$REDIS_PORT" ;;
  esac
}

# wait_ready SERVER T0: waits until the server is ready (Redis: answers PING
# with PONG) or its deadline; on failure shows its log. The server exited
# only when the process started is gone: its command line may still change
# during start-up (redis-server sets its title).
wait_ready() {
  local server=$1 t0=$2 limit deadline pid poll=1
  limit=$(timeout_of "$server")
  deadline=$(($(now) + limit))
  [[ $server == redis ]] && poll=0.2
  while ! ready "$server"; do
    if ! pid=$(launched_pid "$server") || ! alive "$pid"; then
      show_log_tail "$server"
      die "$server exited during start-up (log: $(log_file "$server"))"
    fi
    if (($(now) >= deadline)); then
      show_log_tail "$server"
      die "$server is not ready after ${limit}s (still running, pid $pid; log: $(log_file "$server"))"
    fi
    sleep "$poll"
  done
  say "$server ready on $(endpoint_of "$server") ($(($(now) - t0))s)"
}

stop_server() { # SERVER [SIGNAL]
  local server=$1 sig=${2:-TERM} pid grace deadline
  if ! pid=$(server_pid "$server"); then
    rm -f "$(pid_file "$server")"
    say "$server is not running"
    return 0
  fi
  case $server in kafka) grace=60 ;; cassandra) grace=90 ;; redis) grace=15 ;; esac
  say "stopping $server (pid $pid, SIG$sig)"
  kill "-$sig" "$pid" 2>/dev/null || true
  deadline=$(($(now) + grace))
  while alive "$pid"; do
    if (($(now) >= deadline)); then
      say "$server did not stop within ${grace}s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.5
  done
  local i
  for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.2; done
  alive "$pid" && die "$server (pid $pid) is still alive"
  rm -f "$(pid_file "$server")"
  # The kernel may need a moment to release the ports of a killed process.
  local p
  for p in $(server_ports "$server"); do
    for ((i = 0; i < 50; i++)); do port_open "$p" || break; sleep 0.2; done
  done
  say "$server stopped"
}

wipe_server() {
  local server=$1
  say "wiping $server's data and logs"
  rm -rf "${DATA:?}/$server" "${CONF:?}/$server" "${TMP:?}/$server" \
    "${LOGS:?}/$server.log" "$LOGS/$server.log.1" "${LOGS:?}/$server"
  [[ $server == kafka ]] && rm -f "$LOGS/kafka-format.log"
  return 0
}

# ---------------------------------------------------------------- top-level commands

cmd_up() {
  local servers=("$@") s t0
  ((${#servers[@]})) || servers=("${SERVERS[@]}")
  for s in "${servers[@]}"; do need_server "$s"; done
  mapfile -t servers < <(in_order "${servers[@]}")
  take_lock "${servers[@]}"
  t0=$(now)
  # Start every server first and wait afterwards: they boot in parallel.
  local started=()
  for s in "${servers[@]}"; do
    if ready "$s"; then
      say "$s already running and ready on $(endpoint_of "$s")"
      continue
    fi
    start_server "$s"
    started+=("$s")
  done
  for s in "${started[@]+"${started[@]}"}"; do
    wait_ready "$s" "$t0"
  done
  say "up in $(($(now) - t0))s"
}

cmd_down() {
  local wipe=0 servers=() s
  for s in "$@"; do
    case $s in
      --wipe) wipe=1 ;;
      *) need_server "$s"; servers+=("$s") ;;
    esac
  done
  ((${#servers[@]})) || servers=("${SERVERS[@]}")
  mapfile -t servers < <(in_order "${servers[@]}")
  take_lock "${servers[@]}"
  # Stop the servers in parallel: Kafka and Cassandra each take a few seconds.
  local pids=() rc=0
  for s in "${servers[@]}"; do
    stop_server "$s" &
    pids+=($!)
  done
  for s in "${pids[@]}"; do wait "$s" || rc=1; done
  ((rc == 0)) || die "some servers did not stop"
  if ((wipe)); then
    for s in "${servers[@]}"; do wipe_server "$s"; done
  fi
  return 0
}

cmd_status() {
  local s pid all=0 state
  for s in "${SERVERS[@]}"; do
    if pid=$(server_pid "$s"); then
      if ready "$s"; then state=ready; else state=starting; all=1; fi
      printf '%-9s %-8s pid %-7s %-15s rss %-9s log %s\n' "$s" "$state" "$pid" "$(endpoint_of "$s")" "$(rss_of "$pid")" "$(log_file "$s")"
    else
      all=1
      printf '%-9s %-8s %-11s %-15s\n' "$s" stopped "" "$(endpoint_of "$s")"
    fi
  done
  return "$all"
}

cmd_env() {
  cat <<EOF
export SEXTANT_KAFKA_BROKERS=$HOST:$KAFKA_PORT
export SEXTANT_CQL_HOSTS=$HOST:$CQL_PORT
export SEXTANT_CQL_KEYSPACE=$CQL_KEYSPACE
export SEXTANT_REDIS_ADDR=$HOST:$REDIS_PORT
EOF
}

cmd_kafka_topics() {
  local java opts has_bs=0 a
  [[ -f $LIB/kafka/.fetched ]] || die "Kafka's jars are not fetched yet: run tilt/stack.sh up"
  java=$(java_bin)
  for a in "$@"; do [[ $a == --bootstrap-server* ]] && has_bs=1; done
  local args=("$@")
  ((has_bs)) || args=(--bootstrap-server "$HOST:$KAFKA_PORT" "${args[@]}")
  mkdir -p "$CONF/kafka"
  cat >"$CONF/kafka/tools-log4j2.properties" <<'EOF'
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = STDERR
EOF
  exec "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    "-Dlog4j2.configurationFile=$CONF/kafka/tools-log4j2.properties" \
    -cp "$LIB/kafka/*" org.apache.kafka.tools.TopicCommand "${args[@]}"
}

main() {
  local sub=${1:-}
  (($#)) && shift
  case $sub in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    env) cmd_env ;;
    check)
      need_server "${1:-}"
      ready "$1"
      ;;
    start)
      need_server "${1:-}"
      cmd_up "$1"
      ;;
    stop)
      need_server "${1:-}"
      take_lock "$1"
      stop_server "$1"
      ;;
    kill)
      need_server "${1:-}"
      take_lock "$1"
      stop_server "$1" KILL
      ;;
    restart)
      need_server "${1:-}"
      take_lock "$1"
      stop_server "$1"
      cmd_up "$1"
      ;;
    start-* | stop-* | restart-* | kill-*)
      valid_server "${sub#*-}" || usage
      main "${sub%%-*}" "${sub#*-}"
      ;;
    logs)
      need_server "${1:-}"
      exec tail -n 100 -F "$(log_file "$1")"
      ;;
    fetch)
      fetch_jars kafka
      fetch_jars cassandra
      ;;
    kafka-topics) cmd_kafka_topics "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
