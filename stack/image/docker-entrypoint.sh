#!/usr/bin/env bash
# Entrypoint of the locally built Flink image. It accepts the same arguments
# and environment as the official 'flink' image (jobmanager | taskmanager |
# standalone-job | any command; FLINK_PROPERTIES; JOB_MANAGER_RPC_ADDRESS;
# TASK_MANAGER_NUMBER_OF_TASK_SLOTS) so either image can run the stack.
#
# Config files mounted read-only under /opt/flink/conf-mounted are copied into
# conf/ first: Flink's config tooling edits conf/ in place, which must never
# write through to the operator's files.
set -euo pipefail

CONF_DIR="${FLINK_HOME}/conf"
MOUNTED_DIR="${FLINK_HOME}/conf-mounted"

if [ -f "${MOUNTED_DIR}/flink-conf.yaml" ]; then
    # Flink 1.19+ reads conf/config.yaml when it exists and ignores
    # flink-conf.yaml; remove the default so the legacy file takes effect.
    rm -f "${CONF_DIR}/config.yaml"
    cp "${MOUNTED_DIR}/flink-conf.yaml" "${CONF_DIR}/flink-conf.yaml"
elif [ -f "${MOUNTED_DIR}/config.yaml" ]; then
    cp "${MOUNTED_DIR}/config.yaml" "${CONF_DIR}/config.yaml"
fi

set_legacy_option() {
    # Flink 1.18 has no config-parser-utils.sh: as its official image did, replace the key's line in
    # flink-conf.yaml (the only file 1.18 reads) or append one.
    local file="${CONF_DIR}/flink-conf.yaml"
    local escaped
    escaped="$(printf '%s' "$1" | sed -e 's/[.[\*^$/]/\\&/g')"
    touch "${file}"
    if grep -Eq "^${escaped}:" "${file}"; then
        sed -i -e "s|^${escaped}:.*|$1: $2|" "${file}"
    else
        printf '%s: %s\n' "$1" "$2" >> "${file}"
    fi
}

set_config_options() {
    if [ ! -x "${FLINK_HOME}/bin/config-parser-utils.sh" ]; then
        while [ $# -gt 0 ]; do
            set_legacy_option "$1" "$2"
            shift 2
        done
        return
    fi
    # Same mechanism as the official image: Flink's own parser rewrites the file.
    local params=()
    while [ $# -gt 0 ]; do
        params+=("-D$1=$2")
        shift 2
    done
    if [ ${#params[@]} -gt 0 ]; then
        "${FLINK_HOME}/bin/config-parser-utils.sh" "${CONF_DIR}" "${FLINK_HOME}/bin" "${FLINK_HOME}/lib" "${params[@]}" >/dev/null
    fi
}

options=()
if [ -n "${JOB_MANAGER_RPC_ADDRESS:-}" ]; then
    options+=(jobmanager.rpc.address "${JOB_MANAGER_RPC_ADDRESS}")
fi
if [ -n "${TASK_MANAGER_NUMBER_OF_TASK_SLOTS:-}" ]; then
    options+=(taskmanager.numberOfTaskSlots "${TASK_MANAGER_NUMBER_OF_TASK_SLOTS}")
fi
if [ -n "${FLINK_PROPERTIES:-}" ]; then
    while IFS= read -r line; do
        line="$(echo "${line}" | tr -d '[:space:]')"
        [ -z "${line}" ] && continue
        options+=("${line%%:*}" "${line#*:}")
    done <<< "${FLINK_PROPERTIES}"
fi
if [ ${#options[@]} -gt 0 ]; then
    set_config_options "${options[@]}"
fi

case "${1:-help}" in
    jobmanager)
        shift
        exec "${FLINK_HOME}/bin/jobmanager.sh" start-foreground "$@"
        ;;
    taskmanager)
        shift
        exec "${FLINK_HOME}/bin/taskmanager.sh" start-foreground "$@"
        ;;
    standalone-job)
        shift
        exec "${FLINK_HOME}/bin/standalone-job.sh" start-foreground "$@"
        ;;
    help)
        echo "Usage: $(basename "$0") (jobmanager|taskmanager|standalone-job|COMMAND...)"
        exit 0
        ;;
    *)
        exec "$@"
        ;;
esac
